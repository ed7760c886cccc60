//! Logs and metrics. Logs go through `tracing` (human by default, JSON on
//! request) and never carry a secret, a signature or a body at info level.
//! Metric names live here so dashboards have one place to look.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Installs the global tracing subscriber. `RUST_LOG` overrides `level`.
/// Human logs are coloured only on a terminal (and not with `NO_COLOR`), so
/// journald, files and pipes get plain text.
pub fn init_logging(format: LogFormat, level: &str) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceStatus {
    pub source: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceKey {
    pub source: String,
    pub key: String,
    pub form: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceOutcome {
    pub source: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeOutcome {
    pub event_type: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetResult {
    pub target: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// Every metric switchyard exports.
pub struct Metrics {
    registry: Registry,
    /// `switchyard_ingress_requests_total{source,status}`
    pub requests: Family<SourceStatus, Counter>,
    /// `switchyard_ingress_key_matches_total{source,key,form}`: which key verified requests.
    pub key_matches: Family<SourceKey, Counter>,
    /// `switchyard_ingress_events_total{source,outcome}`: accepted, duplicate, rejected.
    pub events: Family<SourceOutcome, Counter>,
    /// `switchyard_journal_commit_seconds`: time from handing a batch to the writer to its durable commit.
    pub commit_seconds: Histogram,
    /// `switchyard_journal_index_lag_events`: events acknowledged (durable in
    /// the ingest log) but not yet indexed in the database; set at scrape time.
    pub index_lag: Gauge,
    /// `switchyard_journal_indexing_lowered`: 1 while the journal's background
    /// threads run below the ingress's priority (they keep up), 0 while they
    /// catch up at its priority or lowering is off; set at scrape time.
    pub indexing_lowered: Gauge,
    /// `switchyard_http_connections{listener}`: open connections per listener.
    pub connections: Family<ListenerLabel, Gauge>,
    /// `switchyard_ingress_in_flight{source}`: requests being read, verified or journaled.
    pub in_flight: Family<SourceLabel, Gauge>,
    /// `switchyard_rules_reloads_total{result}`: ok or error.
    pub rule_reloads: Family<ResultLabel, Counter>,
    /// `switchyard_rules_load_errors`: problems of the last failed reload (0 when live).
    pub rule_load_errors: Gauge,
    /// `switchyard_rules_version_info{version}`: 1 for the live version.
    pub rules_version: Family<VersionLabel, Gauge>,
    /// `switchyard_events_evaluated_total{event_type,outcome}`: routed, no_rule, rule_error.
    pub evaluated: Family<TypeOutcome, Counter>,
    /// `switchyard_actions_planned_total`
    pub actions_planned: Counter,
    /// `switchyard_delivery_attempts_total{target,result}`: delivered, retry, dead, held.
    pub delivery_attempts: Family<TargetResult, Counter>,
    /// `switchyard_retention_pruned_total{kind}`: events, actions, quarantine, rule_state.
    pub pruned: Family<KindLabel, Counter>,
    /// `switchyard_actions{state}`: pending, delivering, held, dead (read at scrape).
    pub actions: Family<StateLabel, Gauge>,
    /// `switchyard_actions_oldest_unsent_age_seconds`: 0 when nothing waits.
    pub oldest_unsent_age: Gauge,
    /// `switchyard_events_unevaluated`: routable events the rules have not seen yet.
    pub unevaluated: Gauge,
    /// `switchyard_target_paused{target}`: 1 while a target's breaker holds its sends.
    pub target_paused: Family<TargetLabel, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Family::<SourceStatus, Counter>::default();
        let key_matches = Family::<SourceKey, Counter>::default();
        let events = Family::<SourceOutcome, Counter>::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "ingress_requests",
            "Webhook requests by source and HTTP status",
            requests.clone(),
        );
        registry.register(
            "ingress_key_matches",
            "Verified requests by source, matching key label and signature form",
            key_matches.clone(),
        );
        registry.register(
            "ingress_events",
            "Events by source and journal outcome",
            events.clone(),
        );
        registry.register(
            "journal_commit_seconds",
            "Time for a batch to become durable in the journal",
            commit_seconds.clone(),
        );
        let index_lag = Gauge::default();
        registry.register(
            "journal_index_lag_events",
            "Events durable in the ingest log but not yet indexed in the database",
            index_lag.clone(),
        );
        let indexing_lowered = Gauge::default();
        registry.register(
            "journal_indexing_lowered",
            "1 while the journal's indexing threads run below the ingress's priority",
            indexing_lowered.clone(),
        );
        let connections = Family::<ListenerLabel, Gauge>::default();
        let in_flight = Family::<SourceLabel, Gauge>::default();
        registry.register(
            "http_connections",
            "Open connections per listener",
            connections.clone(),
        );
        registry.register(
            "ingress_in_flight",
            "Webhook requests in progress",
            in_flight.clone(),
        );
        let rule_reloads = Family::<ResultLabel, Counter>::default();
        let rule_load_errors = Gauge::default();
        let rules_version = Family::<VersionLabel, Gauge>::default();
        let evaluated = Family::<TypeOutcome, Counter>::default();
        let actions_planned = Counter::default();
        let delivery_attempts = Family::<TargetResult, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by target and how they ended",
            delivery_attempts.clone(),
        );
        registry.register(
            "rules_reloads",
            "Rule reloads by result",
            rule_reloads.clone(),
        );
        registry.register(
            "rules_load_errors",
            "Problems that stopped the last rule reload",
            rule_load_errors.clone(),
        );
        registry.register(
            "rules_version_info",
            "The live rule-set version",
            rules_version.clone(),
        );
        registry.register(
            "events_evaluated",
            "Evaluated events by type and outcome",
            evaluated.clone(),
        );
        registry.register(
            "actions_planned",
            "Actions written to the outbox",
            actions_planned.clone(),
        );
        let actions = Family::<StateLabel, Gauge>::default();
        registry.register(
            "actions",
            "Actions waiting or dead, by state (read from the journal at each scrape)",
            actions.clone(),
        );
        let oldest_unsent_age = Gauge::default();
        registry.register(
            "actions_oldest_unsent_age_seconds",
            "Age of the oldest action still pending, delivering or held (0: none)",
            oldest_unsent_age.clone(),
        );
        let unevaluated = Gauge::default();
        registry.register(
            "events_unevaluated",
            "Routable events stored but not evaluated yet",
            unevaluated.clone(),
        );
        let target_paused = Family::<TargetLabel, Gauge>::default();
        registry.register(
            "target_paused",
            "1 while a target that keeps failing is paused by its circuit breaker",
            target_paused.clone(),
        );
        let pruned = Family::<KindLabel, Counter>::default();
        registry.register(
            "retention_pruned",
            "Finished journal rows deleted by retention, by kind",
            pruned.clone(),
        );
        Arc::new(Self {
            registry,
            connections,
            in_flight,
            rule_reloads,
            rule_load_errors,
            rules_version,
            evaluated,
            actions_planned,
            delivery_attempts,
            pruned,
            actions,
            oldest_unsent_age,
            unevaluated,
            target_paused,
            requests,
            key_matches,
            events,
            commit_seconds,
            index_lag,
            indexing_lowered,
        })
    }

    pub fn rules_reload(&self, result: &str) {
        self.rule_reloads
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn delivery_attempt(&self, target: &str, result: &str) {
        self.delivery_attempts
            .get_or_create(&TargetResult {
                target: target.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Marks `version` as the live rule set (and no other).
    pub fn rules_version(&self, version: &str) {
        self.rules_version.clear();
        self.rules_version
            .get_or_create(&VersionLabel {
                version: version.to_owned(),
            })
            .set(1);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts something in progress: increments a gauge now, decrements it when
/// dropped, however the work ends (including a cancelled future).
pub struct InProgress(Gauge);

impl InProgress {
    pub fn start(g: &Gauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}
