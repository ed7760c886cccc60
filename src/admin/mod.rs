//! The operator listener (separate port from the webhooks): `/healthz`
//! (the process answers), `/readyz` (the journal's last write succeeded),
//! `/metrics` (Prometheus text), all open for probes and scrapers; and the
//! admin API under `/api` ([`api`]), behind the bearer token ([`auth`]);
//! and the dashboard at `/` ([`dashboard`]), a page over that API.

pub mod api;
pub mod auth;
pub mod dashboard;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::rules::reload::LiveRules;
use crate::store::{Store, StoreError};
use crate::telemetry::{Metrics, StateLabel};

use api::{ApiError, ApiState};

#[derive(Clone)]
struct AdminState {
    store: Store,
    metrics: Arc<Metrics>,
}

/// The whole admin listener. `token` is `admin.token`; `None` turns `/api` off.
pub fn router(
    store: Store,
    metrics: Arc<Metrics>,
    rules: Arc<LiveRules>,
    connectors: Arc<crate::connectors::Connectors>,
    token: Option<&str>,
) -> Router {
    let api = Router::new()
        .route("/events", get(api::events))
        .route("/events/{id}", get(api::event))
        .route("/actions", get(api::actions))
        .route("/actions/{id}", get(api::action))
        .route("/dead-letters", get(api::dead_letters))
        .route("/replay", post(api::replay))
        .route("/reevaluate", post(api::reevaluate))
        .route("/rules", get(api::rules))
        .route("/targets", get(api::targets))
        .route("/quarantine", get(api::quarantine))
        .fallback(|| async { ApiError::NotFound("no admin API route at this path".into()) })
        .method_not_allowed_fallback(|m: Method| async move {
            ApiError::MethodNotAllowed(m.to_string())
        })
        .with_state(ApiState {
            store: store.clone(),
            rules,
            connectors,
            metrics: metrics.clone(),
        })
        .layer(axum::middleware::from_fn_with_state(
            auth::Token(token.map(Arc::from)),
            auth::require,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { store, metrics })
        .merge(dashboard::routes())
        .nest("/api", api)
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
    st.metrics
        .indexing_lowered
        .set(i64::from(st.store.indexing_lowered()));
    read_backlog(&st).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
}

/// Sets the backlog gauges from the journal. A failed read keeps the last
/// values: the scrape still answers, and `/readyz` reports the journal.
async fn read_backlog(st: &AdminState) {
    let store = st.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        store.reader().and_then(|c| {
            crate::store::inspect::backlog(&c).map_err(|e| StoreError::Write(e.to_string()))
        })
    })
    .await;
    match read {
        Ok(Ok(b)) => {
            for (state, n) in b.actions {
                st.metrics
                    .actions
                    .get_or_create(&StateLabel {
                        state: state.to_owned(),
                    })
                    .set(n);
            }
            let age = b
                .oldest_unsent
                .map_or(0, |t| (crate::domain::now_millis() - t).max(0) / 1000);
            st.metrics.oldest_unsent_age.set(age);
            st.metrics.unevaluated.set(b.unevaluated);
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics: reading the backlog failed"),
        Err(e) => tracing::debug!(error = %e, "metrics: the backlog read did not finish"),
    }
}
