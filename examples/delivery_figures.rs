//! Delivery figures for BENCHMARKS.md, on real instances in this process:
//! 1. end to end: signed batches in → journal → rule → outbox → a fake
//!    Slack that does not rate-limit: events/s and the latency from the 200
//!    to Slack receiving the message (p50/p99);
//! 2. actions/s the dispatcher sustains to a target answering in 50 ms;
//! 3. memory (RSS) with 100 000 actions waiting on a rate-limited target.
//!
//! `cargo run --release --example delivery_figures`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard::config::Config;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kb / 1024.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn project(rule: &str, targets: &str, delivery: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir_in("target").unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/t.rhai"), rule).unwrap();
    let text = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://journal.db\nadmin: {{ listen: null }}\ndelivery:\n{delivery}targets:\n{targets}sources:\n  s: {{ path: /h, verify: screenmeet, keys: [ {{ label: current, secret: bench }} ] }}\n"
    );
    let c = Config::from_str_with_env(&text, dir.path(), &|_| None).unwrap();
    (dir, c)
}

async fn fake(delay: Duration, seen: Arc<Mutex<HashMap<String, Instant>>>) -> String {
    let app = axum::Router::new().fallback(move |body: String| {
        let seen = seen.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let key = v["text"]
                .as_str()
                .or(v["id"].as_str())
                .unwrap_or("")
                .to_owned();
            seen.lock().unwrap().insert(key, Instant::now());
            "ok"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

async fn send_batch(client: &reqwest::Client, addr: std::net::SocketAddr, ids: &[String]) {
    let events: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"type":"t","id":"{id}"}}"#))
        .collect();
    let body = format!("[{}]", events.join(","));
    let sig = hex::encode(switchyard::ingress::verify::mac(
        b"bench",
        &[body.as_bytes()],
    ));
    let r = client
        .post(format!("http://{addr}/h"))
        .header("x-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn wait_for(n: usize, seen: &Arc<Mutex<HashMap<String, Instant>>>) {
    let t = Instant::now();
    while seen.lock().unwrap().len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "only {} of {n} arrived",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::new();
    let fast =
        "  timeout: 10s\n  concurrency: 32\n  rate: { per_second: 1000000, burst: 100000 }\n";

    // 1. End to end.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let url = fake(Duration::ZERO, seen.clone()).await;
    let (_d, c) = project(
        r#"fn on_event(e) { slack("support", e.id); }"#,
        &format!("  support: {{ kind: slack, webhook_url: \"{url}/hook\" }}\n"),
        fast,
    );
    let running = switchyard::app::start(c).await.unwrap();
    let total = 10_000;
    let mut answered: HashMap<String, Instant> = HashMap::new();
    let start = Instant::now();
    for b in 0..total / 10 {
        let ids: Vec<String> = (0..10).map(|i| format!("e{b}x{i}")).collect();
        send_batch(&client, running.addr, &ids).await;
        let now = Instant::now();
        for id in ids {
            answered.insert(id, now);
        }
    }
    wait_for(total, &seen).await;
    let elapsed = start.elapsed().as_secs_f64();
    let seen_map = seen.lock().unwrap().clone();
    let mut lat: Vec<f64> = answered
        .iter()
        .map(|(id, t)| seen_map[id].duration_since(*t).as_secs_f64() * 1000.0)
        .collect();
    println!(
        "end to end: {total} events (batches of 10) in {elapsed:.2} s = {:.0} events/s; 200 → Slack p50 {:.1} ms, p99 {:.1} ms",
        total as f64 / elapsed,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    running.stop().await;

    // 2. Actions/s to a target answering in 50 ms.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let url = fake(Duration::from_millis(50), seen.clone()).await;
    let (_d2, c) = project(
        r#"fn on_event(e) { http("crm", #{ path: "/x", json: #{ id: e.id } }); }"#,
        &format!("  crm: {{ kind: http, base_url: \"{url}\" }}\n"),
        fast,
    );
    let running = switchyard::app::start(c).await.unwrap();
    let n = 3_000;
    for b in 0..n / 100 {
        let ids: Vec<String> = (0..100).map(|i| format!("a{b}x{i}")).collect();
        send_batch(&client, running.addr, &ids).await;
    }
    let t = Instant::now();
    wait_for(n, &seen).await;
    let times: Vec<Instant> = seen.lock().unwrap().values().copied().collect();
    let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    let span = last.duration_since(*first).as_secs_f64();
    println!(
        "dispatcher: {n} actions to a target answering in 50 ms: {:.0} actions/s (concurrency 32; ideal 640); waited {:.1} s",
        n as f64 / span,
        t.elapsed().as_secs_f64()
    );
    running.stop().await;

    // 3. Memory with 100 000 actions waiting.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let url = fake(Duration::ZERO, seen).await;
    let (d3, c) = project(
        r#"fn on_event(e) { slack("support", e.id); }"#,
        &format!("  support: {{ kind: slack, webhook_url: \"{url}/hook\" }}\n"),
        "  rate: { per_second: 1, burst: 1 }\n  concurrency: 1\n",
    );
    let before = rss_mib();
    let running = switchyard::app::start(c).await.unwrap();
    for b in 0..1_000 {
        let ids: Vec<String> = (0..100).map(|i| format!("w{b}x{i}")).collect();
        send_batch(&client, running.addr, &ids).await;
    }
    let conn = rusqlite::Connection::open(d3.path().join("journal.db")).unwrap();
    let t = Instant::now();
    loop {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
            .unwrap();
        if n >= 100_000 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(300));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting: i64 = conn
        .query_row(
            "SELECT count(*) FROM actions WHERE state != 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!(
        "memory: {waiting} actions waiting: process RSS {:.1} MiB (before start {before:.1} MiB)",
        rss_mib()
    );
    running.stop().await;
}
