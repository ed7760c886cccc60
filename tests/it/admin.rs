//! The admin API end to end: a started instance on port 0 with a real
//! SQLite journal, a rule that posts to a fake Slack on 127.0.0.1, and
//! HTTP requests to the admin listener with and without the bearer token.

use serde_json::Value;

use crate::delivery::{FakeSlack, fake_slack, project_with_admin, wait_states};
use crate::support::{count, post_to, rows};

pub(crate) const TOKEN: &str = "admin-token-0123456789abcdef";

/// The delivery tests' project, with the admin API on (`token`) or off (`None`).
fn project(
    webhook_url: &str,
    token: Option<&str>,
) -> (tempfile::TempDir, switchyard::config::Config) {
    let token = token.map_or(String::new(), |t| format!(", token: \"{t}\""));
    project_with_admin(webhook_url, &format!("{{ listen: 127.0.0.1:0{token} }}"))
}

/// A status and a JSON body (`Null` when the body is not JSON).
struct Got {
    status: u16,
    json: Value,
    www_authenticate: Option<String>,
}

impl Got {
    fn error(&self) -> (u16, &str, &str) {
        (
            self.status,
            self.json["error"].as_str().unwrap_or("<none>"),
            self.json["message"].as_str().unwrap_or("<none>"),
        )
    }
}

async fn call(req: reqwest::RequestBuilder) -> Got {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let www_authenticate = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    Got {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        www_authenticate,
    }
}

struct Admin {
    base: String,
    client: reqwest::Client,
}

impl Admin {
    fn new(running: &switchyard::app::Running) -> Admin {
        Admin {
            base: format!("http://{}", running.admin_addr.unwrap()),
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Got {
        call(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(TOKEN),
        )
        .await
    }

    async fn ok(&self, path: &str) -> Value {
        let got = self.get(path).await;
        assert_eq!(got.status, 200, "GET {path}: {}", got.json);
        got.json
    }

    async fn replay(&self, body: &str) -> Got {
        call(
            self.client
                .post(format!("{}/api/replay", self.base))
                .bearer_auth(TOKEN)
                .body(body.to_owned()),
        )
        .await
    }
}

/// An instance whose target is never reached, with the API on (`token`) or off.
async fn start(token: Option<&str>) -> (tempfile::TempDir, switchyard::app::Running, Admin) {
    let (d, config) = project("http://127.0.0.1:9/unused", token);
    let running = switchyard::app::start(config).await.unwrap();
    let admin = Admin::new(&running);
    (d, running, admin)
}

/// Two events, of which Slack refuses the first (dead letter) and takes the second.
pub(crate) async fn one_dead_one_delivered()
-> (FakeSlack, tempfile::TempDir, switchyard::app::Running) {
    let slack = fake_slack(vec![(404, "channel_not_found", None)]).await;
    let (d, config) = project(&slack.url, Some(TOKEN));
    let running = switchyard::app::start(config).await.unwrap();
    post_to(running.addr, "/h", r#"[{"type":"t","label":"first"}]"#).await;
    wait_states(&d.path().join("journal.db"), &["dead"]).await;
    post_to(running.addr, "/h", r#"[{"type":"t","label":"second"}]"#).await;
    wait_states(&d.path().join("journal.db"), &["dead", "delivered"]).await;
    (slack, d, running)
}

#[tokio::test]
async fn events_actions_and_dead_letters_are_listed_and_a_dead_letter_is_replayed() {
    let (slack, d, running) = one_dead_one_delivered().await;
    let db = d.path().join("journal.db");
    let admin = Admin::new(&running);

    // Events, newest first, with how they ended and no body.
    let list = admin.ok("/api/events").await;
    let events = list["events"].as_array().unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(events[0]["type"], "t");
    assert_eq!(events[0]["source"], "s");
    assert_eq!(events[0]["state"], "pending");
    assert_eq!(events[0]["outcome"], "routed");
    assert!(events[0].get("body").is_none(), "{list}");
    assert_eq!(list["next_before"], Value::Null);

    // Paging by id.
    let page = admin.ok("/api/events?limit=1").await;
    assert_eq!(page["events"][0]["id"], 2);
    assert_eq!(page["next_before"], 2);
    let page = admin.ok("/api/events?limit=1&before=2").await;
    assert_eq!(page["events"][0]["id"], 1);
    let page = admin.ok("/api/events?before=1").await;
    assert_eq!(page["events"], Value::Array(vec![]));
    assert_eq!(
        admin.ok("/api/events?outcome=no_rule").await["events"],
        Value::Array(vec![])
    );
    assert_eq!(
        admin.ok("/api/events?type=t&outcome=routed").await["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A rejected element is listed by state, and is never "unevaluated":
    // it will not be routed.
    post_to(running.addr, "/h", r#"[{"no":"type"}]"#).await;
    // Answered 200 once in the ingest log; listed once indexed.
    crate::support::wait_for_async(|| async {
        let r = admin.ok("/api/events?state=rejected").await;
        match r["events"].as_array().map(Vec::len) {
            Some(1) => Ok(()),
            _ => Err(format!("not indexed yet: {r}")),
        }
    })
    .await;
    let rejected = admin.ok("/api/events?state=rejected").await;
    assert_eq!(rejected["events"][0]["id"], 3, "{rejected}");
    assert_eq!(rejected["events"][0]["reason"], "missing `type`");
    assert_eq!(rejected["events"][0]["outcome"], Value::Null);
    assert_eq!(
        admin.ok("/api/events?outcome=unevaluated").await["events"],
        Value::Array(vec![])
    );

    // One event: its exact bytes, its rule run and its action.
    let ev = admin.ok("/api/events/1").await;
    assert_eq!(ev["body"], r#"{"type":"t","label":"first"}"#);
    assert_eq!(ev["rule_runs"][0]["rule"], "t.rhai", "{ev}");
    let action_id = ev["actions"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ev["actions"][0]["state"], "dead");

    // The dead letter, and the action with its attempt.
    let dead = admin.ok("/api/dead-letters").await;
    assert_eq!(dead["actions"].as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead["actions"][0]["id"], action_id.as_str());
    assert!(
        dead["actions"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("channel_not_found"),
        "{dead}"
    );
    let a = admin.ok(&format!("/api/actions/{action_id}")).await;
    assert_eq!(a["event_id"], 1);
    assert_eq!(a["payload"]["text"], "first", "{a}");
    assert_eq!(a["attempt_log"][0]["status"], 404, "{a}");
    assert_eq!(a["attempt_log"][0]["result"], "dead", "{a}");
    assert_eq!(
        admin.ok("/api/actions?state=delivered").await["actions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Replay: another target selects nothing; this one sends it again.
    let none = admin.replay(r#"{"target":"other"}"#).await;
    assert_eq!(
        (none.status, none.json["replayed"].as_i64()),
        (200, Some(0))
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM actions WHERE state = 'dead'"),
        1
    );
    let one = admin.replay(r#"{"target":"support"}"#).await;
    assert_eq!((one.status, one.json["replayed"].as_i64()), (200, Some(1)));
    wait_states(&db, &["delivered", "delivered"]).await;
    assert_eq!(slack.received.lock().unwrap().len(), 3);
    assert_eq!(
        admin.ok("/api/dead-letters").await["actions"],
        Value::Array(vec![])
    );
    running.stop().await;
}

#[tokio::test]
async fn the_api_refuses_missing_wrong_and_doubled_tokens_and_changes_nothing() {
    let (_slack, d, running) = one_dead_one_delivered().await;
    let db = d.path().join("journal.db");
    let base = format!("http://{}", running.admin_addr.unwrap());
    let c = reqwest::Client::new();
    let refused = [
        (
            call(c.get(format!("{base}/api/events"))).await,
            "missing_token",
            "send the admin token as `Authorization: Bearer <admin.token>`",
        ),
        (
            call(
                c.get(format!("{base}/api/events"))
                    .bearer_auth("admin-token-0123456789abcdeX"),
            )
            .await,
            "bad_token",
            "wrong admin token",
        ),
        (
            call(
                c.get(format!("{base}/api/events"))
                    .bearer_auth(&TOKEN[..TOKEN.len() - 1]),
            )
            .await,
            "bad_token",
            "wrong admin token",
        ),
        (
            call(
                c.get(format!("{base}/api/events"))
                    .basic_auth("admin", Some(TOKEN)),
            )
            .await,
            "bad_token",
            "the Authorization header must be `Bearer <admin.token>`",
        ),
        (
            call(
                c.get(format!("{base}/api/events"))
                    .header("authorization", "Bearer wrong")
                    .header("authorization", format!("Bearer {TOKEN}")),
            )
            .await,
            "bad_token",
            "wrong admin token",
        ),
        // An unknown route says nothing without the token either.
        (
            call(c.get(format!("{base}/api/nothing-here"))).await,
            "missing_token",
            "send the admin token as `Authorization: Bearer <admin.token>`",
        ),
        (
            call(
                c.post(format!("{base}/api/replay"))
                    .bearer_auth("nope")
                    .body("{}"),
            )
            .await,
            "bad_token",
            "wrong admin token",
        ),
    ];
    for (got, code, message) in &refused {
        assert_eq!(got.error(), (401, *code, *message));
        assert_eq!(
            got.www_authenticate.as_deref(),
            Some("Bearer realm=\"switchyard admin\"")
        );
    }
    // The refused replay left the dead letter dead.
    assert_eq!(
        count(&db, "SELECT count(*) FROM actions WHERE state = 'dead'"),
        1
    );
    // With the token, an empty selector replays every dead letter.
    let all = Admin::new(&running).replay("{}").await;
    assert_eq!((all.status, all.json["replayed"].as_i64()), (200, Some(1)));
    wait_states(&db, &["delivered", "delivered"]).await;
    // Probes and scrapers need no token.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let status = c
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "GET {path}");
    }
    running.stop().await;
}

#[tokio::test]
async fn without_a_token_the_api_is_off_and_says_how_to_turn_it_on() {
    let (d, running, admin) = start(None).await;
    let got = admin.get("/api/events").await;
    assert_eq!(
        got.error(),
        (
            403,
            "api_disabled",
            "the admin API is off: set admin.token (or admin.token_file) in config.yaml"
        )
    );
    let got = admin.replay("{}").await;
    assert_eq!(got.error().0, 403);
    assert_eq!(
        admin
            .client
            .get(format!("{}/readyz", admin.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    running.stop().await;
    drop(d);
}

#[tokio::test]
async fn bad_queries_paths_and_bodies_are_400_404_405_and_change_nothing() {
    let (_slack, d, running) = one_dead_one_delivered().await;
    let db = d.path().join("journal.db");
    let admin = Admin::new(&running);
    let cases: &[(&str, u16, &str, &str)] = &[
        (
            "/api/events?limit=0",
            400,
            "bad_query",
            "limit \"0\" must be a number from 1 to 1000",
        ),
        (
            "/api/events?limit=1001",
            400,
            "bad_query",
            "limit \"1001\" must be a number from 1 to 1000",
        ),
        (
            "/api/events?limit=ten",
            400,
            "bad_query",
            "limit \"ten\" must be a number from 1 to 1000",
        ),
        (
            "/api/events?before=-1",
            400,
            "bad_query",
            "before \"-1\" is not an id (a positive integer)",
        ),
        (
            "/api/events?state=done",
            400,
            "bad_query",
            "state \"done\" is not one of: pending, rejected",
        ),
        (
            "/api/events?outcome=ok",
            400,
            "bad_query",
            "outcome \"ok\" is not one of: routed, no_rule, rule_error, unevaluated",
        ),
        (
            "/api/events?tpye=t",
            400,
            "bad_query",
            "unknown query parameter \"tpye\" (this route takes: type, source, state, outcome, before, limit)",
        ),
        (
            "/api/events?type=t&type=u",
            400,
            "bad_query",
            "type is given twice",
        ),
        (
            "/api/actions?state=failed",
            400,
            "bad_query",
            "state \"failed\" is not one of: pending, delivering, delivered, dead, held",
        ),
        (
            "/api/dead-letters?state=dead",
            400,
            "bad_query",
            "unknown query parameter \"state\" (this route takes: target, limit)",
        ),
        (
            "/api/events/abc",
            400,
            "bad_query",
            "\"abc\" is not an id (a positive integer)",
        ),
        (
            "/api/events/0",
            400,
            "bad_query",
            "\"0\" is not an id (a positive integer)",
        ),
        ("/api/events/999", 404, "not_found", "no event with id 999"),
        (
            "/api/actions/nope",
            404,
            "not_found",
            "no action with id \"nope\"",
        ),
        (
            "/api/nothing-here",
            404,
            "not_found",
            "no admin API route at this path",
        ),
    ];
    for (path, status, code, message) in cases {
        assert_eq!(
            admin.get(path).await.error(),
            (*status, *code, *message),
            "GET {path}"
        );
    }
    let delete = call(
        admin
            .client
            .delete(format!("{}/api/events", admin.base))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(
        delete.error(),
        (405, "method_not_allowed", "this route does not take DELETE")
    );
    let bodies: &[(&str, &str)] = &[
        (
            "",
            "the body must be a JSON object with optional target, id, since, until: EOF while parsing a value at line 1 column 0",
        ),
        (
            "not json",
            "the body must be a JSON object with optional target, id, since, until: expected ident at line 1 column 2",
        ),
        (
            "[]",
            "the body must be a JSON object with optional target, id, since, until: invalid type: sequence, expected a map at line 1 column 0",
        ),
        (
            r#"["support",null,null,null]"#,
            "the body must be a JSON object with optional target, id, since, until: invalid type: sequence, expected a map at line 1 column 0",
        ),
        (
            r#"{"targt":"support"}"#,
            "the body must be a JSON object with optional target, id, since, until: unknown field `targt`, expected one of `target`, `id`, `since`, `until`",
        ),
        (
            r#"{"target":5}"#,
            "the body must be a JSON object with optional target, id, since, until: invalid type: integer `5`, expected a string",
        ),
        (
            r#"{"since":"yesterday"}"#,
            "since \"yesterday\" is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)",
        ),
        (
            r#"{"until":"2026-13-01T00:00:00Z"}"#,
            "until \"2026-13-01T00:00:00Z\" is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)",
        ),
    ];
    for (body, message) in bodies {
        assert_eq!(
            admin.replay(body).await.error(),
            (400, "bad_body", *message),
            "body {body:?}"
        );
    }
    // Nothing was replayed by any of them.
    assert_eq!(
        rows(&db, "SELECT state FROM actions ORDER BY event_id"),
        ["dead", "delivered"]
    );
    running.stop().await;
}

#[tokio::test]
async fn a_rule_that_fails_to_reload_shows_its_error_and_the_live_version() {
    let (d, running, admin) = start(Some(TOKEN)).await;
    let before = admin.ok("/api/rules").await;
    assert_eq!(before["files"][0]["file"], "t.rhai");
    assert_eq!(before["files"][0]["event_type"], "t");
    assert_eq!(before["reload_errors"], Value::Array(vec![]));
    let version = before["version"].as_str().unwrap().to_owned();
    std::fs::write(
        d.path().join("rules/u.rhai"),
        "fn on_event(e) { slack(\"support\", ; }",
    )
    .unwrap();
    assert!(!running.rules.reload());
    let after = admin.ok("/api/rules").await;
    assert_eq!(
        after["version"],
        version.as_str(),
        "the last good set stays live"
    );
    let errors = after["reload_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{after}");
    assert!(
        errors[0].as_str().unwrap().starts_with("u.rhai:1:"),
        "{after}"
    );
    running.stop().await;
}

#[tokio::test]
async fn quarantined_bodies_are_listed_without_their_bytes() {
    let (d, running, admin) = start(Some(TOKEN)).await;
    crate::support::post_expecting(running.addr, "/h", r#"{"type":"t"}"#, 400).await;
    let q = admin.ok("/api/quarantine").await;
    let rows = q["quarantine"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{q}");
    assert_eq!(rows[0]["source"], "s");
    assert_eq!(rows[0]["code"], "not_an_array");
    assert_eq!(rows[0]["bytes"], 12);
    assert!(rows[0].get("body").is_none());
    assert_eq!(
        count(&d.path().join("journal.db"), "SELECT count(*) FROM events"),
        0
    );
    running.stop().await;
}

/// The value of the metric line starting with `name ` in `/metrics`.
async fn gauge(base: &str, name: &str) -> i64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn backlog_gauges_count_dead_letters_held_actions_and_the_oldest_ones_age() {
    let (_slack, _d, running) = one_dead_one_delivered().await;
    let base = format!("http://{}", running.admin_addr.unwrap());
    assert_eq!(gauge(&base, "switchyard_actions{state=\"dead\"}").await, 1);
    assert_eq!(
        gauge(&base, "switchyard_actions{state=\"pending\"}").await,
        0
    );
    assert_eq!(
        gauge(&base, "switchyard_actions_oldest_unsent_age_seconds").await,
        0
    );
    assert_eq!(gauge(&base, "switchyard_events_unevaluated").await, 0);
    running.stop().await;

    // A target without its URL holds its actions: they wait, and age.
    let (d, config) = project("", None);
    let running = switchyard::app::start(config).await.unwrap();
    let db = d.path().join("journal.db");
    post_to(running.addr, "/h", r#"[{"type":"t","label":"waits"}]"#).await;
    wait_states(&db, &["held"]).await;
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("UPDATE actions SET created_at = created_at - 120000", [])
        .unwrap();
    let base = format!("http://{}", running.admin_addr.unwrap());
    assert_eq!(gauge(&base, "switchyard_actions{state=\"held\"}").await, 1);
    assert_eq!(gauge(&base, "switchyard_actions{state=\"dead\"}").await, 0);
    let age = gauge(&base, "switchyard_actions_oldest_unsent_age_seconds").await;
    assert!((120..180).contains(&age), "{age}");
    running.stop().await;
}

#[tokio::test]
async fn reevaluate_answers_what_an_edited_rule_would_change_and_writes_nothing() {
    let (_slack, d, running) = one_dead_one_delivered().await;
    let db = d.path().join("journal.db");
    let admin = Admin::new(&running);
    let post = |body: &'static str| {
        call(
            admin
                .client
                .post(format!("{}/api/reevaluate", admin.base))
                .bearer_auth(TOKEN)
                .body(body),
        )
    };
    let same = post("{}").await;
    assert_eq!(same.status, 200, "{}", same.json);
    assert_eq!(same.json["summary"]["events"], 2);
    assert_eq!(same.json["summary"]["unchanged"], 2);
    assert_eq!(same.json["changes"], Value::Array(vec![]));

    std::fs::write(
        d.path().join("rules/t.rhai"),
        r#"fn on_event(e) { slack("support", `now ${e.label}`); }"#,
    )
    .unwrap();
    assert!(running.rules.reload());
    let before = count(&db, "SELECT count(*) FROM actions");
    let changed = post(r#"{"type":"t","limit":1}"#).await;
    assert_eq!(changed.status, 200, "{}", changed.json);
    assert_eq!(changed.json["summary"]["events"], 1);
    assert_eq!(changed.json["more"], false);
    let c = &changed.json["changes"][0];
    assert_eq!(c["event"], 1);
    assert_eq!(
        (c["was"].as_str(), c["now"].as_str()),
        (Some("routed"), Some("routed"))
    );
    assert_eq!(c["removed"][0]["payload"], r#"{"text":"first"}"#);
    assert_eq!(c["added"][0]["payload"], r#"{"text":"now first"}"#);
    assert_eq!(count(&db, "SELECT count(*) FROM actions"), before);

    let prefix = "the body must be a JSON object with optional since, until, type, limit: ";
    for (body, message) in [
        (
            r#"{"limit":0}"#,
            "limit 0 must be a number from 1 to 10000".to_owned(),
        ),
        (
            r#"{"limit":10001}"#,
            "limit 10001 must be a number from 1 to 10000".to_owned(),
        ),
        (
            r#"{"tipe":"t"}"#,
            format!(
                "{prefix}unknown field `tipe`, expected one of `since`, `until`, `type`, `limit`"
            ),
        ),
        (
            r#"{"since":"noon"}"#,
            "since \"noon\" is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)".to_owned(),
        ),
        (
            "[]",
            format!("{prefix}invalid type: sequence, expected a map at line 1 column 0"),
        ),
    ] {
        assert_eq!(
            post(body).await.error(),
            (400, "bad_body", message.as_str()),
            "{body}"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn an_event_acknowledged_but_not_indexed_is_read_from_the_ingest_log() {
    let (d, running, admin) = start(Some(TOKEN)).await;
    post_to(running.addr, "/h", r#"[{"type":"u","n":1}]"#).await;
    crate::support::wait_for_async(|| async {
        match admin.get("/api/events/1").await.status {
            200 => Ok(()),
            s => Err(format!("event 1 not indexed yet ({s})")),
        }
    })
    .await;
    // As if the index had not caught up with the log yet.
    crate::support::forget_index(&d.path().join("journal.db"));
    let ev = admin.ok("/api/events/1").await;
    assert_eq!(ev["indexed"], false, "{ev}");
    assert_eq!(ev["type"], "u");
    assert_eq!(ev["body"], r#"{"type":"u","n":1}"#);
    assert_eq!(
        admin.get("/api/events/2").await.error(),
        (404, "not_found", "no event with id 2")
    );
    running.stop().await;
}

#[tokio::test]
async fn a_journal_that_cannot_be_read_is_503_store_unavailable() {
    let (d, running, admin) = start(Some(TOKEN)).await;
    // The running writer keeps its open file; a new reader finds nothing.
    let db = d.path().join("journal.db");
    std::fs::rename(&db, d.path().join("moved.db")).unwrap();
    for path in [
        "/api/events",
        "/api/events/1",
        "/api/dead-letters",
        "/api/quarantine",
    ] {
        assert_eq!(
            admin.get(path).await.error(),
            (
                503,
                "store_unavailable",
                "the journal is unavailable; retry later"
            ),
            "GET {path}"
        );
    }
    std::fs::rename(d.path().join("moved.db"), &db).unwrap();
    assert_eq!(admin.get("/api/events").await.status, 200);
    running.stop().await;
}

#[tokio::test]
async fn targets_show_readiness_why_one_holds_and_each_backlog() {
    let (_slack, _d, running) = one_dead_one_delivered().await;
    let admin = Admin::new(&running);
    let t = admin.ok("/api/targets").await;
    assert_eq!(t["targets"].as_array().unwrap().len(), 1, "{t}");
    let s = &t["targets"][0];
    assert_eq!(s["name"], "support");
    assert_eq!(s["kind"], "slack");
    assert_eq!(
        (s["configured"].as_bool(), s["ready"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(s["held_reason"], Value::Null);
    assert_eq!(s["paused"], false);
    assert_eq!(
        s["actions"],
        serde_json::json!({"pending": 0, "delivering": 0, "held": 0, "dead": 1})
    );
    running.stop().await;

    let (d, config) = project("", Some(TOKEN));
    let running = switchyard::app::start(config).await.unwrap();
    post_to(running.addr, "/h", r#"[{"type":"t","label":"waits"}]"#).await;
    wait_states(&d.path().join("journal.db"), &["held"]).await;
    let t = Admin::new(&running).ok("/api/targets").await;
    let s = &t["targets"][0];
    assert_eq!(s["ready"], false, "{t}");
    assert!(
        s["held_reason"]
            .as_str()
            .unwrap()
            .contains("neither webhook_url nor token is set"),
        "{t}"
    );
    assert_eq!(s["actions"]["held"], 1);
    running.stop().await;
}
