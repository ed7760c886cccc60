//! Rule figures for BENCHMARKS.md, measured on a real instance:
//! - hot-reload latency: from writing a rule file to the new version being
//!   live, p50/p99 over 50 saves (default debounce);
//! - evaluation throughput: events/s the evaluation loop sustains with the
//!   shipped rules, from `evaluations.evaluated_at` of 20 000 journaled events.
//!
//! `cargo run --release --example rules_figures`

use std::time::{Duration, Instant};

use switchyard::config::Config;

fn config(dir: &std::path::Path) -> Config {
    let text = std::fs::read_to_string("config.yaml").unwrap();
    let mut c = Config::from_str_with_env(&text, dir, &|k| {
        (k == "SCREENMEET_SIGNING_KEY").then(|| "bench".to_owned())
    })
    .unwrap();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = None;
    c.store = switchyard::config::StoreUrl::Sqlite(dir.join("journal.db"));
    c.rules.dir = dir.join("rules");
    c
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    for entry in std::fs::read_dir("rules").unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "rhai") {
            std::fs::copy(&p, dir.path().join("rules").join(p.file_name().unwrap())).unwrap();
        }
    }
    let running = switchyard::app::start(config(dir.path())).await.unwrap();

    // Hot-reload latency.
    let rule = dir.path().join("rules/bench.reload.rhai");
    let mut lat = Vec::new();
    for i in 0..50 {
        let before = running.rules.current().version.clone();
        let t = Instant::now();
        std::fs::write(
            &rule,
            format!(r#"fn on_event(e) {{ slack("support", "save {i}"); }}"#),
        )
        .unwrap();
        while running.rules.current().version == before {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "save {i} never went live"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "reload latency over 50 saves: p50 {:.0} ms, p99 {:.0} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );

    // Evaluation throughput.
    let sample: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string("examples/events/batch-50.json").unwrap())
            .unwrap();
    let key = "bench";
    let client = reqwest::Client::new();
    let total = 20_000;
    for b in 0..total / 100 {
        let batch: Vec<serde_json::Value> = (0..100)
            .map(|i| {
                let mut e = sample[(b * 100 + i) % sample.len()].clone();
                e["id"] = format!("b{b}e{i}").into();
                e
            })
            .collect();
        let body = serde_json::to_vec(&batch).unwrap();
        let sig = hex::encode(switchyard::ingress::verify::mac(key.as_bytes(), &[&body]));
        let r = client
            .post(format!("http://{}/hooks/screenmeet", running.addr))
            .header("x-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let db = dir.path().join("journal.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let t = Instant::now();
    loop {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM evaluations", [], |r| r.get(0))
            .unwrap();
        if n as usize >= total {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "evaluation stalled at {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (first, last, actions): (i64, i64, i64) = conn
        .query_row(
            "SELECT min(evaluated_at), max(evaluated_at), (SELECT count(*) FROM actions) FROM evaluations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let secs = ((last - first) as f64 / 1000.0).max(0.001);
    println!(
        "evaluation loop: {total} events in {secs:.2} s = {:.0} events/s with the shipped rules ({actions} actions planned)",
        total as f64 / secs
    );
    running.stop().await;
}
