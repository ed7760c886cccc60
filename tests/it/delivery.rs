//! Delivery end to end: a signed-or-not POST → journal → rule → outbox →
//! a fake Slack on 127.0.0.1 that answers the way Slack does (plain-text
//! errors, 429 with Retry-After, 5xx), and the attempts recorded.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::support::rows;

async fn post(addr: std::net::SocketAddr, body: &str) {
    crate::support::post_to(addr, "/h", body).await;
}

/// Posts one batch of `n` `t` events labelled `m0`, `m1`, ...
async fn post_labelled(addr: std::net::SocketAddr, n: usize) {
    let batch: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"type":"t","label":"m{i}"}}"#))
        .collect();
    post(addr, &format!("[{}]", batch.join(","))).await;
}

/// A recording fake Slack incoming webhook. Answers from `script` first,
/// then `200 ok`.
pub(crate) struct FakeSlack {
    pub url: String,
    pub received: Arc<Mutex<Vec<serde_json::Value>>>,
}

type Script = Arc<Mutex<VecDeque<(u16, &'static str, Option<&'static str>)>>>;

pub(crate) async fn fake_slack(
    script: Vec<(u16, &'static str, Option<&'static str>)>,
) -> FakeSlack {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let script: Script = Arc::new(Mutex::new(script.into()));
    let (r, sc) = (received.clone(), script.clone());
    let app = axum::Router::new().route(
        "/services/T000/B000/secret-token",
        axum::routing::post(move |body: String| {
            let (r, sc) = (r.clone(), sc.clone());
            async move {
                r.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null));
                let (status, text, retry_after) =
                    sc.lock().unwrap().pop_front().unwrap_or((200, "ok", None));
                let mut resp = (StatusCode::from_u16(status).unwrap(), text).into_response();
                if let Some(ra) = retry_after {
                    resp.headers_mut()
                        .insert("retry-after", ra.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeSlack {
        url: format!("http://{addr}/services/T000/B000/secret-token"),
        received,
    }
}

fn project(webhook_url: &str) -> (tempfile::TempDir, switchyard::config::Config) {
    project_with_admin(webhook_url, "{ listen: null }")
}

/// A project whose rule posts every `t` event's label to the Slack target
/// `support` at `webhook_url`, from an unsigned source at `/h`, with the
/// `admin:` section `admin` and fast retries.
pub(crate) fn project_with_admin(
    webhook_url: &str,
    admin: &str,
) -> (tempfile::TempDir, switchyard::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/t.rhai"),
        r#"fn on_event(e) { slack("support", e.label); }"#,
    )
    .unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {admin}\ndelivery:\n  retry: {{ schedule: [20ms], floor: 20ms }}\n  rate: {{ per_second: 1000, burst: 100 }}\ntargets:\n  support: {{ kind: slack, webhook_url: \"{webhook_url}\" }}\nsources:\n  s: {{ path: /h, verify: none }}\n"
    );
    std::fs::write(dir.path().join("config.yaml"), &text).unwrap();
    let config =
        switchyard::config::Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    (dir, config)
}

async fn wait_state(db: &Path, want: &str) {
    let started = Instant::now();
    loop {
        if rows(db, "SELECT state FROM actions")
            .first()
            .map(String::as_str)
            == Some(want)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "action never reached {want}: {:?}",
            rows(
                db,
                "SELECT state || ' ' || coalesce(last_error, '') FROM actions"
            )
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn slack_500_three_times_then_200_is_delivered_once_with_four_attempts() {
    let slack = fake_slack(vec![
        (500, "rollup_error", None),
        (500, "rollup_error", None),
        (503, "", None),
    ])
    .await;
    let (d, config) = project(&slack.url);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(
        running.addr,
        r#"[{"type":"t","label":"<!channel> Tom & Jerry"}]"#,
    )
    .await;
    wait_state(&db, "delivered").await;
    running.stop().await;
    let got = slack.received.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    // Event text cannot ping the channel.
    assert_eq!(
        got[3],
        serde_json::json!({"text": "&lt;!channel&gt; Tom &amp; Jerry"})
    );
    assert_eq!(
        rows(
            &db,
            "SELECT result || ' ' || coalesce(status, '') FROM action_attempts ORDER BY attempt"
        ),
        vec!["retry 500", "retry 500", "retry 503", "delivered 200"]
    );
}

#[tokio::test]
async fn slack_invalid_payload_is_dead_lettered_at_once_with_slacks_text() {
    let slack = fake_slack(vec![(400, "invalid_payload", None)]).await;
    let (d, config) = project(&slack.url);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"x"}]"#).await;
    wait_state(&db, "dead").await;
    running.stop().await;
    assert_eq!(slack.received.lock().unwrap().len(), 1);
    assert_eq!(
        rows(&db, "SELECT last_error FROM actions"),
        vec!["400 Bad Request: invalid_payload"]
    );
}

#[tokio::test]
async fn slack_429_retry_after_7_is_not_retried_before_7_seconds() {
    let slack = fake_slack(vec![(429, "rate_limited", Some("7"))]).await;
    let (d, config) = project(&slack.url);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"x"}]"#).await;
    let started = Instant::now();
    while rows(&db, "SELECT result FROM action_attempts").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no attempt recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await;
    let wait: Vec<String> = rows(
        &db,
        "SELECT CAST(a.due_at - t.started_at AS TEXT) FROM actions a JOIN action_attempts t ON t.action_id = a.id",
    );
    let wait: i64 = wait[0].parse().unwrap();
    assert!(wait >= 7_000, "next attempt due after {wait} ms");
    assert_eq!(rows(&db, "SELECT state FROM actions"), vec!["pending"]);
    assert_eq!(slack.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unconfigured_target_holds_its_actions_without_failing_them() {
    let (d, config) = project("");
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"x"}]"#).await;
    wait_state(&db, "held").await;
    running.stop().await;
    let err = rows(&db, "SELECT last_error FROM actions");
    assert!(
        err[0].contains("targets.support: neither webhook_url nor token is set"),
        "{err:?}"
    );
    // Configured later and restarted: it goes out.
    let slack = fake_slack(vec![]).await;
    let (_, mut config2) = project(&slack.url);
    config2.store = switchyard::config::StoreUrl::Sqlite(db.clone());
    config2.rules.dir = d.path().join("rules");
    let running = switchyard::app::start(config2).await.unwrap();
    wait_state(&db, "delivered").await;
    running.stop().await;
    assert_eq!(slack.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_retries_and_never_logs_the_webhook_secret() {
    let (d, config) = project("http://127.0.0.1:1/services/T000/B000/secret-token");
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"x"}]"#).await;
    let started = Instant::now();
    while rows(&db, "SELECT result FROM action_attempts").len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no retries recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await;
    for e in rows(&db, "SELECT coalesce(error, '') FROM action_attempts") {
        assert!(!e.contains("secret-token"), "{e}");
        assert!(!e.is_empty());
    }
}

#[tokio::test]
async fn a_dead_letter_replayed_from_the_cli_goes_out() {
    let slack = fake_slack(vec![(404, "channel_not_found", None)]).await;
    let (d, config) = project(&slack.url);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config.clone()).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"x"}]"#).await;
    wait_state(&db, "dead").await;
    running.stop().await;
    let cli = |args: &[&str]| {
        crate::support::stdout_of(
            crate::support::bin()
                .arg("--config")
                .arg(d.path().join("config.yaml"))
                .args(args),
        )
    };
    let listed = cli(&["actions", "--state", "dead"]);
    assert!(
        listed.contains(
            "dead       support      slack   attempts=1  404 Not Found: channel_not_found"
        ),
        "{listed}"
    );
    assert_eq!(
        cli(&["replay", "--dead", "--target", "other"]),
        "0 dead letters queued again\n"
    );
    assert_eq!(
        cli(&["replay", "--dead", "--target", "support"]),
        "1 dead letter queued again\n"
    );
    let running = switchyard::app::start(config).await.unwrap();
    wait_state(&db, "delivered").await;
    running.stop().await;
    assert_eq!(slack.received.lock().unwrap().len(), 2);
}

/// A fake Slack Web API: records requests, answers `ok:false` with `errors`
/// first, then `ok:true` with increasing `ts`.
async fn fake_slack_api(
    errors: Vec<&'static str>,
) -> (String, Arc<Mutex<Vec<(String, serde_json::Value)>>>) {
    let got: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let errors = Arc::new(Mutex::new(VecDeque::from(errors)));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/api/chat.postMessage",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, errors) = (g.clone(), errors.clone());
            async move {
                let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let n = {
                    let mut g = g.lock().unwrap();
                    g.push((auth, v));
                    g.len()
                };
                // Slack answers HTTP 200 even for errors.
                match errors.lock().unwrap().pop_front() {
                    Some(e) => axum::Json(serde_json::json!({"ok": false, "error": e})),
                    None => axum::Json(serde_json::json!({"ok": true, "channel": "C1", "ts": format!("1700000000.{n:06}")})),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/api"), got)
}

fn bot_project(api_url: &str) -> (tempfile::TempDir, switchyard::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/t.rhai"),
        r#"fn on_event(e) { slack("bot", #{ text: e.msg, thread_key: `session-${e.id}` }); }"#,
    )
    .unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\ndelivery:\n  retry: {{ schedule: [20ms], floor: 20ms }}\n  rate: {{ per_second: 1000, burst: 100 }}\ntargets:\n  bot: {{ kind: slack, token: xoxb-test, channel: \"#support\", api_url: \"{api_url}\" }}\nsources:\n  s: {{ path: /h, verify: none }}\n"
    );
    let config =
        switchyard::config::Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    (dir, config)
}

/// Waits until the actions' states, oldest first, are `want`.
pub(crate) async fn wait_states(db: &Path, want: &[&str]) {
    crate::support::wait_for(|| {
        let got = rows(db, "SELECT state FROM actions ORDER BY created_at, id");
        if got == want {
            Ok(())
        } else {
            Err(format!("states {got:?}, wanted {want:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn slack_web_api_threads_follow_ups_and_retries_ratelimited() {
    let (url, got) = fake_slack_api(vec!["ratelimited"]).await;
    let (d, config) = bot_project(&url);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"S1","msg":"first"}]"#).await;
    wait_states(&db, &["delivered"]).await;
    post(running.addr, r#"[{"type":"t","id":"S1","msg":"second"}]"#).await;
    wait_states(&db, &["delivered", "delivered"]).await;
    running.stop().await;
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 3, "one ratelimited answer, then two messages");
    assert_eq!(got[0].0, "Bearer xoxb-test");
    assert_eq!(got[1].1["channel"], "#support");
    assert!(
        got[1].1.get("thread_ts").is_none(),
        "the first message starts the thread"
    );
    assert_eq!(
        got[2].1["thread_ts"], "1700000000.000002",
        "the follow-up replies in it"
    );
    assert_eq!(got[2].1["text"], "second");
}

#[tokio::test]
async fn slack_web_api_ok_false_channel_not_found_is_a_dead_letter() {
    let (url, _got) = fake_slack_api(vec!["channel_not_found"]).await;
    let (d, config) = bot_project(&url);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"S2","msg":"x"}]"#).await;
    wait_states(&db, &["dead"]).await;
    running.stop().await;
    assert_eq!(
        rows(&db, "SELECT last_error FROM actions"),
        vec!["channel_not_found"]
    );
}

#[tokio::test]
async fn a_failing_target_trips_its_breaker_instead_of_burning_every_attempt() {
    let slack = fake_slack(vec![(500, "rollup_error", None); 50]).await;
    let (d, mut config) = project(&slack.url);
    config
        .targets
        .get_mut("support")
        .unwrap()
        .delivery
        .concurrency = 1;
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post_labelled(running.addr, 10).await;
    let started = Instant::now();
    loop {
        let attempts = rows(&db, "SELECT action_id FROM action_attempts").len();
        let deferred = rows(
            &db,
            "SELECT id FROM actions WHERE state = 'pending' AND attempts = 0 AND due_at > 0",
        )
        .len();
        if attempts == 5 && deferred >= 5 {
            break;
        }
        assert!(
            attempts <= 5,
            "the breaker did not stop at 5 failures: {attempts}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "attempts {attempts}, deferred {deferred}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The pause is visible to operators (and alerts).
    let m = running.metrics.render();
    assert!(
        m.contains("switchyard_target_paused{target=\"support\"} 1\n"),
        "{m}"
    );
    running.stop().await;
    assert_eq!(slack.received.lock().unwrap().len(), 5);
    assert!(rows(&db, "SELECT state FROM actions WHERE state = 'dead'").is_empty());
}

#[tokio::test]
async fn an_http_target_gets_method_path_headers_signature_and_idempotency_key() {
    /// Method, path, headers and body of each request.
    type Seen = Vec<(String, String, axum::http::HeaderMap, String)>;
    let got: Arc<Mutex<Seen>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let g = g.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            g.lock().unwrap().push((
                parts.method.to_string(),
                parts.uri.path().to_owned(),
                parts.headers,
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
            // A 50 MB answer: the connector keeps only the start of it.
            (StatusCode::OK, "x".repeat(50 << 20))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/t.rhai"),
        r#"fn on_event(e) { http("crm", #{ method: "PUT", path: `/contacts/${e.id}`, json: #{ note: e.note }, headers: #{ "x-extra": "1" } }); }"#,
    )
    .unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\ntargets:\n  crm: {{ kind: http, base_url: \"http://{addr}/v1\", headers: {{ Authorization: \"Bearer crm-token\" }}, hmac_secret: s3cr3t }}\nsources:\n  s: {{ path: /h, verify: none }}\n"
    );
    let config =
        switchyard::config::Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    let db = dir.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"H1","note":"hi"}]"#).await;
    wait_state(&db, "delivered").await;
    running.stop().await;
    let got = got.lock().unwrap();
    let (method, path, headers, body) = &got[0];
    assert_eq!((method.as_str(), path.as_str()), ("PUT", "/v1/contacts/H1"));
    assert_eq!(body, r#"{"note":"hi"}"#);
    assert_eq!(headers["authorization"], "Bearer crm-token");
    assert_eq!(headers["x-extra"], "1");
    let id = rows(&db, "SELECT id FROM actions").remove(0);
    assert_eq!(headers["idempotency-key"], id.as_str());
    let want = format!(
        "sha256={}",
        hex::encode(switchyard::ingress::verify::mac(
            b"s3cr3t",
            &[body.as_bytes()]
        ))
    );
    assert_eq!(headers["x-switchyard-signature"], want.as_str());
    let excerpt = rows(&db, "SELECT coalesce(excerpt, '') FROM action_attempts").remove(0);
    assert!(
        excerpt.len() <= 500,
        "the stored excerpt is capped: {}",
        excerpt.len()
    );
}

#[tokio::test]
async fn a_rule_can_mention_on_purpose() {
    let slack = fake_slack(vec![]).await;
    let (d, _) = project(&slack.url);
    std::fs::write(
        d.path().join("rules/t.rhai"),
        r#"fn on_event(e) { slack("support", #{ text: "<!here> " + e.label, mentions: true }); }"#,
    )
    .unwrap();
    let text = std::fs::read_to_string(d.path().join("config.yaml")).unwrap();
    let config = switchyard::config::Config::from_str_with_env(&text, d.path(), &|_| None).unwrap();
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"db down"}]"#).await;
    wait_state(&db, "delivered").await;
    running.stop().await;
    assert_eq!(
        slack.received.lock().unwrap()[0],
        serde_json::json!({"text": "<!here> db down"})
    );
}

#[tokio::test]
async fn stopping_with_a_send_hung_releases_its_lease() {
    let hits = Arc::new(Mutex::new(0usize));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            *h.lock().unwrap() += 1;
            tokio::time::sleep(Duration::from_secs(120)).await; // never answers in time
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (d, mut config) = project(&format!("http://{addr}/hook"));
    config.server.shutdown_timeout = switchyard::config::Span(Duration::from_millis(200));
    config.targets.get_mut("support").unwrap().delivery.timeout =
        switchyard::config::Span(Duration::from_secs(60));
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","label":"x"}]"#).await;
    crate::support::wait_until("the send to start", || *hits.lock().unwrap() == 1).await;
    assert_eq!(rows(&db, "SELECT state FROM actions"), vec!["delivering"]);
    running.stop().await;
    assert_eq!(
        rows(&db, "SELECT state || ' ' || attempts FROM actions"),
        vec!["pending 0"],
        "released for the next start, the interrupted attempt not counted"
    );
}

/// A stop drains sends on the wire, not a backlog queued behind the rate
/// limit: those are released unattempted and go out at the next start.
#[tokio::test]
async fn stopping_does_not_wait_for_sends_queued_behind_the_rate_limit() {
    let slack = fake_slack(vec![]).await;
    let (d, mut config) = project(&slack.url);
    // Long enough to send the whole backlog at 1/s if the stop waited for it.
    config.server.shutdown_timeout = switchyard::config::Span(Duration::from_secs(30));
    config.targets.get_mut("support").unwrap().delivery.rate = switchyard::config::RateConfig {
        per_second: 1.0,
        burst: 1,
    };
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post_labelled(running.addr, 6).await;
    crate::support::wait_until("the first send", || {
        slack.received.lock().unwrap().len() == 1
    })
    .await;
    running.stop().await;
    let sent = slack.received.lock().unwrap().len();
    let states = rows(
        &db,
        "SELECT state || ' ' || attempts FROM actions ORDER BY state",
    );
    let delivered = states.iter().filter(|s| *s == "delivered 1").count();
    let released = states.iter().filter(|s| *s == "pending 0").count();
    assert_eq!(delivered, sent, "{states:?}");
    assert_eq!(delivered + released, 6, "{states:?}");
    assert!(
        sent < 6,
        "the stop waited for the whole backlog: {states:?}"
    );
}
