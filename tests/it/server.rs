//! The real listener on port 0: end-to-end requests, connection hygiene
//! under slow and idle clients, graceful shutdown, and a crash after 200.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, KEY, PATH, batch, sign_hex};

const FAST_TIMEOUTS: &str = "server:\n  header_read_timeout: 1s\n  body_read_timeout: 1s\n  idle_timeout: 2s\n  max_connections: 4000\n";

async fn post(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    body: &[u8],
) -> reqwest::Response {
    client
        .post(format!("http://{addr}{PATH}"))
        .header("content-type", "text/plain")
        .header("x-signature", sign_hex(KEY, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signed_request_over_tcp_is_journaled_and_counted_in_metrics() {
    let env = support::env();
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let body = std::fs::read("examples/events/batch-50.json").unwrap();
    let resp = post(&client, running.addr, &body).await;
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"accepted":50,"duplicates":0,"rejected":0})
    );
    let admin = running.admin_addr.unwrap();
    let metrics = metrics_text(&client, admin).await;
    assert!(
        metrics.contains(
            r#"switchyard_ingress_events_total{source="screenmeet",outcome="accepted"} 50"#
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"switchyard_ingress_requests_total{source="screenmeet",status="200"} 1"#),
        "{metrics}"
    );
    let ready = client
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // Once the index caught up with the log, the lag reads 0.
    support::settle(&running.store).await;
    let metrics = metrics_text(&client, admin).await;
    assert!(
        metrics.contains("switchyard_journal_index_lag_events 0\n"),
        "{metrics}"
    );
    let lowered = format!(
        "switchyard_journal_indexing_lowered {}\n",
        u8::from(running.store.indexing_lowered())
    );
    assert!(metrics.contains(&lowered), "{metrics}");
    assert_eq!(env.events(), 50);
    // Every event is evaluated and counted once, by type and outcome.
    support::wait_for_async(|| async {
        let metrics = metrics_text(&client, admin).await;
        let evaluated: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("switchyard_events_evaluated_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if evaluated == 50 && metrics.contains(r#"event_type="session.closed""#) {
            Ok(())
        } else {
            Err(format!(
                "{evaluated} of 50 events counted as evaluated:\n{metrics}"
            ))
        }
    })
    .await;
    running.stop().await;
    assert_eq!(env.events(), 50);
}

/// The admin listener's `/metrics` page.
async fn metrics_text(client: &reqwest::Client, admin: std::net::SocketAddr) -> String {
    client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A raw request head for the ScreenMeet path with a signature and one framing header.
fn signed_head(sig: &str, framing: &str) -> String {
    format!("POST {PATH} HTTP/1.1\r\nhost: x\r\nx-signature: {sig}\r\n{framing}\r\n\r\n")
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_while_signed_requests_succeed() {
    let env = support::env_with(FAST_TIMEOUTS, "");
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let addr = running.addr;
    let deadline = Duration::from_secs(20);

    // 500 clients dribbling a request head one byte at a time.
    let dribblers: Vec<_> = (0..500)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let head = format!(
                    "POST {PATH} HTTP/1.1\r\nhost: x\r\nx-filler: {}",
                    "a".repeat(400)
                );
                for b in head.bytes() {
                    if s.write_all(&[b]).await.is_err() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    // A closed peer shows up as a read of 0 (or an error) without blocking.
                    let mut probe = [0u8; 64];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
                        && n == 0
                    {
                        return true;
                    }
                }
                false
            })
        })
        .collect();
    // 200 clients that send a head and part of the body, then stall.
    let stallers: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let req = format!("POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\nx-signature: 00\r\n\r\n[{{\"type\":");
                s.write_all(req.as_bytes()).await.unwrap();
                read_until_closed(s).await
            })
        })
        .collect();
    // 1000 clients that connect and send nothing.
    let idlers: Vec<_> = (0..1000)
        .map(|_| {
            tokio::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                read_until_closed(s).await
            })
        })
        .collect();

    // Meanwhile another client keeps sending signed batches.
    let client = reqwest::Client::new();
    for i in 0..30 {
        let body = batch(2, &format!("during{i}-"), 20);
        let resp = tokio::time::timeout(Duration::from_secs(5), post(&client, addr, &body))
            .await
            .expect("a signed request was starved by slow clients");
        assert_eq!(resp.status(), 200);
    }

    let all = async {
        let t0 = std::time::Instant::now();
        for d in dribblers {
            assert!(d.await.unwrap(), "a dribbling connection was never closed");
        }
        eprintln!("dribblers done {:?}", t0.elapsed());
        for s in stallers {
            let answer = String::from_utf8_lossy(&s.await.unwrap()).into_owned();
            assert!(
                answer.starts_with("HTTP/1.1 408"),
                "stalled body got {answer:?}"
            );
            assert!(answer.contains("body_timeout"), "{answer}");
        }
        eprintln!("stallers done {:?}", t0.elapsed());
        let n = idlers.len();
        for (k, i) in idlers.into_iter().enumerate() {
            if tokio::time::timeout(Duration::from_secs(3), i)
                .await
                .is_err()
            {
                panic!("idler {k}/{n} not closed at {:?}", t0.elapsed());
            }
        }
        eprintln!("idlers done {:?}", t0.elapsed());
    };
    tokio::time::timeout(deadline, all)
        .await
        .expect("slow or idle connections outlived their timeouts");
    support::settle(&running.store).await;
    assert_eq!(env.events(), 60);
    running.stop().await;
}

#[tokio::test]
async fn oversized_body_over_tcp_is_413_with_and_without_content_length() {
    let env = support::env_with_cap(2000);
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let body = batch(40, "big", 100);
    let sig = sign_hex(KEY, &body);
    // Declared length above the cap: refused before the body is read.
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    let head = signed_head(&sig, &format!("content-length: {}", body.len()));
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(s).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked: counted while streaming.
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    let head = signed_head(&sig, "transfer-encoding: chunked");
    s.write_all(head.as_bytes()).await.unwrap();
    for c in body.chunks(500) {
        let chunk = format!("{:x}\r\n", c.len());
        if s.write_all(chunk.as_bytes()).await.is_err()
            || s.write_all(c).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let answer = String::from_utf8_lossy(&read_until_closed(s).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    running.stop().await;
    assert_eq!((env.events(), env.quarantined()), (0, 0));
}

#[tokio::test]
async fn shutdown_finishes_a_request_in_flight_then_closes_the_journal() {
    let env = support::env();
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let body = batch(3, "inflight", 10);
    let sig = sign_hex(KEY, &body);
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    let head = signed_head(&sig, &format!("content-length: {}", body.len()));
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..10]).await.unwrap();
    // Wait until the ingress is inside the request (reading its body).
    wait_for_metric(
        running.admin_addr.unwrap(),
        r#"switchyard_ingress_in_flight{source="screenmeet"} 1"#,
    )
    .await;
    let stopping = tokio::spawn(running.stop());
    s.write_all(&body[10..]).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(s).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""accepted":3"#), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.events(), 3);
    // Closed cleanly: the WAL was checkpointed into the database on close.
    let wal = env.db().with_extension("db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
}

/// Polls /metrics until `line` appears (bounded: fails after 10 s).
pub async fn wait_for_metric(admin: std::net::SocketAddr, line: &str) {
    let url = format!("http://{admin}/metrics");
    let started = std::time::Instant::now();
    loop {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "metric {line} never appeared:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn dedup_survives_a_restart() {
    let env = support::env();
    let body = batch(4, "restart", 10);
    let client = reqwest::Client::new();
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let first: serde_json::Value = post(&client, running.addr, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["accepted"], 4);
    running.stop().await;
    // A new process rebuilds the dedup index from the journal.
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let again: serde_json::Value = post(&client, running.addr, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again,
        serde_json::json!({"accepted":0,"duplicates":4,"rejected":0})
    );
    running.stop().await;
    assert_eq!(env.events(), 4);
}
