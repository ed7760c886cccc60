//! switchyard: a webhook automation router.
//!
//! The path of an event, in the order it happens:
//!
//! - [`config`]: config.yaml, strictly parsed, secrets from the environment.
//! - [`ingress`]: one POST route per source; body cap, verification of the
//!   exact bytes (typestate `Unverified` → `Verified`), split into events.
//! - [`store`]: the journal; every event is durably committed (group commit)
//!   and de-duplicated before the sender gets its 200; the outbox of planned
//!   actions; retention prunes what is finished and old.
//! - [`rules`]: the operator's Rhai scripts per event type, sandboxed and
//!   pure, hot-reloaded as a whole.
//! - [`dispatch`]: the evaluation loop (durable events → rules → outbox, in
//!   one transaction per batch) and the delivery loop (leased actions →
//!   connectors → attempts recorded, retries decided, dead letters kept).
//! - [`connectors`]: Slack, Jira, PagerDuty, ServiceNow, Zendesk, GitHub,
//!   SMTP, HTTP: build the request, classify the answer.
//! - [`admin`]: health, readiness and metrics for operators, and the
//!   token-protected admin API (events, actions, dead letters and their
//!   replay, rules and their reload errors, quarantine).
//! - [`telemetry`]: logs and metric names.
//! - [`app`] / [`cli`] / [`shutdown`]: wiring, commands and graceful stop.
//!
//! [`domain`] holds the nouns every part shares.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod dispatch;
pub mod domain;
pub mod ingress;
pub mod rules;
pub mod shutdown;
pub mod store;
pub mod telemetry;
