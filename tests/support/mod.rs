//! Helpers shared by the integration tests: configs in a temp dir, a real
//! SQLite journal, signing, and a started instance on port 0.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use switchyard::config::Config;
use switchyard::ingress::verify::mac;
use switchyard::store::Store;
use switchyard::telemetry::Metrics;
use tower::ServiceExt as _;

pub const KEY: &str = "test-signing-key";
pub const OLD_KEY: &str = "old-signing-key";
pub const PATH: &str = "/hooks/screenmeet";

/// A temp dir holding a config and its SQLite journal.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl Env {
    pub fn db(&self) -> PathBuf {
        match &self.config.store {
            switchyard::config::StoreUrl::Sqlite(p) => p.clone(),
        }
    }

    /// Rows in `events` (all states).
    pub fn events(&self) -> i64 {
        count(&self.db(), "SELECT count(*) FROM events")
    }

    pub fn quarantined(&self) -> i64 {
        count(&self.db(), "SELECT count(*) FROM quarantine")
    }

    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        let c = rusqlite::Connection::open(self.db()).unwrap();
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

pub fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The default test config: one ScreenMeet source with `current` and
/// `previous` keys, plus `extra` YAML appended under `sources:`.
pub fn env_with(extra_top: &str, extra_sources: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://{db}\nadmin:\n  listen: 127.0.0.1:0\n{extra_top}\nsources:\n  screenmeet:\n    path: {PATH}\n    verify: screenmeet\n    keys:\n      - {{ label: current, secret: \"${{TEST_KEY}}\" }}\n      - {{ label: previous, secret: \"${{TEST_OLD_KEY:-}}\" }}\n    max_body: 1MiB\n{extra_sources}",
        db = dir.path().join("journal.db").display()
    );
    let config = Config::from_str_with_env(&text, dir.path(), &|k| match k {
        "TEST_KEY" => Some(KEY.into()),
        "TEST_OLD_KEY" => Some(OLD_KEY.into()),
        "WHSEC" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
    Env { dir, config }
}

/// The default env with the ScreenMeet source's body cap set to `cap` bytes.
pub fn env_with_cap(cap: u64) -> Env {
    let mut env = env();
    env.config.sources.get_mut("screenmeet").unwrap().max_body = cap;
    env
}

pub fn env() -> Env {
    env_with("", "")
}

pub fn sign_hex(key: &str, body: &[u8]) -> String {
    hex::encode(mac(key.as_bytes(), &[body]))
}

/// A router over a real journal, for socket-free tests.
pub struct Harness {
    pub env: Env,
    pub router: axum::Router,
    pub metrics: std::sync::Arc<Metrics>,
    pub store: Store,
}

pub fn harness_with(env: Env) -> Harness {
    let store = Store::open(&env.config.store, &env.config.store_options()).unwrap();
    let metrics = Metrics::new();
    let router = switchyard::ingress::router(&env.config, store.clone(), metrics.clone());
    Harness {
        env,
        router,
        metrics,
        store,
    }
}

pub fn harness() -> Harness {
    harness_with(env())
}

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub headers: http::HeaderMap,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("<none>")
    }
}

/// Waits until every event `store` acknowledged is indexed in the database
/// file (the 200 comes after the ingest log's write; the index may lag).
pub async fn settle(store: &Store) {
    assert!(
        store.settle(std::time::Duration::from_secs(15)).await,
        "the journal index did not catch up with the log"
    );
}

/// As if the process died after the ingest log's write and before the index
/// committed: the database (not open elsewhere) forgets its events and how
/// far into the log it had indexed.
pub fn forget_index(db: &Path) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(
            "DELETE FROM events; UPDATE meta SET value = 0 WHERE key IN ('log_segment', 'log_offset');",
        )
        .unwrap();
}

impl Harness {
    /// Waits until every acknowledged event is indexed in the database file.
    pub async fn settle(&self) {
        settle(&self.store).await;
    }

    /// Rows in `events` (all states), once the index caught up.
    pub async fn events(&self) -> i64 {
        self.settle().await;
        self.env.events()
    }

    pub async fn quarantined(&self) -> i64 {
        self.settle().await;
        self.env.quarantined()
    }

    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        self.settle().await;
        self.env.query_strings(sql)
    }

    pub async fn call(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            json,
            headers,
        }
    }

    /// POSTs `body` signed with the current key (hex).
    pub async fn post_signed(&self, body: &[u8]) -> Answer {
        self.call(signed(body)).await
    }
}

pub fn signed(body: &[u8]) -> Request<Body> {
    Request::post(PATH)
        .header("content-type", "text/plain")
        .header("x-signature-algo", "sha256")
        .header("x-signature", sign_hex(KEY, body))
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// A batch of `n` distinct events of about `pad` bytes each.
pub fn batch(n: usize, tag: &str, pad: usize) -> Vec<u8> {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"session.closed","id":"{tag}{i:06}","ts":"2026-11-30T14:00:00.000Z","message":"{}"}}"#,
                "x".repeat(pad)
            )
        })
        .collect();
    format!("[{}]", events.join(",")).into_bytes()
}

/// Every first column of `sql` on the journal at `db`, as text.
pub fn rows(db: &Path, sql: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c.prepare(sql).unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// POSTs `body` unsigned to `path` (a `verify: none` source); asserts 200.
pub async fn post_to(addr: std::net::SocketAddr, path: &str, body: &str) -> serde_json::Value {
    post_expecting(addr, path, body, 200).await
}

/// POSTs `body` unsigned to `path`; asserts the answer's `status`.
pub async fn post_expecting(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
    status: u16,
) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status);
    r.json().await.unwrap()
}

/// Polls `cond` until it holds; fails the test after 15 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(|| {
        if cond() {
            Ok(())
        } else {
            Err(format!("timed out waiting for {what}"))
        }
    })
    .await;
}

/// Polls `check` until it is `Ok`; after 15 s fails with its last `Err`,
/// which says what was seen instead.
pub async fn wait_for(mut check: impl FnMut() -> Result<(), String>) {
    wait_for_async(|| std::future::ready(check())).await;
}

/// [`wait_for`] with a check that has to await (an HTTP request).
pub async fn wait_for_async<F: std::future::Future<Output = Result<(), String>>>(
    mut check: impl FnMut() -> F,
) {
    let started = std::time::Instant::now();
    loop {
        let Err(seen) = check().await else { return };
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs a command that must succeed (its stderr is the failure message);
/// returns its stdout.
pub fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `switchyard` binary, with the test's own log filter removed.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_remove("RUST_LOG");
    c
}

/// Starts `switchyard --config CONFIG serve` with `envs`; returns once it
/// has logged that it listens (its port is bound by then).
pub fn serve_binary(config: &Path, envs: &[(&str, &str)]) -> std::process::Child {
    use std::io::{BufRead as _, BufReader};
    let mut child = bin()
        .arg("--config")
        .arg(config)
        .args(["--log-format", "json", "serve"])
        .envs(envs.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("switchyard is listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}
