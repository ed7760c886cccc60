//! The admin API under `/api` (JSON, bearer token, see [`super::auth`]):
//! what the journal holds and how each event and action ended, dead
//! letters and their replay, and the live rule set with the errors of its
//! last failed reload.
//!
//! | route | answers |
//! |---|---|
//! | `GET /api/events?type=&source=&state=&outcome=&before=&limit=` | events, newest first, without bodies |
//! | `GET /api/events/{id}` | one event: exact body, rule runs, actions (`indexed: false` and the log's record when not indexed yet) |
//! | `GET /api/actions?state=&target=&limit=` | actions, newest first |
//! | `GET /api/actions/{id}` | one action: payload and every attempt |
//! | `GET /api/dead-letters?target=&limit=` | dead actions, newest first |
//! | `POST /api/replay` `{target?, id?, since?, until?}` | dead letters back to pending |
//! | `POST /api/reevaluate` `{since?, until?, type?, limit?}` | dry run of stored events through the live rules: what would change |
//! | `GET /api/targets` | each target: kind, ready or holding (why), paused by its breaker, its backlog |
//! | `GET /api/rules` | live version, files, last reload errors |
//! | `GET /api/quarantine?before=&limit=` | authentic bodies that could not be split |
//!
//! Client mistakes are 4xx with `{error, message}`; a store failure is
//! logged and answered 503. Reads run on a read-only connection off the
//! async workers, so an operator's query never blocks ingress.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::rules::reload::LiveRules;
use crate::store::delivery::{self, ActionFilter, ReplayFilter};
use crate::store::inspect::{self, EventFilter};
use crate::store::{Store, StoreError};

/// Rows per page when the request does not say.
const DEFAULT_LIMIT: usize = 50;
/// The most rows one page may ask for.
const MAX_LIMIT: usize = 1000;

#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub rules: Arc<LiveRules>,
    pub connectors: Arc<crate::connectors::Connectors>,
    pub metrics: Arc<crate::telemetry::Metrics>,
}

/// Everything the admin API answers other than 2xx.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the admin API is off: set admin.token (or admin.token_file) in config.yaml")]
    Disabled,
    #[error("send the admin token as `Authorization: Bearer <admin.token>`")]
    MissingToken,
    #[error("the Authorization header must be `Bearer <admin.token>`")]
    NotBearer,
    #[error("wrong admin token")]
    BadToken,
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    BadBody(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not take {0}")]
    MethodNotAllowed(String),
    #[error("the journal is unavailable; retry later")]
    Store,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Disabled => StatusCode::FORBIDDEN,
            ApiError::MissingToken | ApiError::NotBearer | ApiError::BadToken => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::BadQuery(_) | ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Store => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Disabled => "api_disabled",
            ApiError::MissingToken => "missing_token",
            ApiError::NotBearer | ApiError::BadToken => "bad_token",
            ApiError::BadQuery(_) => "bad_query",
            ApiError::BadBody(_) => "bad_body",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Store => "store_unavailable",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code(), "message": self.to_string() }));
        (self.status(), body).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "admin API: reading the journal failed");
        ApiError::Store
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Write(e.to_string()).into()
    }
}

/// A request's query parameters, checked against what the route takes.
struct Params(Vec<(String, String)>);

impl Params {
    /// Refuses an unreadable query, an unknown parameter and a repeated one.
    fn parse(
        q: Result<Query<Vec<(String, String)>>, QueryRejection>,
        known: &[&str],
    ) -> Result<Params, ApiError> {
        let Query(pairs) = q.map_err(|e| ApiError::BadQuery(e.body_text()))?;
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !known.contains(&k.as_str()) {
                return Err(ApiError::BadQuery(format!(
                    "unknown query parameter {k:?} (this route takes: {})",
                    known.join(", ")
                )));
            }
            if pairs[..i].iter().any(|(seen, _)| seen == k) {
                return Err(ApiError::BadQuery(format!("{k} is given twice")));
            }
        }
        Ok(Params(pairs))
    }

    fn text(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// A parameter that must be one of `allowed`.
    fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.text(key) {
            Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::BadQuery(format!(
                "{key} {v:?} is not one of: {}",
                allowed.join(", ")
            ))),
            v => Ok(v),
        }
    }

    /// A positive id.
    fn id(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.text(key)
            .map(|v| positive_id(&v).map_err(|e| ApiError::BadQuery(format!("{key} {e}"))))
            .transpose()
    }

    fn limit(&self) -> Result<usize, ApiError> {
        match self.text("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::BadQuery(format!(
                        "limit {v:?} must be a number from 1 to {MAX_LIMIT}"
                    ))
                }),
        }
    }
}

/// An id as events have them, or why the text is not one.
fn positive_id(v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{v:?} is not an id (a positive integer)"))
}

/// Runs a read on a fresh read-only connection, off the async workers.
async fn read<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || -> Result<T, ApiError> {
        let conn = store.reader()?;
        Ok(f(&conn)?)
    })
    .await
    .map_err(|e| StoreError::Write(format!("admin read task: {e}")))?
}

/// A page of rows and where the next page starts (`None`: this is the last).
#[derive(Serialize)]
struct Page<T> {
    #[serde(flatten)]
    rows: T,
    next_before: Option<i64>,
}

pub async fn events(
    State(st): State<ApiState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        q,
        &["type", "source", "state", "outcome", "before", "limit"],
    )?;
    let filter = EventFilter {
        event_type: p.text("type"),
        source: p.text("source"),
        state: p.one_of("state", inspect::EVENT_STATES)?,
        outcome: p.one_of("outcome", inspect::OUTCOMES)?,
        before: p.id("before")?,
        limit: p.limit()?,
    };
    let page = read(&st.store, move |c| {
        inspect::events(c, &filter, inspect::SCAN_WINDOW)
    })
    .await?;
    Ok(Json(Page {
        rows: json!({ "events": page.rows }),
        next_before: page.next_before,
    })
    .into_response())
}

pub async fn event(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let n = positive_id(&id).map_err(ApiError::BadQuery)?;
    if let Some(ev) = read(&st.store, move |c| inspect::event(c, n)).await? {
        return Ok(Json(ev).into_response());
    }
    // Answered 200 already but not indexed yet (the index trails the log by
    // milliseconds, longer after a crash): what the ingest log holds.
    let store = st.store.clone();
    let logged = tokio::task::spawn_blocking(move || store.logged_event(n))
        .await
        .map_err(|e| StoreError::Write(format!("admin read task: {e}")))??;
    match logged {
        Some(ev) => Ok(Json(json!({
            "id": ev.id,
            "type": (!ev.event_type.is_empty()).then_some(ev.event_type),
            "received_at": ev.received_at,
            "body": ev.body,
            "indexed": false,
        }))
        .into_response()),
        None => Err(ApiError::NotFound(format!("no event with id {n}"))),
    }
}

pub async fn actions(
    State(st): State<ApiState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(q, &["state", "target", "limit"])?;
    list_actions(&st.store, p.one_of("state", delivery::STATES)?, &p).await
}

pub async fn dead_letters(
    State(st): State<ApiState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(q, &["target", "limit"])?;
    list_actions(&st.store, Some("dead".into()), &p).await
}

async fn list_actions(
    store: &Store,
    state: Option<String>,
    p: &Params,
) -> Result<Response, ApiError> {
    let target = p.text("target");
    let limit = p.limit()?;
    let rows = read(store, move |c| {
        delivery::list(
            c,
            &ActionFilter {
                state: state.as_deref(),
                target: target.as_deref(),
                event_id: None,
                limit,
            },
        )
    })
    .await?;
    Ok(Json(json!({ "actions": rows })).into_response())
}

pub async fn action(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = id.clone();
    match read(&st.store, move |c| inspect::action(c, &key)).await? {
        Some(a) => Ok(Json(a).into_response()),
        None => Err(ApiError::NotFound(format!("no action with id {id:?}"))),
    }
}

/// What `POST /api/replay` selects; an empty object selects every dead letter.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    target: Option<String>,
    id: Option<String>,
    /// RFC 3339: dead-lettered at or after.
    since: Option<String>,
    /// RFC 3339: dead-lettered before.
    until: Option<String>,
}

/// A JSON object body as `T`; `fields` names what it may hold, for the error.
fn object_body<T: serde::de::DeserializeOwned>(body: &[u8], fields: &str) -> Result<T, ApiError> {
    // An object first: serde would also take a struct as a JSON array.
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .and_then(|map| serde_json::from_value(serde_json::Value::Object(map)))
        .map_err(|e| {
            ApiError::BadBody(format!(
                "the body must be a JSON object with optional {fields}: {e}"
            ))
        })
}

/// An RFC 3339 time field of a body.
fn body_time(field: &str, t: Option<String>) -> Result<Option<i64>, ApiError> {
    t.map(|t| {
        crate::domain::parse_time_ms(&t).ok_or_else(|| {
            ApiError::BadBody(format!(
                "{field} {t:?} is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)"
            ))
        })
    })
    .transpose()
}

pub async fn replay(State(st): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let req: ReplayRequest = object_body(&body, "target, id, since, until")?;
    let filter = ReplayFilter {
        target: req.target,
        id: req.id,
        since: body_time("since", req.since)?,
        until: body_time("until", req.until)?,
    };
    let store = st.store.clone();
    let n = tokio::task::spawn_blocking(move || -> Result<usize, ApiError> {
        let conn = store.connect()?;
        // The operator is told "replayed": the change is synced before that.
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(delivery::replay_dead(
            &conn,
            &filter,
            crate::domain::now_millis(),
        )?)
    })
    .await
    .map_err(|e| StoreError::Write(format!("admin replay task: {e}")))??;
    if n > 0 {
        st.store.planned().notify_one();
    }
    tracing::info!(replayed = n, "dead letters queued again from the admin API");
    Ok(Json(json!({ "replayed": n })).into_response())
}

pub async fn rules(State(st): State<ApiState>) -> Response {
    let set = st.rules.current();
    let files: Vec<_> = set
        .files()
        .iter()
        .map(|f| json!({ "file": f.name, "event_type": f.event_type }))
        .collect();
    Json(json!({
        "version": &*set.version,
        "dir": set.dir,
        "files": files,
        "reload_errors": st.rules.last_error(),
    }))
    .into_response()
}

pub async fn quarantine(
    State(st): State<ApiState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(q, &["before", "limit"])?;
    let (before, limit) = (p.id("before")?, p.limit()?);
    let rows = read(&st.store, move |c| inspect::quarantine(c, before, limit)).await?;
    let next = if rows.len() < limit {
        None
    } else {
        rows.last().map(|r| r.id)
    };
    Ok(Json(Page {
        rows: json!({ "quarantine": rows }),
        next_before: next,
    })
    .into_response())
}

/// What `POST /api/reevaluate` covers; an empty object: every stored event
/// up to [`MAX_REEVALUATE`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReevaluateRequest {
    /// RFC 3339: received at or after.
    since: Option<String>,
    /// RFC 3339: received before.
    until: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Events to re-evaluate, oldest first (default and most: [`MAX_REEVALUATE`]).
    limit: Option<usize>,
}

/// The most events one request re-evaluates (a dry run holds a blocking
/// thread while it runs: ~40 µs an event, so this is well under a second).
const MAX_REEVALUATE: usize = 10_000;
/// The most changed events one answer lists; the summary counts them all.
const MAX_CHANGES_LISTED: usize = 500;

/// Re-evaluates stored events through the live rules as a dry run and
/// answers what would change: `{summary, changes, more}`. Nothing is
/// written or sent.
pub async fn reevaluate(State(st): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let req: ReevaluateRequest = object_body(&body, "since, until, type, limit")?;
    let limit = match req.limit {
        None => MAX_REEVALUATE,
        Some(n) if (1..=MAX_REEVALUATE).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::BadBody(format!(
                "limit {n} must be a number from 1 to {MAX_REEVALUATE}"
            )));
        }
    };
    let range = inspect::EventRange {
        since: body_time("since", req.since)?,
        until: body_time("until", req.until)?,
        event_type: req.event_type,
        after: 0,
        limit,
    };
    let set = st.rules.current();
    let store = st.store.clone();
    let (summary, changes) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let conn = store.reader()?;
        let mut changes = Vec::new();
        let summary = crate::dispatch::reevaluate::run(&set, &conn, &range, |c| {
            if changes.len() < MAX_CHANGES_LISTED {
                changes.push(serde_json::to_value(c).unwrap_or_default());
            }
        })?;
        Ok((summary, changes))
    })
    .await
    .map_err(|e| StoreError::Write(format!("admin re-evaluation task: {e}")))??;
    let more = summary.changed > changes.len();
    Ok(Json(json!({ "summary": summary, "changes": changes, "more": more })).into_response())
}

/// Every configured target and how it stands: ready or holding its actions
/// (and why), paused by its circuit breaker, and its actions per state.
pub async fn targets(State(st): State<ApiState>) -> Result<Response, ApiError> {
    let counts = read(&st.store, inspect::backlog_by_target).await?;
    let held: std::collections::HashMap<String, String> =
        st.connectors.held().into_iter().collect();
    let mut names = st.connectors.names();
    // An action may name a target that is no longer configured.
    for (t, _, _) in &counts {
        if !names.contains(t) {
            names.push(t.clone());
        }
    }
    names.sort();
    let out: Vec<_> = names
        .iter()
        .map(|name| {
            let mut by_state = serde_json::Map::new();
            for state in ["pending", "delivering", "held", "dead"] {
                let n = counts
                    .iter()
                    .find(|(t, s, _)| t == name && s == state)
                    .map_or(0, |c| c.2);
                by_state.insert(state.into(), n.into());
            }
            let paused = st
                .metrics
                .target_paused
                .get_or_create(&crate::telemetry::TargetLabel {
                    target: name.clone(),
                })
                .get()
                == 1;
            let target = st.connectors.target(name);
            json!({
                "name": name,
                "kind": target.map(|t| t.kind.as_str()),
                "configured": target.is_some(),
                "ready": target.is_some() && !held.contains_key(name),
                "held_reason": held.get(name),
                "paused": paused,
                "actions": by_state,
            })
        })
        .collect();
    Ok(Json(json!({ "targets": out })).into_response())
}
