//! config.yaml: the shipped file and every example parse; mistakes are
//! reported all at once with their YAML paths.

use std::path::Path;

use switchyard::config::{Config, StoreUrl};

fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_str_with_env(text, Path::new("/srv/sy"), &|k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .map_err(|e| e.problems.iter().map(ToString::to_string).collect())
}

#[test]
fn shipped_config_parses_with_its_secret_from_the_environment() {
    let text = std::fs::read_to_string("config.yaml").unwrap();
    let c = parse(&text, &[("SCREENMEET_SIGNING_KEY", "k")]).unwrap();
    assert_eq!(
        c.store,
        StoreUrl::Sqlite("/srv/sy/data/switchyard.db".into())
    );
    let s = &c.sources["screenmeet"];
    assert_eq!(s.path, "/hooks/screenmeet");
    assert_eq!(s.keys.len(), 1, "the empty previous key is unused");
    assert_eq!(s.max_body, 1024 * 1024);
    assert_eq!(s.dedup_window.as_secs(), 7 * 24 * 3600);
}

#[test]
fn shipped_config_without_the_key_names_the_variable_and_the_key() {
    let text = std::fs::read_to_string("config.yaml").unwrap();
    let errs = parse(&text, &[]).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("sources.screenmeet.keys[0].secret: environment variable SCREENMEET_SIGNING_KEY is not set"),
        "{errs:?}"
    );
}

#[test]
fn every_example_config_parses() {
    let dir = tempfile::tempdir().unwrap();
    let gh = dir.path().join("gh");
    std::fs::write(&gh, "gh-secret\n").unwrap();
    let env = [
        ("SCREENMEET_SIGNING_KEY", "k"),
        (
            "BILLING_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("MONITOR_HMAC_KEY", "00ff"),
        ("SWITCHYARD_ADMIN_TOKEN", "0123456789abcdef0123"),
        ("GITHUB_WEBHOOK_SECRET_FILE", gh.to_str().unwrap()),
    ];
    let mut n = 0;
    for entry in std::fs::read_dir("examples/configs").unwrap() {
        let p = entry.unwrap().path();
        let c = parse(&std::fs::read_to_string(&p).unwrap(), &env)
            .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
        assert!(!c.sources.is_empty());
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let text = r#"
listen: 127.0.0.1:8080
store: mysql://nope
colour: blue
server:
  header_read_timeout: soon
sources:
  a:
    path: hooks/a
    verify: screenmeet
    keys: [ { label: current, secret: "${MISSING}" } ]
  b:
    path: /hooks/b
    verify: hmac
    keys: [ { label: k, secret: x }, { label: k, secret: y } ]
  c:
    path: /hooks/c
    verify: screenmeet
    kyes: []
"#;
    let errs = parse(text, &[]).unwrap_err();
    let want = [
        "sources.a.keys[0].secret: environment variable MISSING is not set",
        "colour: unknown key",
        "store: unsupported store \"mysql://nope\"",
        "server.header_read_timeout: invalid duration \"soon\"",
        "sources.a.path: \"hooks/a\" must start with /",
        "sources.b.keys[1].label: duplicate key label \"k\"",
        "sources.b.header: verify: hmac needs header:",
        "sources.c.kyes: unknown field `kyes`",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
}

#[test]
fn verify_none_is_refused_off_loopback() {
    let text =
        "listen: 0.0.0.0:8080\nstore: sqlite://x.db\nsources:\n  dev: { path: /d, verify: none }\n";
    let errs = parse(text, &[]).unwrap_err();
    assert!(
        errs[0].contains("only allowed when listen is a loopback address"),
        "{errs:?}"
    );
}

#[test]
fn secret_file_is_read_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), "from-file\n").unwrap();
    let text = "listen: 127.0.0.1:1\nstore: sqlite://x.db\nsources:\n  s: { path: /s, verify: screenmeet, keys: [ { label: current, secret_file: key.txt } ] }\n";
    let c = Config::from_str_with_env(text, dir.path(), &|_| None).unwrap();
    assert_eq!(c.sources["s"].keys[0].bytes, b"from-file");
    let missing = "listen: 127.0.0.1:1\nstore: sqlite://x.db\nsources:\n  s: { path: /s, verify: screenmeet, keys: [ { label: current, secret_file: nope.txt } ] }\n";
    let e = Config::from_str_with_env(missing, dir.path(), &|_| None).unwrap_err();
    assert!(
        e.to_string()
            .contains("sources.s.keys[0].secret_file: cannot read"),
        "{e}"
    );
}

#[test]
fn key_encodings_decode_or_explain() {
    let t = |enc: &str, key: &str| {
        format!(
            "listen: 127.0.0.1:1\nstore: sqlite://x.db\nsources:\n  s: {{ path: /s, verify: screenmeet, key_encoding: {enc}, keys: [ {{ label: current, secret: \"{key}\" }} ] }}\n"
        )
    };
    let c = parse(&t("hex", "00ff"), &[]).unwrap();
    assert_eq!(c.sources["s"].keys[0].bytes, vec![0, 255]);
    let c = parse(&t("base64", "AP8="), &[]).unwrap();
    assert_eq!(c.sources["s"].keys[0].bytes, vec![0, 255]);
    let errs = parse(&t("hex", "xyz"), &[]).unwrap_err();
    assert_eq!(
        errs,
        vec!["sources.s.keys[0].secret: key_encoding is hex but the secret is not hex"]
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text = "listen: 127.0.0.1:1\nstore: sqlite://x.db\nsources:\n  s: { path: /s, verify: screenmeet, keys: [ { label: current, secret: hunter2-secret } ] }\n";
    let c = parse(text, &[]).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("current"));
}

#[test]
fn the_admin_token_comes_from_the_environment_or_a_file_and_must_be_long() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), "token-from-a-file-0123\n").unwrap();
    let t = |admin: &str| {
        format!(
            "listen: 127.0.0.1:1\nstore: sqlite://x.db\nadmin: {{ {admin} }}\nsources:\n  s: {{ path: /s, verify: none }}\n"
        )
    };
    let load = |admin: &str, env: Option<&str>| {
        Config::from_str_with_env(&t(admin), dir.path(), &|k| {
            (k == "ADMIN_TOKEN").then(|| env.unwrap_or_default().to_owned())
        })
    };
    let c = load("token: \"${ADMIN_TOKEN}\"", Some("0123456789abcdef")).unwrap();
    assert_eq!(c.admin.api_token(), Some("0123456789abcdef"));
    let c = load("token_file: token.txt", None).unwrap();
    assert_eq!(c.admin.api_token(), Some("token-from-a-file-0123"));
    assert!(
        !format!("{c:?}").contains("token-from-a-file"),
        "the token is redacted"
    );
    // Empty (an unset optional variable) or absent: the API is off.
    let c = load("token: \"${ADMIN_TOKEN:-}\"", None).unwrap();
    assert_eq!(c.admin.api_token(), None);
    assert_eq!(
        parse(&t("listen: 127.0.0.1:9"), &[])
            .unwrap()
            .admin
            .api_token(),
        None
    );
    let problems = |admin: &str| -> Vec<String> {
        load(admin, None)
            .unwrap_err()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        problems("token: short"),
        ["admin.token: must be at least 16 characters (e.g. the output of `openssl rand -hex 32`)"]
    );
    assert_eq!(
        problems("token: 0123456789abcdef, token_file: token.txt"),
        ["admin: give either token or token_file, not both"]
    );
    let missing = problems("token_file: nope.txt");
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0].starts_with("admin.token_file: cannot read ") && missing[0].contains("nope.txt"),
        "{missing:?}"
    );
    assert_eq!(
        problems("tokn: 0123456789abcdef")[0],
        "admin.tokn: unknown field `tokn`, expected one of `listen`, `token`, `token_file`"
    );
}

#[test]
fn retention_defaults_keep_dead_letters_and_refuse_a_window_shorter_than_dedup() {
    let base = "listen: 127.0.0.1:1\nstore: sqlite://x.db\nsources:\n  s: { path: /s, verify: none, dedup_window: 7d }\n";
    let c = parse(base, &[]).unwrap();
    let day = |n: u64| {
        Some(switchyard::config::Span(std::time::Duration::from_secs(
            n * 86_400,
        )))
    };
    assert_eq!(c.retention.events, day(30));
    assert_eq!(c.retention.actions, day(30));
    assert_eq!(c.retention.dead_letters, None);
    assert_eq!(c.retention.quarantine, day(30));
    let with = |r: &str| format!("{base}retention: {{ {r} }}\n");
    let c = parse(&with("events: null, dead_letters: 90d"), &[]).unwrap();
    assert_eq!(c.retention.events, None);
    assert_eq!(c.retention.dead_letters, day(90));
    assert_eq!(
        parse(&with("events: 3d"), &[]).unwrap_err(),
        [
            "retention.events: 3days is shorter than sources.s.dedup_window (7days): a resend of a pruned event would be accepted again"
        ]
    );
    assert_eq!(
        parse(&with("every: 0s, batch: 0, actions: 0s"), &[]).unwrap_err(),
        [
            "retention.actions: must be longer than 0s (null keeps forever)",
            "retention.every: must be longer than 0s",
            "retention.batch: must be at least 1",
        ]
    );
    assert_eq!(
        parse(&with("event: 30d"), &[]).unwrap_err(),
        [
            "retention.event: unknown field `event`, expected one of `events`, `actions`, `dead_letters`, `quarantine`, `every`, `batch`"
        ]
    );
}

#[test]
fn target_secrets_can_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slack-url"),
        "https://hooks.slack.test/services/T/B/secret-part\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("jira-token"), "jira-secret-token").unwrap();
    let t = |targets: &str| {
        format!(
            "listen: 127.0.0.1:1\nstore: sqlite://x.db\ntargets:\n{targets}\nsources:\n  s: {{ path: /s, verify: none }}\n"
        )
    };
    let load = |targets: &str| Config::from_str_with_env(&t(targets), dir.path(), &|_| None);
    let c = load(
        "  support: { kind: slack, webhook_url_file: slack-url }\n  helpdesk: { kind: jira, base_url: \"https://j.test\", email: a@b.test, api_token_file: jira-token, project: SUP, issue_type: Task }",
    )
    .unwrap();
    assert_eq!(
        c.targets["support"].setting("webhook_url"),
        Some("https://hooks.slack.test/services/T/B/secret-part")
    );
    assert_eq!(
        c.targets["helpdesk"].setting("api_token"),
        Some("jira-secret-token")
    );
    assert!(
        !c.targets["support"]
            .settings
            .contains_key("webhook_url_file")
    );
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("secret-part") && !dbg.contains("jira-secret-token"),
        "{dbg}"
    );
    assert!(
        dbg.contains("https://j.test"),
        "non-secret settings still print: {dbg}"
    );

    let problems = |targets: &str| -> Vec<String> {
        load(targets)
            .unwrap_err()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let missing = problems("  support: { kind: slack, webhook_url_file: nope }");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("targets.support.webhook_url_file: cannot read ")
            && missing[0].contains("nope"),
        "{missing:?}"
    );
    assert_eq!(
        problems(
            "  support: { kind: slack, webhook_url: \"https://x.test\", webhook_url_file: slack-url }"
        ),
        ["targets.support: give either webhook_url or webhook_url_file, not both"]
    );
    assert_eq!(
        problems("  support: { kind: slack, channel_file: slack-url }"),
        [
            "targets.support.channel_file: unknown setting for a slack target (expected one of: webhook_url, token, channel, api_url, delivery; or webhook_url_file, token_file)"
        ]
    );
}

#[test]
fn indexing_nice_defaults_to_ten_and_must_be_a_lowering() {
    let base =
        "listen: 127.0.0.1:1\nstore: sqlite://x.db\nsources:\n  s: { path: /s, verify: none }\n";
    assert_eq!(parse(base, &[]).unwrap().store_options().indexing_nice, 10);
    let with = |n: &str| format!("{base}server: {{ indexing_nice: {n} }}\n");
    assert_eq!(parse(&with("0"), &[]).unwrap().server.indexing_nice, 0);
    assert_eq!(parse(&with("19"), &[]).unwrap().server.indexing_nice, 19);
    for bad in ["-5", "20"] {
        assert_eq!(
            parse(&with(bad), &[]).unwrap_err(),
            ["server.indexing_nice: must be between 0 and 19 (0 = the ingress's priority)"],
            "{bad}"
        );
    }
}
