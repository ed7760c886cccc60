//! The benchmark baseline: an axum server that only reads the body and
//! answers 200. `cargo run --release --example bare_server -- 127.0.0.1:18081`

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().fallback(post(|body: Bytes| async move {
        std::hint::black_box(body.len());
        "{\"accepted\":1,\"duplicates\":0,\"rejected\":0}"
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    eprintln!("bare server listening on {addr}");
    axum::serve(listener, app).await.unwrap();
}
