//! The dashboard in headless Chromium (driven by tests/dashboard/drive.mjs
//! through puppeteer-core), over a started instance with a real journal: a
//! dead letter replayed by a click, a rule edit that failed to reload, an
//! event whose type is markup, and a quarantined body.

use serde_json::Value;

use crate::admin::{TOKEN, one_dead_one_delivered};
use crate::delivery::wait_states;
use crate::support::post_to;

/// Runs the browser script against `base`; returns what it saw.
async fn drive(base: &str) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard");
    assert!(
        dir.join("node_modules/puppeteer-core").exists(),
        "tests/dashboard/node_modules is missing: scripts/test.sh installs it (npm ci) and Chromium"
    );
    let out = tokio::process::Command::new("node")
        .arg(dir.join("drive.mjs"))
        .args([base, TOKEN])
        .output()
        .await
        .expect("node runs (scripts/test.sh installs Node's packages and Chromium)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drive.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen.get("failure"), None, "{seen:#}");
    seen
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_operator_signs_in_sees_the_journal_and_replays_a_dead_letter_by_a_click() {
    let (slack, d, running) = one_dead_one_delivered().await;
    let db = d.path().join("journal.db");
    // An event whose type is markup, a body that is not a batch, a rule
    // edit that does not compile.
    let markup = r#"<img src=x onerror="window.__injected=1">"#;
    post_to(
        running.addr,
        "/h",
        &serde_json::json!([{ "type": markup }]).to_string(),
    )
    .await;
    crate::support::post_expecting(running.addr, "/h", "{}", 400).await;
    // The page reads what is indexed and evaluated: wait for the markup event.
    crate::support::wait_until("3 evaluations", || {
        crate::support::count(&db, "SELECT count(*) FROM evaluations") == 3
    })
    .await;
    // The live rule now says something else; then an edit that fails.
    std::fs::write(
        d.path().join("rules/t.rhai"),
        r#"fn on_event(e) { slack("support", `now ${e.label}`); }"#,
    )
    .unwrap();
    assert!(running.rules.reload());
    std::fs::write(d.path().join("rules/u.rhai"), "fn on_event(e) { slack(; }").unwrap();
    assert!(!running.rules.reload());
    let version = running.rules.current().version.to_string();

    let seen = drive(&format!("http://{}", running.admin_addr.unwrap())).await;

    assert_eq!(seen["board_shown_without_token"], false, "{seen:#}");
    assert_eq!(seen["login_shown_without_token"], true, "{seen:#}");
    assert_eq!(seen["board_shown_with_token"], true, "{seen:#}");
    assert_eq!(seen["login_shown_with_token"], false, "{seen:#}");
    assert_eq!(seen["wrong_token_message"], "wrong admin token");
    assert_eq!(seen["health"], "journal ok");
    assert_eq!(seen["rules_version"], format!("version {version}"));
    assert_eq!(strings(&seen["rule_files"]), ["t.rhai"]);
    let errors = strings(&seen["rule_errors"]);
    assert_eq!(errors.len(), 1, "{seen:#}");
    assert!(errors[0].starts_with("u.rhai:1:"), "{seen:#}");
    assert_eq!(strings(&seen["targets"]), ["support|slack|ready|0|0|0|1"]);
    assert_eq!(seen["dead_ids"].as_array().unwrap().len(), 1);
    assert!(
        strings(&seen["dead_errors"])[0].contains("channel_not_found"),
        "{seen:#}"
    );
    // Newest first; the markup is shown as text and nothing ran.
    assert_eq!(strings(&seen["event_types"]), [markup, "t", "t"]);
    assert_eq!(
        strings(&seen["event_outcomes"]),
        ["no_rule", "routed", "routed"]
    );
    assert_eq!(seen["injected_elements"], 0);
    assert_eq!(seen["injected_script_ran"], false);
    assert_eq!(seen["token_in_address_bar"], false);
    assert_eq!(strings(&seen["quarantine_codes"]), ["not_an_array"]);
    assert_eq!(seen["replay_result"], "1 dead letter queued again");
    assert_eq!(seen["dead_after_replay"], 0);
    assert_eq!(strings(&seen["routed_only"]), ["routed", "routed"]);
    assert_eq!(seen["dry_summary"], "3 events: 1 unchanged, 2 changed");
    assert_eq!(strings(&seen["dry_events"]), ["1", "2"]);
    assert_eq!(
        strings(&seen["dry_removed"]),
        [
            r#"slack support {"text":"first"} (t.rhai)"#,
            r#"slack support {"text":"second"} (t.rhai)"#
        ]
    );
    assert_eq!(
        strings(&seen["dry_added"]),
        [
            r#"slack support {"text":"now first"} (t.rhai)"#,
            r#"slack support {"text":"now second"} (t.rhai)"#
        ]
    );
    assert_eq!(seen["errors"], Value::Array(vec![]), "{seen:#}");
    // No CSP violation or script error reached the console; the only
    // errors are the wrong token's refused requests.
    let console = strings(&seen["console"]);
    let unexpected: Vec<_> = console
        .iter()
        .filter(|l| l.starts_with("error") && !l.ends_with("status of 401 (Unauthorized)"))
        .collect();
    assert!(unexpected.is_empty(), "{console:?}");

    // The click really sent it again.
    wait_states(&db, &["delivered", "delivered"]).await;
    assert_eq!(slack.received.lock().unwrap().len(), 3);
    running.stop().await;
}

#[tokio::test]
async fn the_page_is_served_without_a_token_under_a_strict_content_security_policy() {
    let (_slack, _d, running) = one_dead_one_delivered().await;
    let base = format!("http://{}", running.admin_addr.unwrap());
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/dashboard.js", "text/javascript; charset=utf-8"),
        ("/dashboard.css", "text/css; charset=utf-8"),
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        let h = r.headers();
        assert_eq!(h["content-type"], kind);
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = r.text().await.unwrap();
        // The page carries no journal data and no token of its own.
        assert!(!body.contains(TOKEN));
        assert!(!body.contains("channel_not_found"));
    }
    running.stop().await;
}
