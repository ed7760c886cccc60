//! The operator listener (separate port): `/healthz` (the process answers),
//! `/readyz` (the journal's last write succeeded) and `/metrics`
//! (Prometheus text). The token-protected admin API joins it later.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::store::Store;
use crate::telemetry::Metrics;

#[derive(Clone)]
struct AdminState {
    store: Store,
    metrics: Arc<Metrics>,
}

pub fn router(store: Store, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { store, metrics })
}

async fn readyz(State(st): State<AdminState>) -> impl IntoResponse {
    if st.store.healthy() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable\n")
    }
}

async fn metrics_text(State(st): State<AdminState>) -> impl IntoResponse {
    st.metrics.index_lag.set(st.store.index_lag());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
}
