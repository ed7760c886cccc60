//! The `switchyard` binary: check, sign, send, serve with SIGTERM, and a
//! crash right after a 200 loses nothing.

use std::process::{Child, Command, Stdio};

use crate::support::{self, KEY, bin};

#[test]
fn check_accepts_the_shipped_config() {
    let stdout = support::stdout_of(
        bin()
            .args(["--config", "config.yaml", "check"])
            .env("SCREENMEET_SIGNING_KEY", "k")
            .env_remove("SWITCHYARD_ADMIN_TOKEN"),
    );
    assert!(
        stdout.starts_with("config.yaml: ok (1 source: screenmeet)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("./rules: ok (3 rule files, version "),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "\nadmin: 127.0.0.1:9090 (health, metrics, dashboard; API off: no admin.token)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nretention: events 30days, delivered actions 30days, dead letters forever, quarantine 30days; every 10m\n"),
        "{stdout}"
    );
    assert!(stdout.contains("tests: 8 passed, 0 failed"), "{stdout}");
    let with_token = support::stdout_of(
        bin()
            .args(["--config", "config.yaml", "check"])
            .env("SCREENMEET_SIGNING_KEY", "k")
            .env("SWITCHYARD_ADMIN_TOKEN", "0123456789abcdef0123"),
    );
    assert!(
        with_token.contains("\nadmin: 127.0.0.1:9090 (health, metrics, dashboard; API on)\n"),
        "{with_token}"
    );
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "listen: nowhere\nstore: sqlite://x.db\nsurprise: 1\nsources:\n  a: { path: /a, verify: screenmeet, keys: [ { label: current, secret: \"${NOT_SET_ANYWHERE}\" } ] }\n").unwrap();
    let out = bin().arg("--config").arg(&p).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("listen: invalid socket address"), "{err}");
    assert!(err.contains("surprise: unknown key"), "{err}");
    assert!(
        err.contains("environment variable NOT_SET_ANYWHERE is not set"),
        "{err}"
    );
}

#[test]
fn sign_prints_the_hmac_in_hex_and_base64() {
    // RFC 4231 test case 2.
    let run = |enc: &str| {
        let mut child = bin()
            .args(["sign", "--key-env", "SY_TEST_KEY", "--encoding", enc])
            .env("SY_TEST_KEY", "Jefe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"what do ya want for nothing?")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run("hex"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\n"
    );
    assert_eq!(
        run("base64"),
        "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=\n"
    );
}

/// Writes `dir/config.yaml`: listening on `port`, the journal in `dir`,
/// `extra` top-level YAML, and a ScreenMeet source keyed by SY_KEY.
fn write_config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("config.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}\nstore: sqlite://journal.db\n{extra}sources:\n  screenmeet:\n    path: /hooks/screenmeet\n    verify: screenmeet\n    keys: [ {{ label: current, secret: \"${{SY_KEY}}\" }} ]\n"
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// Starts `switchyard serve` on free ports; returns the child and its listen address.
fn serve(env: &support::Env) -> (Child, String) {
    let port = free_port();
    let cfg = write_config(env.dir.path(), port, "admin: { listen: null }\n");
    let child = support::serve_binary(&cfg, &[("SY_KEY", KEY)]);
    (child, format!("127.0.0.1:{port}"))
}

/// Waits up to 60 s for a log line of `serve_logged` that holds `what`.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, what: &str) {
    loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no log line with {what:?}"));
        if line.contains(what) {
            return;
        }
    }
}

/// Starts `serve` (human logs at info) with every stderr line going to the
/// returned channel; returns once it is listening, with the lines so far.
fn serve_logged(cfg: &std::path::Path) -> (Child, Vec<String>, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader};
    let mut child = bin()
        .arg("--config")
        .arg(cfg)
        .args(["--log-level", "info", "serve"])
        .env("SY_KEY", KEY)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = line_tx.send(line.unwrap());
        }
    });
    let mut seen = Vec::new();
    while !seen
        .last()
        .is_some_and(|l: &String| l.contains("switchyard is listening"))
    {
        seen.push(
            lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("serve never listened:\n{}", seen.join("\n"))),
        );
    }
    (child, seen, lines)
}

/// Sends SIGTERM to `child`.
fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

/// Sends `sig` (e.g. `-HUP`) to `child`.
fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {}", child.id());
}

/// Stops `child` with SIGTERM; it must exit 0.
fn stop(mut child: Child) {
    sigterm(&child);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "SIGTERM should exit 0, got {exit:?}");
}

/// Runs `serve` with `cfg`, which must refuse to start (exit 1); returns
/// its stderr.
fn serve_refused(cfg: &std::path::Path) -> String {
    let out = bin()
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .env("SY_KEY", KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn send(env: &support::Env, file: &str) -> (i32, String) {
    let out = bin()
        .arg("--config")
        .arg(env.dir.path().join("config.yaml"))
        .args(["send", "--source", "screenmeet", file])
        .env("SY_KEY", KEY)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn send_posts_a_signed_file_and_sigterm_stops_cleanly() {
    let env = support::env();
    let (child, _) = serve(&env);
    let (code, out) = send(&env, "examples/events/session-closed.json");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "200 OK\n{\"accepted\":1,\"duplicates\":0,\"rejected\":0}\n"
    );
    let (_, out) = send(&env, "examples/events/session-closed.json");
    assert!(out.contains("\"duplicates\":1"), "{out}");
    stop(child);
    assert_eq!(
        support::count(
            &env.dir.path().join("journal.db"),
            "SELECT count(*) FROM events"
        ),
        1
    );
}

#[test]
fn a_crash_right_after_200_loses_nothing() {
    let env = support::env();
    let (mut child, _) = serve(&env);
    let (code, out) = send(&env, "examples/events/batch-50.json");
    assert_eq!(code, 0, "{out}");
    child.kill().unwrap(); // SIGKILL: no shutdown code runs
    child.wait().unwrap();
    // The 200 came after the ingest log's sync; the database index may lag
    // behind it. The next start replays the log into the database and its
    // dedup index.
    let (child, _) = serve(&env);
    let (_, out) = send(&env, "examples/events/batch-50.json");
    assert!(out.contains("\"duplicates\":50"), "{out}");
    stop(child);
    let db = env.dir.path().join("journal.db");
    assert_eq!(support::count(&db, "SELECT count(*) FROM events"), 50);
}

#[test]
fn send_reports_a_refusal_with_exit_1() {
    let env = support::env();
    let (mut child, addr) = serve(&env);
    let out = bin()
        .args([
            "send",
            "--key-env",
            "SY_WRONG",
            "--url",
            &format!("http://{addr}/hooks/screenmeet"),
            "examples/events/session-closed.json",
        ])
        .env("SY_WRONG", "not-the-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("401 Unauthorized\n"), "{text}");
    assert!(text.contains("bad_signature"), "{text}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A project dir: `config.yaml` holding `top` and a ScreenMeet source keyed
/// by SY_KEY, an empty `rules/` and the other `dirs`.
fn project(top: &str, dirs: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["rules"].iter().chain(dirs) {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(
        p.join("config.yaml"),
        format!("listen: 127.0.0.1:0\n{top}sources:\n  screenmeet: {{ path: /h, verify: screenmeet, keys: [ {{ label: current, secret: \"${{SY_KEY}}\" }} ] }}\n"),
    )
    .unwrap();
    dir
}

/// A project dir with a ScreenMeet source keyed by SY_KEY, one rule and `cases`.
fn rules_project(cases: &str) -> tempfile::TempDir {
    let dir = project(
        "store: sqlite://journal.db\ntargets:\n  support: { kind: slack, webhook_url: \"http://127.0.0.1:1\" }\n",
        &["rules/tests", "captured"],
    );
    let p = dir.path();
    std::fs::write(
        p.join("rules/session.closed.rhai"),
        "fn on_event(e) { slack(\"support\", `closed ${e.id}`); }",
    )
    .unwrap();
    std::fs::write(p.join("rules/unused.rhai"), "fn on_event(e) { }").unwrap();
    std::fs::write(p.join("rules/tests/cases.yaml"), cases).unwrap();
    dir
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("--config")
        .arg(dir.join("config.yaml"))
        .args(args)
        .env("SY_KEY", KEY)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_runs_captured_signed_requests_and_reports_uncovered_rules() {
    let body = br#"[{"type":"session.closed","id":"Cap123"}]"#;
    let sig = support::sign_hex(KEY, body);
    let cases = format!(
        "- name: captured request\n  request: {{ source: screenmeet, body_file: captured/closed.body, headers: {{ x-signature: \"{sig}\" }} }}\n  expect:\n    - {{ target: support, action: slack, payload: {{ text: closed Cap123 }} }}\n- name: tampered request\n  request: {{ source: screenmeet, body_file: captured/tampered.body, headers: {{ x-signature: \"{sig}\" }} }}\n  expect: []\n"
    );
    let dir = rules_project(&cases);
    std::fs::write(dir.path().join("captured/closed.body"), body).unwrap();
    std::fs::write(
        dir.path().join("captured/tampered.body"),
        br#"[{"type":"session.closed","id":"Evil"}]"#,
    )
    .unwrap();
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ok     tests/cases.yaml: captured request"),
        "{out}"
    );
    assert!(
        out.contains("FAIL   tests/cases.yaml: tampered request"),
        "{out}"
    );
    assert!(
        out.contains("the request does not verify: bad_signature"),
        "{out}"
    );
    assert!(out.contains("note   no case covers unused.rhai"), "{out}");
    assert!(out.ends_with("1 passed, 1 failed\n"), "{out}");
}

#[test]
fn a_failing_case_shows_expected_and_planned_actions() {
    let dir = rules_project(
        "- name: wrong text\n  event: { type: session.closed, id: A1 }\n  expect:\n    - { target: support, action: slack, payload: { text: closed B2 } }\n",
    );
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 1);
    assert!(out.contains("planned actions differ"), "{out}");
    assert!(out.contains("\"text\": \"closed B2\""), "{out}");
    assert!(out.contains("\"text\": \"closed A1\""), "{out}");
}

#[test]
fn route_prints_planned_actions_as_json_lines_without_storing() {
    let dir = rules_project("[]");
    let batch = dir.path().join("batch.json");
    std::fs::write(
        &batch,
        r#"[{"type":"session.closed","id":"R1"},{"type":"other"}]"#,
    )
    .unwrap();
    let (code, out, err) = run_in(dir.path(), &["route", batch.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["rule"], "session.closed.rhai");
    assert_eq!(lines[0]["payload"]["text"], "closed R1");
    assert!(
        err.contains("event 2 (other): no rule for this type"),
        "{err}"
    );
    assert!(
        !dir.path().join("journal.db").exists(),
        "route stores nothing"
    );
}

#[test]
fn check_reports_a_rule_error_with_file_line_and_column() {
    let dir = rules_project("[]");
    std::fs::write(
        dir.path().join("rules/broken.rhai"),
        "fn on_event(e) {\n  slack(\"nope\", \"x\");\n}",
    )
    .unwrap();
    let (code, _, err) = run_in(dir.path(), &["check"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("broken.rhai:2:3: unknown target \"nope\" (targets in config.yaml: support)"),
        "{err}"
    );
}

#[test]
fn route_stored_reads_a_journaled_event() {
    let env = support::env();
    let (mut child, _) = serve(&env);
    let (code, out) = send(&env, "examples/events/session-closed.json");
    assert_eq!(code, 0, "{out}");
    child.kill().unwrap();
    child.wait().unwrap();
    let routes_event_1 = || {
        let (code, out, err) = run_in(env.dir.path(), &["route", "--stored", "1"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "");
        assert!(
            err.contains("event 1 (session.closed): no rule for this type"),
            "{err}"
        );
    };
    routes_event_1();
    // As if the kill came after the log's sync and before the index
    // committed: the event is only in the ingest log, and still stored.
    let db = env.db();
    support::forget_index(&db);
    routes_event_1();
    assert_eq!(
        support::count(&db, "SELECT count(*) FROM events"),
        0,
        "route reads the log and indexes nothing"
    );
    let (code, _, err) = run_in(env.dir.path(), &["route", "--stored", "99"]);
    assert_eq!(code, 1);
    assert!(err.contains("no stored event with id 99"), "{err}");
}

#[test]
fn serve_as_a_user_who_cannot_write_the_data_directory_exits_1_with_the_reason() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = project(
        "store: sqlite://data/journal.db\nadmin: { listen: null }\n",
        &["data"],
    );
    let p = dir.path();
    // Readable by everyone, writable by root only (a temp dir starts 0700).
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    // CI runs as root, which may write anywhere: serve as `nobody`.
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(p.join("config.yaml"))
        .arg("serve")
        .env("SY_KEY", KEY)
        .output()
        .expect("running setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let db = p.join("data/journal.db");
    assert!(
        stderr.contains(&format!(
            "error: opening the journal: cannot open the store at {db}: {db}.lock: Permission denied (os error 13) (its directory is not writable by this user)\n",
            db = db.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(p.join("data")).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn info_logs_name_the_key_label_but_never_a_secret_a_signature_or_a_body() {
    let env = support::env();
    let dir = env.dir.path();
    let port = free_port();
    let cfg = write_config(dir, port, "admin: { listen: null }\n");
    let good =
        br#"[{"type":"session.closed","note":"body-marker-good"},{"note":"body-marker-rejected"}]"#;
    let malformed = b"[{\"type\": body-marker-quarantined";
    std::fs::write(dir.join("good.json"), good).unwrap();
    std::fs::write(dir.join("malformed.json"), malformed).unwrap();

    let (child, mut seen, lines) = serve_logged(&cfg);

    let url = format!("http://127.0.0.1:{port}/hooks/screenmeet");
    let send_with = |key: &str, file: &str| {
        bin()
            .args(["send", "--key-env", "SY_SEND", "--url", &url])
            .arg(dir.join(file))
            .env("SY_SEND", key)
            .output()
            .unwrap()
    };
    let ok = send_with(KEY, "good.json");
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("\"accepted\":1"),
        "{ok:?}"
    );
    let refused = send_with("not-the-key", "good.json");
    assert!(String::from_utf8_lossy(&refused.stdout).contains("bad_signature"));
    let quarantined = send_with(KEY, "malformed.json");
    assert!(String::from_utf8_lossy(&quarantined.stdout).contains("invalid_json"));
    stop(child);
    seen.extend(lines.iter());
    let logs = seen.join("\n");

    // Plain text when stderr is not a terminal (journald, files, pipes).
    assert!(
        !logs.contains('\x1b'),
        "colour codes in piped logs:\n{logs}"
    );
    // What an operator needs is there: which key matched, and the refusals.
    assert!(
        logs.contains("journaled a batch") && logs.contains("key=\"current\""),
        "{logs}"
    );
    assert!(
        logs.contains("bad_signature") && logs.contains("invalid_json"),
        "{logs}"
    );
    // What must never be logged is not.
    for secret in [
        KEY.to_owned(),
        support::sign_hex(KEY, good),
        support::sign_hex("not-the-key", good),
        support::sign_hex(KEY, malformed),
        "body-marker".to_owned(),
    ] {
        assert!(!logs.contains(&secret), "the logs hold {secret:?}:\n{logs}");
    }
}

#[test]
fn a_second_router_on_the_same_store_is_refused_and_the_first_keeps_serving() {
    let env = support::env();
    let (first, _) = serve(&env);
    let dir = env.dir.path();
    let (code, out) = send(&env, "examples/events/session-closed.json");
    assert_eq!(code, 0, "{out}");
    let segments = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.join("journal.db-log"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = segments();

    // Another listener, the same store: refused before it touches the journal.
    let other = dir.join("other.yaml");
    let text = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    let (listen, rest) = text.split_once('\n').unwrap();
    assert!(listen.starts_with("listen: 127.0.0.1:"), "{listen}");
    std::fs::write(&other, format!("listen: 127.0.0.1:{}\n{rest}", free_port())).unwrap();
    let stderr = serve_refused(&other);
    assert!(
        stderr.contains(&format!(
            "cannot open the store at {}: another switchyard is running on this store (pid {}); stop it first, or give this one a store of its own",
            dir.join("journal.db").display(),
            first.id()
        )),
        "{stderr}"
    );
    assert_eq!(segments(), before, "the refused router wrote nothing");

    let (code, out) = send(&env, "examples/events/batch-50.json");
    assert_eq!(code, 0, "the first keeps serving: {out}");
    stop(first);
    assert_eq!(
        support::count(&dir.join("journal.db"), "SELECT count(*) FROM events"),
        51
    );
    // Stopped, the store is free for the next router.
    let mut next = support::serve_binary(&other, &[("SY_KEY", KEY)]);
    next.kill().unwrap();
    next.wait().unwrap();
}

#[tokio::test]
async fn a_second_sigterm_while_stopping_exits_at_once_and_loses_nothing() {
    use std::io::Write as _;
    let env = support::env();
    let dir = env.dir.path();
    let (port, admin) = (free_port(), free_port());
    let cfg = write_config(
        dir,
        port,
        &format!(
            "admin: {{ listen: 127.0.0.1:{admin} }}\nserver: {{ body_read_timeout: 120s, shutdown_timeout: 120s }}\n"
        ),
    );
    let (mut child, _, lines) = serve_logged(&cfg);
    let (code, out) = send(&env, "examples/events/session-closed.json");
    assert_eq!(code, 0, "{out}");

    // A request stalled mid-body holds a graceful stop for up to 120 s.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stalled,
        "POST /hooks/screenmeet HTTP/1.1\r\nhost: x\r\nx-signature: {}\r\ncontent-length: 1000\r\n\r\n[{{\"type\"",
        "0".repeat(64)
    )
    .unwrap();
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    support::wait_for_async(|| async {
        let text = match reqwest::get(&metrics).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        if text.contains("switchyard_ingress_in_flight{source=\"screenmeet\"} 1") {
            Ok(())
        } else {
            Err(format!("the stalled request is not in flight:\n{text}"))
        }
    })
    .await;
    sigterm(&child);
    wait_for_line(&lines, "SIGTERM: shutting down");
    sigterm(&child);
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(143),
        "the second SIGTERM ends it at once"
    );
    drop(stalled);

    // The acknowledged event is there once a router starts again.
    stop(support::serve_binary(&cfg, &[("SY_KEY", KEY)]));
    assert_eq!(
        support::count(&dir.join("journal.db"), "SELECT count(*) FROM events"),
        1
    );
}

#[test]
fn a_router_whose_port_is_taken_exits_1_before_it_touches_the_journal() {
    let env = support::env();
    let dir = env.dir.path();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = write_config(dir, port, "admin: { listen: null }\n");
    let stderr = serve_refused(&cfg);
    assert!(
        stderr.contains(&format!(
            "error: binding 127.0.0.1:{port}: Address already in use"
        )),
        "{stderr}"
    );
    for left in ["journal.db", "journal.db-log", "journal.db.lock"] {
        assert!(!dir.join(left).exists(), "{left} was created");
    }
}

#[test]
fn sighup_right_after_the_start_reloads_the_rules_and_the_router_keeps_running() {
    let env = support::env();
    let cfg = write_config(env.dir.path(), free_port(), "admin: { listen: null }\n");
    let (child, _, lines) = serve_logged(&cfg);
    // At once: a handler installed only after the start would let the
    // signal's default action end the process.
    signal(&child, "-HUP");
    wait_for_line(&lines, "SIGHUP: reloading rules");
    stop(child);
}
