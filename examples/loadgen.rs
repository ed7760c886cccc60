//! A bounded load generator for the ingress benchmark: N keep-alive
//! connections each POST signed, distinct, single-event ScreenMeet-style
//! batches of about `--size` bytes for `--seconds`, then print one JSON line
//! with requests/s and latency percentiles.
//!
//! `cargo run --release --example loadgen -- --url http://127.0.0.1:8080/hooks/screenmeet --key dev-secret`

use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Args {
    url: String,
    key: String,
    connections: usize,
    seconds: u64,
    size: usize,
    /// Put into every event id, so runs against one journal send new events.
    tag: String,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080/hooks/screenmeet".into(),
        key: "dev-secret".into(),
        connections: 32,
        seconds: 10,
        size: 1024,
        tag: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = v,
            "--key" => a.key = v,
            "--connections" => a.connections = v.parse().unwrap(),
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--size" => a.size = v.parse().unwrap(),
            "--tag" => a.tag = v,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn body(tag: &str, conn: usize, n: u64, size: usize) -> Vec<u8> {
    let head = format!(
        r#"[{{"type":"session.closed","id":"{tag}c{conn}n{n}","ts":"2026-11-30T14:00:00.000Z","status":"closed","seconds":845,"organization":{{"id":"org_4821","name":"Acme Support"}},"message":""#
    );
    let tail = r#""}]"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut b = head.into_bytes();
    b.extend(std::iter::repeat_n(b'x', pad));
    b.extend_from_slice(tail.as_bytes());
    b
}

#[tokio::main]
async fn main() {
    let a = args();
    let uri: hyper::Uri = a.url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let path = uri.path().to_owned();
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for c in 0..a.connections {
        let (authority, path, key) = (authority.clone(), path.clone(), a.key.clone());
        let (size, tag) = (a.size, a.tag.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&authority).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut lat = Vec::with_capacity(100_000);
            let (mut ok, mut bad) = (0u64, 0u64);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let b = body(&tag, c, n, size);
                let sig = hex::encode(switchyard::ingress::verify::mac(key.as_bytes(), &[&b]));
                let req = Request::post(path.as_str())
                    .header("host", authority.as_str())
                    .header("content-type", "text/plain")
                    .header("x-signature-algo", "sha256")
                    .header("x-signature", sig)
                    .body(Full::new(bytes::Bytes::from(b)))
                    .unwrap();
                let t = Instant::now();
                let resp = send.send_request(req).await.unwrap();
                let status = resp.status();
                let _ = resp.into_body().collect().await.unwrap();
                lat.push(t.elapsed().as_micros() as u32);
                if status == 200 { ok += 1 } else { bad += 1 }
            }
            (lat, ok, bad)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    for t in tasks {
        let (l, o, b) = t.await.unwrap();
        all.extend(l);
        ok += o;
        bad += b;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"requests\":{},\"ok\":{ok},\"non_200\":{bad},\"seconds\":{secs:.2},\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        all.len(),
        all.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        all.last().copied().unwrap_or(0)
    );
}
