//! The operator commands over a journal a real instance wrote: `replay
//! --evaluate` (stored events through today's rules as a dry-run diff
//! against what was planned when they arrived) and `events`; and their
//! bad arguments.

use crate::delivery::project_with_admin;
use crate::support::{bin, count, post_to, wait_until};

fn replay(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    run(dir, "replay", args)
}

fn run(dir: &std::path::Path, command: &str, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("--config")
        .arg(dir.join("config.yaml"))
        .arg(command)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn digest(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// What a dry run must leave alone: the file's bytes, the outbox, the outcomes.
fn journal_state(db: &std::path::Path) -> (String, i64, i64) {
    (
        digest(db),
        count(db, "SELECT count(*) FROM actions"),
        count(
            db,
            "SELECT count(*) FROM evaluations WHERE outcome = 'routed'",
        ),
    )
}

/// Four events evaluated by a running instance under `t.rhai` (Slack the
/// label): `a`, `b` and `d` of type `t`, and `c` of type `u` (no rule).
async fn journal_of_four() -> tempfile::TempDir {
    // No webhook URL: the actions are held, never sent.
    let (d, config) = project_with_admin("", "{ listen: null }");
    let running = switchyard::app::start(config).await.unwrap();
    post_to(
        running.addr,
        "/h",
        r#"[{"type":"t","label":"a"},{"type":"t","label":"b"},{"type":"u","label":"c"},{"type":"t","label":"d"}]"#,
    )
    .await;
    let db = d.path().join("journal.db");
    wait_until("4 evaluations", || {
        count(&db, "SELECT count(*) FROM evaluations") == 4
    })
    .await;
    running.stop().await;
    d
}

#[tokio::test]
async fn a_rule_change_is_shown_as_a_diff_per_event_and_nothing_is_written() {
    let d = journal_of_four().await;
    let db = d.path().join("journal.db");

    // Today's rules are the rules they ran under: nothing differs.
    let (code, out, err) = replay(d.path(), &["--evaluate"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("re-evaluated 4 events with rules "),
        "{out}"
    );
    assert!(
        lines[0].ends_with(
            ": 4 unchanged, 0 changed (0 actions added, 0 removed); nothing was written or sent"
        ),
        "{out}"
    );

    // Change the rule for `t` (a new text, a failure for `b`, and one
    // message per hour: rule state carries from event to event) and add
    // one for `u`.
    std::fs::write(
        d.path().join("rules/t.rhai"),
        "fn on_event(e) {\n  if e.label == \"b\" { throw \"no more b\"; }\n  if once(\"t\", 3600000) { slack(\"support\", `label ${e.label}`); }\n}",
    )
    .unwrap();
    std::fs::write(
        d.path().join("rules/u.rhai"),
        r#"fn on_event(e) { slack("support", "u now"); }"#,
    )
    .unwrap();
    let before = journal_state(&db);
    let (code, out, err) = replay(d.path(), &["--evaluate"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..lines.len() - 1],
        [
            "event 1 (t): routed",
            "  - slack support {\"text\":\"a\"} (t.rhai)",
            "  + slack support {\"text\":\"label a\"} (t.rhai)",
            "event 2 (t): routed -> rule_error",
            "  error: t.rhai:2:23: no more b",
            "  - slack support {\"text\":\"b\"} (t.rhai)",
            "event 3 (u): no_rule -> routed",
            "  + slack support {\"text\":\"u now\"} (u.rhai)",
            "event 4 (t): routed",
            "  - slack support {\"text\":\"d\"} (t.rhai)",
        ],
        "{out}"
    );
    assert!(
        lines.last().unwrap().ends_with(
            ": 0 unchanged, 4 changed (2 actions added, 3 removed); nothing was written or sent"
        ),
        "{out}"
    );
    // A dry run: the journal file is byte for byte what it was.
    let after = journal_state(&db);
    assert_eq!(before, after);

    // Narrowed by type, as JSON lines.
    let (code, out, err) = replay(d.path(), &["--evaluate", "--type", "u", "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["event"], 3);
    assert_eq!(lines[0]["was"], "no_rule");
    assert_eq!(lines[0]["now"], "routed");
    assert_eq!(lines[0]["added"][0]["rule"], "u.rhai");
    assert_eq!(lines[1]["events"], 1);
    assert_eq!(lines[1]["changed"], 1);

    // A time range that holds nothing.
    let (code, out, _) = replay(d.path(), &["--evaluate", "--until", "2001-01-01T00:00:00Z"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("re-evaluated 0 events"), "{out}");
}

#[tokio::test]
async fn bad_replay_arguments_are_refused_with_their_reason_and_change_nothing() {
    let d = journal_of_four().await;
    let db = d.path().join("journal.db");
    let before = digest(&db);
    let cases: &[(&[&str], &str)] = &[
        (
            &[],
            "the following required arguments were not provided:\n  <--dead|--evaluate>",
        ),
        (
            &["--dead", "--evaluate"],
            "the argument '--dead' cannot be used with '--evaluate'",
        ),
        (
            &["--evaluate", "--target", "support"],
            "the argument '--evaluate' cannot be used with '--target <TARGET>'",
        ),
        (
            &["--dead", "--type", "t"],
            "the argument '--dead' cannot be used with '--type <EVENT_TYPE>'",
        ),
        (
            &["--evaluate", "--since", "last week"],
            "\"last week\" is not an RFC 3339 time",
        ),
        (
            &["--dead", "--until", "tomorrow"],
            "\"tomorrow\" is not an RFC 3339 time",
        ),
    ];
    for (args, message) in cases {
        let (code, out, err) = replay(d.path(), args);
        assert_ne!(code, 0, "replay {args:?}: {out}");
        assert!(err.contains(message), "replay {args:?}: {err}");
    }
    assert_eq!(digest(&db), before);
    // Without a journal there is nothing to re-evaluate, and none is created.
    std::fs::remove_file(&db).unwrap();
    let (code, _, err) = replay(d.path(), &["--evaluate"]);
    assert_eq!(code, 1);
    assert!(err.contains("no journal here yet"), "{err}");
    assert!(!db.exists());
}

#[tokio::test]
async fn events_lists_the_journal_newest_first_by_outcome_and_type() {
    let d = journal_of_four().await;
    let (code, out, err) = run(d.path(), "events", &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for (line, (id, ty, how)) in lines.iter().zip([
        ("4", "t", "routed"),
        ("3", "u", "no_rule"),
        ("2", "t", "routed"),
        ("1", "t", "routed"),
    ]) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            (cols[0], cols[2], cols[3], cols[4]),
            (id, "s", ty, how),
            "{line}"
        );
    }
    let (_, out, _) = run(d.path(), "events", &["--outcome", "no_rule", "--json"]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["id"], 3);
    let (_, out, _) = run(
        d.path(),
        "events",
        &["--type", "t", "--before", "4", "--limit", "1"],
    );
    assert!(out.trim_start().starts_with("2 "), "{out}");

    for (command, args, message) in [
        (
            "events",
            &["--state", "done"][..],
            "invalid value 'done' for '--state <STATE>'",
        ),
        (
            "events",
            &["--outcome", "ok"][..],
            "invalid value 'ok' for '--outcome <OUTCOME>'",
        ),
        (
            "actions",
            &["--state", "failed"][..],
            "invalid value 'failed' for '--state <STATE>'",
        ),
    ] {
        let (code, _, err) = run(d.path(), command, args);
        assert_eq!(code, 2, "{command} {args:?}: {err}");
        assert!(err.contains(message), "{command} {args:?}: {err}");
    }
}
