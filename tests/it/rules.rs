//! Rules: the sandbox refuses what it must with a clear, located error and
//! the other rules still run; reload never swaps in a broken set; events are
//! evaluated from the journal into the outbox.

use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::config::Config;
use switchyard::rules::reload::LiveRules;
use switchyard::rules::{Outcome, RuleSet, StateMap};
use switchyard::telemetry::Metrics;

const TARGETS: &str = "targets:\n  support: { kind: slack, webhook_url: \"http://127.0.0.1:1/hook\" }\n  helpdesk: { kind: jira, base_url: \"http://127.0.0.1:1\" }\n  mail: { kind: smtp, url: \"smtp://127.0.0.1:1\", from: a@b.example }\nrules:\n  reload_debounce: 50ms\n  time_budget: 200ms\n";

/// A config whose rules dir holds `files`.
fn rules_env(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for (name, text) in files {
        write(&dir.path().join("rules").join(name), text);
    }
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\n{TARGETS}sources:\n  screenmeet: {{ path: /hooks/screenmeet, verify: none }}\n"
    );
    let config = Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    (dir, config)
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

const GOOD: &str = r#"fn on_event(event) { slack("support", `closed ${event.id}`); }"#;

fn eval(set: &RuleSet, event: &str) -> switchyard::rules::Evaluation {
    let v: serde_json::Value = serde_json::from_str(event).unwrap();
    set.evaluate(event, v["type"].as_str().unwrap(), 0, StateMap::default())
        .0
}

/// Loads a set with one bad rule beside a good one; returns the bad rule's error.
fn failing_rule(body: &str) -> (String, switchyard::rules::Evaluation) {
    let (_d, config) = rules_env(&[("t/10-bad.rhai", body), ("t/20-good.rhai", GOOD)]);
    let set = RuleSet::load(&config).unwrap_or_else(|e| panic!("{e:?}"));
    let started = Instant::now();
    let e = eval(&set, r#"{"type":"t","id":"S1"}"#);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a bad rule held the evaluation for {:?}",
        started.elapsed()
    );
    assert_eq!(e.outcome, Outcome::RuleError);
    assert_eq!(
        e.actions.len(),
        1,
        "the good rule still planned its action: {:?}",
        e.rules
    );
    assert_eq!(e.actions[0].rule, "t/20-good.rhai");
    let err = e.rules[0].error.clone().expect("the bad rule failed");
    assert!(e.rules[1].error.is_none());
    (err, e)
}

#[test]
fn sleep_is_refused_whole_or_huge() {
    for body in [
        "fn on_event(e) { sleep(5); }",
        "fn on_event(e) { sleep(1e300); }",
    ] {
        let (err, _) = failing_rule(body);
        assert!(err.starts_with("t/10-bad.rhai:1:"), "{err}");
        assert!(err.contains("sleep() is not available in rules"), "{err}");
    }
}

#[test]
fn an_endless_loop_hits_a_limit_not_the_process() {
    let (err, _) = failing_rule("fn on_event(e) { loop { } }");
    assert!(
        err.contains("exceeded its operation limit") || err.contains("time budget"),
        "{err}"
    );
}

#[test]
fn a_slow_rule_hits_its_wall_clock_budget() {
    // Few operations, each expensive: only the wall clock stops it.
    let body = r#"fn on_event(e) { let s = "x"; for i in 0..190000 { s = s.sub_string(0, 1) + "y"; s.pad(2000, "z"); } }"#;
    let (_d, mut config) = rules_env(&[("t/10-bad.rhai", body), ("t/20-good.rhai", GOOD)]);
    config.rules.time_budget = switchyard::config::Span(Duration::from_millis(20));
    config.rules.max_operations = u64::MAX / 2;
    let set = RuleSet::load(&config).unwrap();
    let e = eval(&set, r#"{"type":"t","id":"S1"}"#);
    let err = e.rules[0].error.clone().unwrap();
    assert!(err.contains("exceeded its time budget of 20ms"), "{err}");
}

#[test]
fn unbounded_recursion_hits_the_call_depth_limit() {
    let (err, _) = failing_rule("fn down(n) { down(n + 1) } fn on_event(e) { down(0); }");
    assert!(
        err.contains("call depth limit") || err.contains("Stack overflow"),
        "{err}"
    );
}

#[test]
fn a_string_doubled_until_huge_hits_the_size_limit() {
    let (err, _) = failing_rule(r#"fn on_event(e) { let s = "ab"; loop { s += s; } }"#);
    assert!(err.contains("exceeds its size limit"), "{err}");
}

#[test]
fn a_ten_megabyte_array_hits_the_size_limit() {
    let (err, _) = failing_rule("fn on_event(e) { let a = []; a.pad(10000000, 0); }");
    assert!(err.contains("exceeds its size limit"), "{err}");
}

#[test]
fn an_unknown_target_is_a_located_error_with_a_hint() {
    let (err, _) = failing_rule(
        "fn on_event(e) {\n  let t = \"no-such\" + \"-target\";\n  slack(t, \"hi\");\n}",
    );
    assert_eq!(
        err,
        "t/10-bad.rhai:3:3: unknown target \"no-such-target\" (targets in config.yaml: helpdesk, mail, support)"
    );
}

#[test]
fn a_literal_unknown_target_is_caught_at_load_time() {
    let (_d, config) = rules_env(&[(
        "t.rhai",
        "fn on_event(e) {\n    slack(\"no-such-target\", \"hi\");\n}",
    )]);
    let errs = RuleSet::load(&config).err().expect("load fails");
    assert_eq!(
        errs[0].to_string(),
        "t.rhai:2:5: unknown target \"no-such-target\" (targets in config.yaml: helpdesk, mail, support)"
    );
}

#[test]
fn a_wrong_kind_of_target_or_argument_is_a_rule_error() {
    let (err, _) = failing_rule(r#"fn on_event(e) { let t = "mail"; slack(t, "hi"); }"#);
    assert!(
        err.ends_with("target \"mail\" is a smtp target; slack() needs a slack target"),
        "{err}"
    );
    let (err, _) = failing_rule(r#"fn on_event(e) { slack("support", 42); }"#);
    assert!(
        err.contains("slack() takes a text string or a map"),
        "{err}"
    );
    let (err, _) = failing_rule(r#"fn on_event(e) { ticket("helpdesk", #{ titel: "x" }); }"#);
    assert!(err.contains("ticket(): unknown field \"titel\""), "{err}");
}

#[test]
fn import_and_eval_do_not_compile() {
    for (body, want) in [
        (
            "import \"/etc/passwd\" as p;\nfn on_event(e) { }",
            "t.rhai:1:1:",
        ),
        ("fn on_event(e) {\n  eval(\"1\");\n}", "t.rhai:2:3:"),
    ] {
        let (_d, config) = rules_env(&[("t.rhai", body)]);
        let errs = RuleSet::load(&config)
            .err()
            .unwrap_or_else(|| panic!("{body} compiled"));
        assert!(errs[0].to_string().starts_with(want), "{}", errs[0]);
    }
}

#[test]
fn a_file_without_on_event_is_an_error() {
    let (_d, config) = rules_env(&[("t.rhai", "fn handle(e) { }")]);
    let errs = RuleSet::load(&config).err().unwrap();
    assert_eq!(
        errs[0].to_string(),
        "t.rhai: defines no `fn on_event(event)`; every rule file needs one"
    );
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let (_d, config) = rules_env(&[
        ("good.rhai", GOOD),
        ("t.rhai", "fn on_event(e) {\n  let x = ;\n}"),
    ]);
    let errs = RuleSet::load(&config).err().unwrap();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].to_string().starts_with("t.rhai:2:11: "),
        "{}",
        errs[0]
    );
}

#[test]
fn non_rule_files_and_editor_droppings_are_ignored() {
    let (_d, config) = rules_env(&[
        ("t.rhai", GOOD),
        ("README.md", "# notes"),
        (".t.rhai.swp", "garbage {"),
        ("t.rhai~", "garbage {"),
        ("4913", "garbage {"),
        ("notes.txt", "garbage {"),
        (".hidden.rhai", "garbage {"),
    ]);
    let set = RuleSet::load(&config).unwrap();
    assert_eq!(set.files().len(), 1);
}

#[test]
fn missing_optional_fields_read_as_unit() {
    let body = r#"fn on_event(e) { slack("support", `${e.user?.name ?? "nobody"} ${e.stats?.x ?? 0} ${e.label}`); }"#;
    let (_d, config) = rules_env(&[("t.rhai", body)]);
    let set = RuleSet::load(&config).unwrap();
    let e = eval(&set, r#"{"type":"t"}"#);
    assert_eq!(e.actions[0].payload["text"], "nobody 0 ");
}

#[test]
fn a_thousand_rule_files_load_and_lookup_stays_by_type() {
    let files: Vec<(String, &str)> = (0..1000)
        .map(|i| (format!("type{i:04}.rhai"), GOOD))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let (_d, config) = rules_env(&refs);
    let set = RuleSet::load(&config).unwrap();
    assert_eq!(set.files().len(), 1000);
    let e = eval(&set, r#"{"type":"type0500","id":"a"}"#);
    assert_eq!(e.rules.len(), 1);
    assert_eq!(e.rules[0].rule, "type0500.rhai");
    assert_eq!(eval(&set, r#"{"type":"other"}"#).outcome, Outcome::NoRule);
}

#[test]
fn once_is_true_once_per_window_and_a_failed_rule_leaves_no_state() {
    let body = r#"fn on_event(e) { if once(`k:${e.id}`, hours(1)) { slack("support", "first"); } if e.fail == true { throw "boom"; } }"#;
    let (_d, config) = rules_env(&[("t.rhai", body)]);
    let set = RuleSet::load(&config).unwrap();
    let ev = r#"{"type":"t","id":"A"}"#;
    let (e1, st) = set.evaluate(ev, "t", 0, StateMap::default());
    let (e2, st) = set.evaluate(ev, "t", 1_000, st);
    let (e3, st) = set.evaluate(ev, "t", 3_600_001, st);
    assert_eq!(
        (e1.actions.len(), e2.actions.len(), e3.actions.len()),
        (1, 0, 1)
    );
    let failing = r#"{"type":"t","id":"B","fail":true}"#;
    let (e4, st) = set.evaluate(failing, "t", 0, st);
    assert_eq!(e4.outcome, Outcome::RuleError);
    let (e5, _) = set.evaluate(r#"{"type":"t","id":"B"}"#, "t", 0, st);
    assert_eq!(e5.actions.len(), 1, "the failed rule's once() was undone");
}

// ---- hot reload ----

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn live(
    files: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    std::sync::Arc<LiveRules>,
    switchyard::rules::reload::WatchHandle,
) {
    let (d, config) = rules_env(files);
    let rules = LiveRules::start(config, Metrics::new()).unwrap();
    let watch = rules.watch().unwrap();
    (d, rules, watch)
}

fn text_of(rules: &LiveRules, ty: &str) -> Option<String> {
    let set = rules.current();
    let e = eval(&set, &format!(r#"{{"type":"{ty}","id":"x"}}"#));
    e.actions
        .first()
        .map(|a| a.payload["text"].as_str().unwrap_or_default().to_owned())
}

fn rule_saying(s: &str) -> String {
    format!(r#"fn on_event(e) {{ slack("support", "{s}"); }}"#)
}

#[test]
fn reload_follows_in_place_writes_renames_deletes_and_creates() {
    let (d, rules, _w) = live(&[("t.rhai", &rule_saying("v1"))]);
    let dir = d.path().join("rules");
    // In-place write.
    std::fs::write(dir.join("t.rhai"), rule_saying("v2")).unwrap();
    wait_for("in-place write", || {
        text_of(&rules, "t").as_deref() == Some("v2")
    });
    // Write to a temp file, then rename over.
    std::fs::write(dir.join(".t.rhai.tmp"), rule_saying("v3")).unwrap();
    std::fs::rename(dir.join(".t.rhai.tmp"), dir.join("t.rhai")).unwrap();
    wait_for("rename over", || {
        text_of(&rules, "t").as_deref() == Some("v3")
    });
    // Vim-style: swap file, backup rename, write new, delete backup.
    std::fs::write(dir.join(".t.rhai.swp"), "swap").unwrap();
    std::fs::rename(dir.join("t.rhai"), dir.join("t.rhai~")).unwrap();
    std::fs::write(dir.join("t.rhai"), rule_saying("v4")).unwrap();
    std::fs::remove_file(dir.join("t.rhai~")).unwrap();
    std::fs::remove_file(dir.join(".t.rhai.swp")).unwrap();
    wait_for("vim save", || text_of(&rules, "t").as_deref() == Some("v4"));
    // Create another, delete the first.
    std::fs::write(dir.join("u.rhai"), rule_saying("u1")).unwrap();
    wait_for("create", || text_of(&rules, "u").as_deref() == Some("u1"));
    std::fs::remove_file(dir.join("t.rhai")).unwrap();
    wait_for("delete", || text_of(&rules, "t").is_none());
    assert!(rules.last_error().is_empty());
}

#[test]
fn a_broken_save_keeps_the_last_good_set_and_reports_where() {
    let (d, rules, _w) = live(&[
        ("t.rhai", &rule_saying("good")),
        ("u.rhai", &rule_saying("other")),
    ]);
    let before = rules.current().version.clone();
    std::fs::write(
        d.path().join("rules/t.rhai"),
        "fn on_event(e) {\n  slack(\"support\", \n}",
    )
    .unwrap();
    wait_for("the reload error", || !rules.last_error().is_empty());
    assert_eq!(
        rules.current().version,
        before,
        "the broken set was not swapped in"
    );
    let err = rules.last_error().join("\n");
    assert!(err.starts_with("t.rhai:3:1: "), "{err}");
    assert_eq!(text_of(&rules, "t").as_deref(), Some("good"));
    assert_eq!(text_of(&rules, "u").as_deref(), Some("other"));
    // Fixing it goes live.
    std::fs::write(d.path().join("rules/t.rhai"), rule_saying("fixed")).unwrap();
    wait_for("the fix", || {
        text_of(&rules, "t").as_deref() == Some("fixed")
    });
    assert!(rules.last_error().is_empty());
}

#[test]
fn a_failing_rule_test_blocks_the_reload() {
    let case = "- name: says hello\n  event: { type: t }\n  now: 2026-01-01T00:00:00Z\n  expect:\n    - { target: support, action: slack, payload: { text: hello } }\n";
    let (d, rules, _w) = live(&[("t.rhai", &rule_saying("hello")), ("tests/t.yaml", case)]);
    std::fs::write(d.path().join("rules/t.rhai"), rule_saying("bye")).unwrap();
    wait_for("the reload error", || !rules.last_error().is_empty());
    assert!(
        rules.last_error()[0].starts_with("rule test failed: tests/t.yaml: says hello"),
        "{:?}",
        rules.last_error()
    );
    assert_eq!(text_of(&rules, "t").as_deref(), Some("hello"));
}

#[test]
fn a_configmap_style_symlink_swap_reloads() {
    let (d, config) = rules_env(&[]);
    let dir = d.path().join("rules");
    // rules/..data -> ..v1/ ; rules/t.rhai -> ..data/t.rhai
    write(&dir.join("..v1/t.rhai"), &rule_saying("cm1"));
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/t.rhai", dir.join("t.rhai")).unwrap();
    let rules = LiveRules::start(config, Metrics::new()).unwrap();
    let _w = rules.watch().unwrap();
    assert_eq!(text_of(&rules, "t").as_deref(), Some("cm1"));
    write(&dir.join("..v2/t.rhai"), &rule_saying("cm2"));
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..v1")).unwrap();
    wait_for("the ConfigMap swap", || {
        text_of(&rules, "t").as_deref() == Some("cm2")
    });
}

#[test]
fn a_burst_of_a_hundred_saves_ends_on_the_last_one() {
    let (d, rules, _w) = live(&[("t.rhai", &rule_saying("s0"))]);
    for i in 1..=100 {
        std::fs::write(d.path().join("rules/t.rhai"), rule_saying(&format!("s{i}"))).unwrap();
    }
    wait_for("the last save", || {
        text_of(&rules, "t").as_deref() == Some("s100")
    });
}

// ---- evaluation from the journal ----

async fn wait_evaluated(db: &Path, n: usize) {
    crate::support::wait_for(|| {
        let done = crate::support::rows(db, "SELECT CAST(event_id AS TEXT) FROM evaluations").len();
        if done >= n {
            Ok(())
        } else {
            Err(format!("only {done} of {n} events evaluated"))
        }
    })
    .await;
}

#[tokio::test]
async fn journaled_events_are_evaluated_into_the_outbox_once() {
    let (d, config) = rules_env(&[
        (
            "t.rhai",
            r#"fn on_event(e) { slack("support", `t ${e.id}`); if e.id == "2" { ticket("helpdesk", #{ title: "x", key: "k" }); } }"#,
        ),
        (
            "bad.rhai",
            r#"fn on_event(e) { throw "broken on purpose"; }"#,
        ),
        (
            "_any.rhai",
            r#"fn on_event(e) { if e.type == "quiet" { skip("nothing to say"); } }"#,
        ),
    ]);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config.clone()).await.unwrap();
    let answer = crate::support::post_to(running.addr, "/hooks/screenmeet",
        r#"[{"type":"t","id":"1"},{"type":"t","id":"2"},{"type":"unknown.kind"},{"type":"bad"},{"no":"type"},{"type":"quiet"}]"#,
    )
    .await;
    assert_eq!(
        answer,
        serde_json::json!({"accepted":5,"duplicates":0,"rejected":1})
    );
    wait_evaluated(&db, 5).await;
    assert_eq!(
        crate::support::rows(
            &db,
            "SELECT type || ' ' || outcome FROM events LEFT JOIN evaluations ON event_id = id WHERE state = 'pending' ORDER BY id"
        ),
        vec![
            "t routed",
            "t routed",
            "unknown.kind no_rule",
            "bad rule_error",
            "quiet no_rule"
        ]
    );
    assert_eq!(
        crate::support::rows(
            &db,
            "SELECT coalesce(outcome, 'never evaluated') FROM events LEFT JOIN evaluations ON event_id = id WHERE state = 'rejected'"
        ),
        vec!["never evaluated"]
    );
    assert_eq!(
        crate::support::rows(
            &db,
            "SELECT target || ' ' || action || ' ' || payload FROM actions ORDER BY event_id, action"
        ),
        vec![
            r#"support slack {"text":"t 1"}"#,
            r#"support slack {"text":"t 2"}"#,
            r#"helpdesk ticket {"key":"k","title":"x"}"#,
        ]
    );
    let runs = crate::support::rows(
        &db,
        "SELECT rule_runs FROM events LEFT JOIN evaluations ON event_id = id WHERE type = 'bad'",
    );
    assert!(
        runs[0].contains(r#""error":"bad.rhai:1:18: broken on purpose""#),
        "{runs:?}"
    );
    let version = running.rules.current().version.to_string();
    assert_eq!(
        crate::support::rows(&db, "SELECT DISTINCT ruleset_version FROM evaluations"),
        vec![version]
    );
    running.stop().await;

    // A restart evaluates nothing twice.
    let running = switchyard::app::start(config).await.unwrap();
    crate::support::post_to(
        running.addr,
        "/hooks/screenmeet",
        r#"[{"type":"t","id":"3"}]"#,
    )
    .await;
    wait_evaluated(&db, 6).await;
    running.stop().await;
    assert_eq!(crate::support::rows(&db, "SELECT id FROM actions").len(), 4);
}

#[tokio::test]
async fn deleting_every_rule_makes_events_no_rule_and_loses_nothing() {
    let (d, config) = rules_env(&[("t.rhai", GOOD)]);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    std::fs::remove_file(d.path().join("rules/t.rhai")).unwrap();
    let rules = running.rules.clone();
    let started = Instant::now();
    while rules.current().files().len() == 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the deletion never went live"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crate::support::post_to(
        running.addr,
        "/hooks/screenmeet",
        r#"[{"type":"t","id":"after"}]"#,
    )
    .await;
    wait_evaluated(&db, 1).await;
    running.stop().await;
    assert_eq!(
        crate::support::rows(
            &db,
            "SELECT outcome FROM events LEFT JOIN evaluations ON event_id = id"
        ),
        vec!["no_rule"]
    );
    assert_eq!(crate::support::rows(&db, "SELECT id FROM actions").len(), 0);
}
