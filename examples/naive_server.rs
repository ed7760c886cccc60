//! A second benchmark baseline: the naive durable receiver the ingress
//! figure is measured against in issue 2. It does what a first version of
//! switchyard would: read the body, check its HMAC-SHA256 (hex) against one
//! key in constant time, parse it into a `serde_json::Value`, and insert
//! every event into SQLite (WAL, `synchronous=FULL`) through one writer
//! thread that commits whatever is waiting as one transaction (group
//! commit), answering each request after the commit that holds it.
//!
//! It has no dedup, no quarantine, no connection hygiene and no index of
//! its own; it only shows what the straightforward design costs on the same
//! machine, so that the bench can say how far switchyard's hot path is from
//! it as well as from the bare server.
//!
//! `cargo run --release --example naive_server -- 127.0.0.1:18182 /tmp/naive.db bench-key`

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

/// One verified request's events (type, exact text), and where its answer goes.
type Insert = (Vec<(String, String)>, oneshot::Sender<bool>);

struct Naive {
    key: Vec<u8>,
    writer: mpsc::Sender<Insert>,
}

async fn receive(
    State(st): State<Arc<Naive>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(sig) = headers
        .get("x-signature")
        .and_then(|v| hex::decode(v.as_bytes()).ok())
    else {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or unreadable signature".into(),
        );
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&st.key).expect("any key length");
    mac.update(&body);
    if mac.verify_slice(&sig).is_err() {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return (StatusCode::BAD_REQUEST, "not a JSON array".into());
    };
    let mut events = Vec::with_capacity(items.len());
    for item in &items {
        let ty = item
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_owned();
        events.push((ty, item.to_string()));
    }
    let n = events.len();
    let (tx, rx) = oneshot::channel();
    if st.writer.send((events, tx)).await.is_err() || rx.await != Ok(true) {
        return (StatusCode::SERVICE_UNAVAILABLE, "store failed".into());
    }
    (StatusCode::OK, format!(r#"{{"accepted":{n}}}"#))
}

/// The one writer: takes what waits, inserts it in one transaction, commits
/// (an fsync with `synchronous=FULL`), then answers every request in it.
fn writer(path: String, mut rx: mpsc::Receiver<Insert>) {
    let mut conn = rusqlite::Connection::open(path).expect("open the database");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL)",
        [],
    )
    .expect("schema");
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let ok = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut insert =
                    tx.prepare_cached("INSERT INTO events (type, body) VALUES (?1, ?2)")?;
                for (events, _) in &group {
                    for (ty, body) in events {
                        insert.execute([ty, body])?;
                    }
                }
            }
            tx.commit()
        })()
        .is_ok();
        for (_, answer) in group {
            let _ = answer.send(ok);
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18182".into());
    let db = args.next().unwrap_or_else(|| "naive.db".into());
    let key = args.next().unwrap_or_else(|| "bench-key".into());
    let (tx, rx) = mpsc::channel(4096);
    std::thread::spawn(move || writer(db, rx));
    let state = Arc::new(Naive {
        key: key.into_bytes(),
        writer: tx,
    });
    let app = Router::new().fallback(post(receive)).with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("naive receiver listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
