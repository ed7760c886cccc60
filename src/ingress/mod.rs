//! The public webhook listener: one `POST` route per source. For each
//! request: read the body within the cap → verify the exact bytes
//! (typestate: only a [`verify::Verified`] request goes on) → split into
//! events → journal durably → answer `{accepted, duplicates, rejected}`.
//! Nothing is executed inline; rules run later from the journal.

pub mod error;
pub mod extract;
pub mod server;
pub mod split;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::config::{Config, SourceConfig};
use crate::domain::KeyLabel;
use crate::domain::{EventVerdict, IngestReport, now_millis};
use crate::store::{Arrival, IngestBatch, Quarantined, Store};
use crate::telemetry::{InProgress, Metrics, SourceKey, SourceLabel, SourceOutcome, SourceStatus};
use error::IngressError;
use verify::{SignatureForm, Unverified, Verifier};

/// What every source route shares.
struct Shared {
    store: Store,
    metrics: Arc<Metrics>,
    body_timeout: Duration,
}

#[derive(Clone)]
struct SourceState {
    shared: Arc<Shared>,
    source: Arc<SourceConfig>,
    name: Arc<str>,
    hot: Arc<HotCounters>,
}

/// This source's metric handles on the success path, resolved once so a
/// request does not allocate label strings to count itself.
struct HotCounters {
    ok: Counter,
    accepted: Counter,
    duplicate: Counter,
    rejected: Counter,
    in_flight: Gauge,
    /// Per configured key (then one slot for "none") and signature form,
    /// filled on first use so only combinations that occur are exported.
    key_matches: Vec<[std::sync::OnceLock<Counter>; 5]>,
}

impl HotCounters {
    fn new(m: &Metrics, source: &str, keys: usize) -> Self {
        let outcome = |o: &str| {
            m.events
                .get_or_create(&SourceOutcome {
                    source: source.to_owned(),
                    outcome: o.to_owned(),
                })
                .clone()
        };
        Self {
            ok: m
                .requests
                .get_or_create(&SourceStatus {
                    source: source.to_owned(),
                    status: "200".to_owned(),
                })
                .clone(),
            accepted: outcome("accepted"),
            duplicate: outcome("duplicate"),
            rejected: outcome("rejected"),
            in_flight: m
                .in_flight
                .get_or_create(&SourceLabel {
                    source: source.to_owned(),
                })
                .clone(),
            key_matches: (0..=keys).map(|_| Default::default()).collect(),
        }
    }

    /// Counts a verified request under its key label and signature form.
    fn key_match(
        &self,
        m: &Metrics,
        src: &SourceConfig,
        key: Option<&KeyLabel>,
        form: SignatureForm,
    ) {
        let slot = key
            .and_then(|k| src.keys.iter().position(|s| Arc::ptr_eq(&s.label, &k.0)))
            .unwrap_or(src.keys.len());
        self.key_matches[slot][form.index()]
            .get_or_init(|| {
                m.key_matches
                    .get_or_create(&SourceKey {
                        source: src.name.clone(),
                        key: key.map_or("none", |k| &k.0).to_owned(),
                        form: form.as_str().to_owned(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// Builds the ingress router for every configured source.
pub fn router(config: &Config, store: Store, metrics: Arc<Metrics>) -> Router {
    let shared = Arc::new(Shared {
        store,
        metrics,
        body_timeout: config.server.body_read_timeout.0,
    });
    let mut app = Router::new();
    for (name, src) in &config.sources {
        let state = SourceState {
            shared: shared.clone(),
            source: Arc::new(src.clone()),
            name: name.as_str().into(),
            hot: Arc::new(HotCounters::new(&shared.metrics, name, src.keys.len())),
        };
        app = app.route(&src.path, post(receive).with_state(state));
    }
    app.fallback(|| async { IngressError::NotFound })
        .method_not_allowed_fallback(|| async { IngressError::MethodNotAllowed })
}

async fn receive(State(st): State<SourceState>, req: Request<Body>) -> Response {
    let _in_flight = InProgress::start(&st.hot.in_flight);
    match handle(&st, req).await {
        Ok(report) => {
            st.hot.ok.inc();
            let body = format!(
                r#"{{"accepted":{},"duplicates":{},"rejected":{}}}"#,
                report.accepted, report.duplicates, report.rejected
            );
            ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            st.shared
                .metrics
                .requests
                .get_or_create(&SourceStatus {
                    source: st.name.to_string(),
                    status: e.status().as_u16().to_string(),
                })
                .inc();
            e.into_response()
        }
    }
}

async fn handle(st: &SourceState, req: Request<Body>) -> Result<IngestReport, IngressError> {
    let src = &st.source;
    let (parts, body) = req.into_parts();
    let body =
        extract::read_body(&parts.headers, body, src.max_body, st.shared.body_timeout).await?;
    let received_at = now_millis();
    let unverified = Unverified {
        headers: parts.headers,
        body,
    };
    let verified = match Verifier::new(src).verify(unverified, received_at / 1000) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(source = %st.name, error = e.code(), "refused an unauthenticated request");
            return Err(e.into());
        }
    };
    let key_label: Option<Arc<str>> = verified.key().map(|k| k.0.clone());
    st.hot
        .key_match(&st.shared.metrics, src, verified.key(), verified.form());

    let events = match split::split(src, &verified) {
        Ok(events) => events,
        Err(e) => {
            let q = Quarantined {
                source: st.name.clone(),
                key_label,
                received_at,
                code: e.code(),
                reason: e.to_string(),
                body: verified.body().clone(),
            };
            // 400 promises the body is kept; if it cannot be kept, say 503 so the sender retries.
            if let Err(se) = st.shared.store.quarantine(q).await {
                tracing::error!(source = %st.name, error = %se, "cannot quarantine a malformed body");
                return Err(IngressError::StoreUnavailable);
            }
            tracing::info!(source = %st.name, error = e.code(), "quarantined a malformed body");
            return Err(e.into());
        }
    };
    let batch = IngestBatch {
        arrival: Arrival {
            source: st.name.clone(),
            key_label: key_label.clone(),
            received_at,
            dedup_until: received_at.saturating_add(src.dedup_window.as_millis() as i64),
        },
        body: verified.body().clone(),
        events,
    };
    let rejected_reasons: Vec<String> = batch
        .events
        .iter()
        .filter_map(|e| match &e.verdict {
            EventVerdict::Rejected { reason } => Some(reason.clone()),
            EventVerdict::Valid { .. } => None,
        })
        .collect();
    let started = Instant::now();
    let report = st.shared.store.ingest(batch).await.map_err(|e| {
        tracing::error!(source = %st.name, error = %e, "journal write failed; answering 503");
        IngressError::StoreUnavailable
    })?;
    st.shared
        .metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    for (counter, n) in [
        (&st.hot.accepted, report.accepted),
        (&st.hot.duplicate, report.duplicates),
        (&st.hot.rejected, report.rejected),
    ] {
        if n > 0 {
            counter.inc_by(u64::from(n));
        }
    }
    if !rejected_reasons.is_empty() {
        tracing::warn!(source = %st.name, reasons = ?rejected_reasons, "kept rejected events for inspection");
    }
    tracing::info!(
        source = %st.name,
        key = key_label.as_deref().unwrap_or("none"),
        form = verified.form().as_str(),
        accepted = report.accepted,
        duplicates = report.duplicates,
        rejected = report.rejected,
        "journaled a batch"
    );
    Ok(report)
}
