//! Ticket targets against fakes that answer like the real APIs: Jira's
//! upsert by key (search by marker label, comment instead of a second
//! issue, also after a create whose answer timed out) and its 400 field
//! errors; PagerDuty's dedup_key.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

async fn post(addr: std::net::SocketAddr, body: &str) {
    crate::support::post_to(addr, "/h", body).await;
}

#[derive(Default)]
struct JiraState {
    issues: Vec<(String, Vec<String>, String)>,
    comments: Vec<(String, Value)>,
    creates: usize,
    /// Sleep this long before answering the first create (the issue is created anyway).
    slow_first_create: Option<Duration>,
    /// Answer every create with this 400 body.
    reject_create: Option<Value>,
    auth_seen: Vec<String>,
}

type Shared = Arc<Mutex<JiraState>>;

async fn search(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(q): Json<Value>,
) -> impl IntoResponse {
    let jql = q["jql"].as_str().unwrap_or_default().to_owned();
    let mut st = s.lock().unwrap();
    st.auth_seen.push(
        headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
    );
    let label = jql
        .split("labels = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_owned();
    let issues: Vec<Value> = st
        .issues
        .iter()
        .filter(|(_, labels, _)| labels.contains(&label))
        .map(|(k, _, summary)| json!({"key": k, "fields": {"summary": summary}}))
        .take(1)
        .collect();
    Json(json!({ "issues": issues }))
}

async fn create(State(s): State<Shared>, Json(body): Json<Value>) -> impl IntoResponse {
    let (delay, reject) = {
        let mut st = s.lock().unwrap();
        st.creates += 1;
        let delay = if st.creates == 1 {
            st.slow_first_create
        } else {
            None
        };
        (delay, st.reject_create.clone())
    };
    if let Some(r) = reject {
        return (StatusCode::BAD_REQUEST, Json(r)).into_response();
    }
    let key = {
        let mut st = s.lock().unwrap();
        let key = format!("SUP-{}", st.issues.len() + 1);
        let labels = body["fields"]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect();
        let summary = body["fields"]["summary"].as_str().unwrap().to_owned();
        st.issues.push((key.clone(), labels, summary));
        key
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await; // the client gives up before this answer
    }
    (
        StatusCode::CREATED,
        Json(json!({"id": "10001", "key": key})),
    )
        .into_response()
}

async fn comment(
    State(s): State<Shared>,
    UrlPath(key): UrlPath<String>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    s.lock().unwrap().comments.push((key, body["body"].clone()));
    (StatusCode::CREATED, Json(json!({"id": "2001"})))
}

async fn fake_jira(state: JiraState) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(state));
    let app = axum::Router::new()
        .route("/rest/api/3/search/jql", axum::routing::post(search))
        .route("/rest/api/3/issue", axum::routing::post(create))
        .route(
            "/rest/api/3/issue/{key}/comment",
            axum::routing::post(comment),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), shared)
}

fn project(rule: &str, targets: &str) -> (tempfile::TempDir, switchyard::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/t.rhai"), rule).unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\ndelivery:\n  timeout: 300ms\n  retry: {{ schedule: [20ms], floor: 20ms }}\n  rate: {{ per_second: 1000, burst: 100 }}\ntargets:\n{targets}sources:\n  s: {{ path: /h, verify: none }}\n"
    );
    let config =
        switchyard::config::Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    (dir, config)
}

fn states(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT state || ' ' || coalesce(last_error, '') FROM actions ORDER BY created_at, id",
        )
        .unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn wait_all(db: &Path, n: usize, state: &str) {
    let started = Instant::now();
    loop {
        let s = states(db);
        if s.len() == n && s.iter().all(|x| x.starts_with(state)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "actions never all {state}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const TICKET_RULE: &str = r#"fn on_event(e) { ticket("helpdesk", #{ key: `session-${e.id}`, title: `Session ${e.id}`, body: e.note, labels: ["screenmeet"] }); }"#;

fn jira_target(url: &str) -> String {
    format!(
        "  helpdesk: {{ kind: jira, base_url: \"{url}\", email: ops@acme.example, api_token: tok, project: SUP, issue_type: Task }}\n"
    )
}

#[tokio::test]
async fn jira_upsert_comments_on_the_open_issue_instead_of_a_second_one() {
    let (url, jira) = fake_jira(JiraState::default()).await;
    let (d, config) = project(TICKET_RULE, &jira_target(&url));
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"A1","note":"first"}]"#).await;
    wait_all(&db, 1, "delivered").await;
    post(running.addr, r#"[{"type":"t","id":"A1","note":"second"}]"#).await;
    wait_all(&db, 2, "delivered").await;
    running.stop().await;
    let st = jira.lock().unwrap();
    assert_eq!(st.issues.len(), 1, "{:?}", st.issues);
    assert_eq!(st.issues[0].1, vec!["screenmeet", "switchyard-session-A1"]);
    assert_eq!(st.comments.len(), 1);
    assert_eq!(st.comments[0].0, "SUP-1");
    assert_eq!(
        st.comments[0].1["content"][0]["content"][0]["text"],
        "second"
    );
    assert_eq!(st.auth_seen[0], "Basic b3BzQGFjbWUuZXhhbXBsZTp0b2s="); // ops@acme.example:tok
}

#[tokio::test]
async fn jira_create_that_timed_out_after_creating_is_not_created_twice() {
    let (url, jira) = fake_jira(JiraState {
        slow_first_create: Some(Duration::from_millis(800)),
        ..JiraState::default()
    })
    .await;
    let (d, config) = project(TICKET_RULE, &jira_target(&url));
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"B2","note":"hello"}]"#).await;
    wait_all(&db, 1, "delivered").await;
    running.stop().await;
    let st = jira.lock().unwrap();
    assert_eq!(st.issues.len(), 1, "one issue despite the retry");
    assert_eq!(st.comments.len(), 1, "the retry commented on it");
}

#[tokio::test]
async fn jira_400_field_errors_are_a_dead_letter_carrying_them() {
    let (url, _jira) = fake_jira(JiraState {
        reject_create: Some(json!({"errorMessages": [], "errors": {"priority": "Priority name 'Urgent' is not valid"}})),
        ..JiraState::default()
    })
    .await;
    let (d, config) = project(TICKET_RULE, &jira_target(&url));
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"C3","note":"x"}]"#).await;
    wait_all(&db, 1, "dead").await;
    running.stop().await;
    let s = states(&db);
    assert!(s[0].contains("400 Bad Request"), "{s:?}");
    assert!(
        s[0].contains("Priority name 'Urgent' is not valid"),
        "{s:?}"
    );
}

#[tokio::test]
async fn pagerduty_uses_the_key_as_dedup_key() {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/v2/enqueue",
        axum::routing::post(move |Json(v): Json<Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(v.clone());
                (StatusCode::ACCEPTED, Json(json!({"status": "success", "message": "Event processed", "dedup_key": v["dedup_key"]})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let rule = r#"fn on_event(e) { ticket("oncall", #{ key: `s-${e.id}`, title: "Down", priority: "High", action: e.act }); }"#;
    let (d, config) = project(
        rule,
        &format!(
            "  oncall: {{ kind: pagerduty, routing_key: R0UT1NG, api_url: \"http://{addr}\" }}\n"
        ),
    );
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(
        running.addr,
        r#"[{"type":"t","id":"P1","act":"trigger"},{"type":"t","id":"P1","act":"resolve","n":2}]"#,
    )
    .await;
    wait_all(&db, 2, "delivered").await;
    running.stop().await;
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2);
    let trigger = got.iter().find(|v| v["event_action"] == "trigger").unwrap();
    assert_eq!(trigger["dedup_key"], "s-P1");
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    assert_eq!(trigger["payload"]["severity"], "error");
    let resolve = got.iter().find(|v| v["event_action"] == "resolve").unwrap();
    assert_eq!(resolve["dedup_key"], "s-P1");
}

/// One fake for ServiceNow, Zendesk and GitHub: records creates and updates,
/// and finds a record by the key it was created with.
#[derive(Default)]
struct Records {
    created: Vec<(String, Value)>,
    updated: Vec<(String, Value)>,
}

async fn fake_ticket_apis() -> (String, Arc<Mutex<Records>>) {
    use axum::extract::{Query, RawQuery};
    use axum::routing::{get, patch, post, put};
    let rec: Arc<Mutex<Records>> = Arc::default();
    let has = |rec: &Records, api: &str, needle: &str| {
        rec.created
            .iter()
            .any(|(a, v)| a == api && v.to_string().contains(needle))
    };
    let r = rec.clone();
    let app = axum::Router::new()
        .route(
            "/api/now/table/incident",
            get({
                let r = r.clone();
                move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let key = q["sysparm_query"].split('^').next().unwrap().trim_start_matches("correlation_id=").to_owned();
                    let found = has(&r.lock().unwrap(), "servicenow", &format!("\"correlation_id\":\"{key}\""));
                    Json(json!({ "result": if found { json!([{"sys_id": "abc123"}]) } else { json!([]) } }))
                }
            })
            .post({
                let r = r.clone();
                move |Json(v): Json<Value>| async move {
                    r.lock().unwrap().created.push(("servicenow".into(), v));
                    (StatusCode::CREATED, Json(json!({"result": {"sys_id": "abc123"}})))
                }
            }),
        )
        .route(
            "/api/now/table/incident/{id}",
            patch({
                let r = r.clone();
                move |UrlPath(id): UrlPath<String>, Json(v): Json<Value>| async move {
                    r.lock().unwrap().updated.push((format!("servicenow {id}"), v));
                    Json(json!({"result": {}}))
                }
            }),
        )
        .route(
            "/api/v2/search.json",
            get({
                let r = r.clone();
                move |RawQuery(q): RawQuery| async move {
                    let q = q.unwrap_or_default();
                    let key = q.split("external_id:").nth(1).unwrap_or("").split('%').next().unwrap_or("").to_owned();
                    let found = has(&r.lock().unwrap(), "zendesk", &format!("\"external_id\":\"{key}\""));
                    Json(json!({ "results": if found { json!([{"id": 77}]) } else { json!([]) } }))
                }
            }),
        )
        .route(
            "/api/v2/tickets.json",
            post({
                let r = r.clone();
                move |Json(v): Json<Value>| async move {
                    r.lock().unwrap().created.push(("zendesk".into(), v));
                    (StatusCode::CREATED, Json(json!({"ticket": {"id": 77}})))
                }
            }),
        )
        .route(
            "/api/v2/tickets/{id}",
            put({
                let r = r.clone();
                move |UrlPath(id): UrlPath<String>, Json(v): Json<Value>| async move {
                    r.lock().unwrap().updated.push((format!("zendesk {id}"), v));
                    Json(json!({"ticket": {}}))
                }
            }),
        )
        .route(
            "/repos/acme/support/issues",
            get({
                let r = r.clone();
                move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let found = has(&r.lock().unwrap(), "github", &q["labels"]);
                    Json(if found { json!([{"number": 5}]) } else { json!([]) })
                }
            })
            .post({
                let r = r.clone();
                move |Json(v): Json<Value>| async move {
                    r.lock().unwrap().created.push(("github".into(), v));
                    (StatusCode::CREATED, Json(json!({"number": 5})))
                }
            }),
        )
        .route(
            "/repos/acme/support/issues/{n}/comments",
            post({
                let r = r.clone();
                move |UrlPath(n): UrlPath<String>, Json(v): Json<Value>| async move {
                    r.lock().unwrap().updated.push((format!("github {n}"), v));
                    (StatusCode::CREATED, Json(json!({"id": 1})))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rec)
}

async fn upsert_twice(target: &str) -> (Arc<Mutex<Records>>, Vec<String>) {
    let (url, rec) = fake_ticket_apis().await;
    let targets = match target {
        "servicenow" => format!(
            "  desk: {{ kind: servicenow, base_url: \"{url}\", username: u, password: p }}\n"
        ),
        "zendesk" => format!(
            "  desk: {{ kind: zendesk, base_url: \"{url}\", email: a@b.example, api_token: t }}\n"
        ),
        _ => format!(
            "  desk: {{ kind: github, api_url: \"{url}\", token: ghp_x, repo: acme/support }}\n"
        ),
    };
    let rule = r#"fn on_event(e) { ticket("desk", #{ key: `session-${e.id}`, title: `Session ${e.id}`, body: e.note }); }"#;
    let (d, config) = project(rule, &targets);
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config).await.unwrap();
    post(running.addr, r#"[{"type":"t","id":"K1","note":"first"}]"#).await;
    wait_all(&db, 1, "delivered").await;
    post(running.addr, r#"[{"type":"t","id":"K1","note":"second"}]"#).await;
    wait_all(&db, 2, "delivered").await;
    running.stop().await;
    (rec, states(&db))
}

#[tokio::test]
async fn servicenow_upserts_by_correlation_id() {
    let (rec, _) = upsert_twice("servicenow").await;
    let rec = rec.lock().unwrap();
    assert_eq!(rec.created.len(), 1);
    assert_eq!(rec.created[0].1["correlation_id"], "session-K1");
    assert_eq!(
        rec.updated,
        vec![(
            "servicenow abc123".to_owned(),
            json!({"work_notes": "second"})
        )]
    );
}

#[tokio::test]
async fn zendesk_upserts_by_external_id() {
    let (rec, _) = upsert_twice("zendesk").await;
    let rec = rec.lock().unwrap();
    assert_eq!(rec.created.len(), 1);
    assert_eq!(rec.created[0].1["ticket"]["external_id"], "session-K1");
    assert_eq!(rec.updated[0].0, "zendesk 77.json");
    assert_eq!(rec.updated[0].1["ticket"]["comment"]["body"], "second");
}

#[tokio::test]
async fn github_upserts_by_label_marker() {
    let (rec, _) = upsert_twice("github").await;
    let rec = rec.lock().unwrap();
    assert_eq!(rec.created.len(), 1);
    assert_eq!(rec.created[0].1["labels"], json!(["switchyard:session-K1"]));
    assert_eq!(
        rec.updated,
        vec![("github 5".to_owned(), json!({"body": "second"}))]
    );
}

#[tokio::test]
async fn a_process_killed_mid_send_sends_again_after_restart_and_leaves_one_ticket() {
    let (url, jira) = fake_jira(JiraState {
        slow_first_create: Some(Duration::from_secs(30)),
        ..JiraState::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/t.rhai"), TICKET_RULE).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "listen: 127.0.0.1:{port}\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\ndelivery:\n  timeout: 60s\n  retry: {{ schedule: [20ms], floor: 20ms }}\ntargets:\n{}sources:\n  s: {{ path: /h, verify: none }}\n",
            jira_target(&url)
        ),
    )
    .unwrap();
    let db = dir.path().join("journal.db");
    let mut child = crate::support::serve_binary(&dir.path().join("config.yaml"), &[]);
    post(
        format!("127.0.0.1:{port}").parse().unwrap(),
        r#"[{"type":"t","id":"K9","note":"urgent"}]"#,
    )
    .await;
    let started = Instant::now();
    while jira.lock().unwrap().creates == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the create never reached Jira"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL while the create is in flight
    child.wait().unwrap();
    assert_eq!(states(&db), vec!["delivering "], "the action was mid-send");
    let mut child = crate::support::serve_binary(&dir.path().join("config.yaml"), &[]);
    wait_all(&db, 1, "delivered").await;
    child.kill().unwrap();
    child.wait().unwrap();
    let st = jira.lock().unwrap();
    assert_eq!(st.issues.len(), 1, "still one ticket");
    assert_eq!(st.comments.len(), 1, "the resend became a comment");
}
