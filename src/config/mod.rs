//! config.yaml: strict serde types for every part, `${VAR}` / `${VAR:-default}`
//! interpolation and `secret_file:`, and validation that reports every
//! problem at once with its YAML path.
//!
//! Loading is pure (`Config::from_str` takes the text and an environment
//! lookup) so tests parse the shipped `config.yaml` and every example.

mod load;
mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use load::{ConfigError, ConfigProblem, decode_key};
pub use units::{Size, Span};

/// The whole configuration after interpolation and validation.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub store: StoreUrl,
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub sources: BTreeMap<String, SourceConfig>,
    pub targets: BTreeMap<String, TargetConfig>,
    pub rules: RulesConfig,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
}

/// How long the journal keeps what is finished. `null` keeps it forever.
/// Nothing unfinished is ever pruned: an event waiting for the rules or
/// with an action still to send, an action pending, delivering or held.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Evaluated events (and their evaluation) whose actions are all gone.
    pub events: Option<Span>,
    /// Delivered actions and their attempts, after delivery.
    pub actions: Option<Span>,
    /// Dead letters and their attempts, after they died; `null` keeps them
    /// until they are replayed and delivered.
    pub dead_letters: Option<Span>,
    /// Quarantined bodies, after arrival.
    pub quarantine: Option<Span>,
    /// How often the journal is pruned.
    pub every: Span,
    /// Rows deleted per transaction, so a large prune never holds the
    /// writer for long.
    pub batch: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |n: u64| Some(Span(Duration::from_secs(n * 24 * 3600)));
        Self {
            events: days(30),
            actions: days(30),
            dead_letters: None,
            quarantine: days(30),
            every: Span(Duration::from_secs(600)),
            batch: 2000,
        }
    }
}

/// How actions are delivered: defaults for every target; a target may
/// override any of it with its own `delivery:`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// One attempt's deadline.
    pub timeout: Span,
    pub retry: RetryConfig,
    /// Sends in flight per target.
    pub concurrency: usize,
    pub rate: RateConfig,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Waits before attempt 2, 3, ...; the last one repeats.
    pub schedule: Vec<Span>,
    /// An action older than this is dead-lettered instead of retried.
    pub max_age: Span,
    /// Attempts before a dead letter (0: only `max_age` limits).
    pub max_attempts: u32,
    /// The least wait after a 429 or a timeout.
    pub floor: Span,
    /// A `Retry-After` longer than this is clamped to it.
    pub max_retry_after: Span,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    pub per_second: f64,
    pub burst: u32,
}

/// A target's partial `delivery:`; what it leaves out comes from the global one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryOverride {
    pub timeout: Option<Span>,
    pub retry: Option<RetryOverride>,
    pub concurrency: Option<usize>,
    pub rate: Option<RateOverride>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOverride {
    pub schedule: Option<Vec<Span>>,
    pub max_age: Option<Span>,
    pub max_attempts: Option<u32>,
    pub floor: Option<Span>,
    pub max_retry_after: Option<Span>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateOverride {
    pub per_second: Option<f64>,
    pub burst: Option<u32>,
}

impl DeliveryConfig {
    /// This config with `o` applied on top.
    pub fn with(&self, o: &DeliveryOverride) -> DeliveryConfig {
        let r = o.retry.clone().unwrap_or_default();
        let rate = o.rate.clone().unwrap_or_default();
        DeliveryConfig {
            timeout: o.timeout.unwrap_or(self.timeout),
            retry: RetryConfig {
                schedule: r.schedule.unwrap_or_else(|| self.retry.schedule.clone()),
                max_age: r.max_age.unwrap_or(self.retry.max_age),
                max_attempts: r.max_attempts.unwrap_or(self.retry.max_attempts),
                floor: r.floor.unwrap_or(self.retry.floor),
                max_retry_after: r.max_retry_after.unwrap_or(self.retry.max_retry_after),
            },
            concurrency: o.concurrency.unwrap_or(self.concurrency),
            rate: RateConfig {
                per_second: rate.per_second.unwrap_or(self.rate.per_second),
                burst: rate.burst.unwrap_or(self.rate.burst),
            },
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Span(Duration::from_secs(10)),
            retry: RetryConfig::default(),
            concurrency: 8,
            rate: RateConfig {
                per_second: 1.0,
                burst: 3,
            },
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        let s = |secs| Span(Duration::from_secs(secs));
        Self {
            schedule: vec![s(5), s(30), s(120), s(600), s(1800), s(3600), s(10800)],
            max_age: s(24 * 3600),
            max_attempts: 0,
            floor: s(5),
            max_retry_after: s(3600),
        }
    }
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            per_second: 1.0,
            burst: 3,
        }
    }
}

/// Where actions go. Their delivery settings are read by the connectors;
/// here the name, the kind and the allowed keys are checked.
#[derive(Clone)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    /// Kind-specific settings, interpolated, as written.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// The global `delivery:` with this target's own overrides applied.
    pub delivery: DeliveryConfig,
}

/// Secret settings print as `<redacted>`.
impl fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = self.kind.secret_settings();
        let settings: BTreeMap<&str, &dyn fmt::Debug> = self
            .settings
            .iter()
            .map(|(k, v)| {
                let shown: &dyn fmt::Debug = if secret.contains(&k.as_str()) {
                    &"<redacted>"
                } else {
                    v
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("TargetConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &settings)
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl TargetConfig {
    /// A string setting, `None` when absent or empty (an unset `${VAR:-}`).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// The kinds of target a rule can address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Slack,
    Jira,
    Pagerduty,
    Servicenow,
    Zendesk,
    Github,
    Http,
    Smtp,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Slack => "slack",
            TargetKind::Jira => "jira",
            TargetKind::Pagerduty => "pagerduty",
            TargetKind::Servicenow => "servicenow",
            TargetKind::Zendesk => "zendesk",
            TargetKind::Github => "github",
            TargetKind::Http => "http",
            TargetKind::Smtp => "smtp",
        }
    }

    /// The settings that are secrets: never printed, and each may instead
    /// be read from a file with `<setting>_file` (e.g. a mounted
    /// Kubernetes secret).
    pub fn secret_settings(self) -> &'static [&'static str] {
        match self {
            TargetKind::Slack => &["webhook_url", "token"],
            TargetKind::Jira | TargetKind::Zendesk => &["api_token"],
            TargetKind::Pagerduty => &["routing_key"],
            TargetKind::Servicenow | TargetKind::Smtp => &["password"],
            TargetKind::Github => &["token"],
            TargetKind::Http => &["hmac_secret"],
        }
    }

    /// The settings a target of this kind may have (besides `<secret>_file`).
    pub fn allowed_settings(self) -> &'static [&'static str] {
        match self {
            TargetKind::Slack => &["webhook_url", "token", "channel", "api_url", "delivery"],
            TargetKind::Jira => &[
                "base_url",
                "email",
                "api_token",
                "project",
                "issue_type",
                "delivery",
            ],
            TargetKind::Pagerduty => &["routing_key", "api_url", "delivery"],
            TargetKind::Servicenow => &["base_url", "username", "password", "table", "delivery"],
            TargetKind::Zendesk => &["base_url", "email", "api_token", "delivery"],
            TargetKind::Github => &["api_url", "token", "repo", "delivery"],
            TargetKind::Http => &[
                "base_url",
                "headers",
                "hmac_secret",
                "hmac_header",
                "delivery",
            ],
            TargetKind::Smtp => &["url", "from", "username", "password", "tls", "delivery"],
        }
    }
}

/// The rule engine: where scripts live and the limits every script runs under.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Directory of `.rhai` files (relative to the config file).
    pub dir: PathBuf,
    /// Rhai operations one rule may run per event.
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Wall-clock budget of one rule for one event.
    pub time_budget: Span,
    /// Quiet time after a change under `dir` before reloading.
    pub reload_debounce: Span,
    /// Safety-net rescan interval, for changes the watcher missed.
    pub rescan_every: Span,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("rules"),
            max_operations: 200_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 256 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            time_budget: Span(Duration::from_millis(50)),
            reload_debounce: Span(Duration::from_millis(150)),
            rescan_every: Span(Duration::from_secs(30)),
        }
    }
}

/// Where the journal lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://relative/or/absolute/path.db` (the embedded default).
    Sqlite(PathBuf),
}

/// Connection hygiene for the public listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Time a client has to send a complete request head; also bounds the
    /// wait for the first byte of every request on a kept-alive connection.
    pub header_read_timeout: Span,
    /// Time a client has to send the whole body once the head is in.
    pub body_read_timeout: Span,
    /// A connection on which no byte moves for this long is closed.
    pub idle_timeout: Span,
    /// Open connections beyond this wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// Largest request head (request line + headers) accepted.
    pub max_header_bytes: Size,
    /// Deadline for requests in flight when shutting down.
    pub shutdown_timeout: Span,
    /// How many nice steps (0–19) below the process the threads that
    /// index, sync and checkpoint the journal run while they keep up: above
    /// 0, a burst that saturates the CPU goes to the ingress first and
    /// indexing catches up after (`store::priority`). 0 runs them at the
    /// ingress's priority always.
    pub indexing_nice: i32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Span(Duration::from_secs(10)),
            body_read_timeout: Span(Duration::from_secs(30)),
            idle_timeout: Span(Duration::from_secs(60)),
            max_connections: 4096,
            max_header_bytes: Size(16 * 1024),
            shutdown_timeout: Span(Duration::from_secs(20)),
            indexing_nice: 10,
        }
    }
}

/// The operator-facing listener: health, readiness and metrics (open),
/// and the admin API under `/api` (bearer token).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `null` turns the admin listener off.
    pub listen: Option<SocketAddr>,
    /// The admin API's bearer token; empty or absent turns `/api` off.
    /// After loading, a `token_file`'s content is here too.
    pub token: Option<Secret>,
    /// A file holding the token, as an alternative to `token`.
    pub token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            token: None,
            token_file: None,
        }
    }
}

impl AdminConfig {
    /// The API token, when the API is on.
    pub fn api_token(&self) -> Option<&str> {
        self.token
            .as_ref()
            .map(|t| t.0.as_str())
            .filter(|t| !t.is_empty())
    }
}

/// How a source authenticates its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyKind {
    Screenmeet,
    StandardWebhooks,
    Github,
    Hmac,
    None,
}

impl fmt::Display for VerifyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyKind::Screenmeet => "screenmeet",
            VerifyKind::StandardWebhooks => "standard-webhooks",
            VerifyKind::Github => "github",
            VerifyKind::Hmac => "hmac",
            VerifyKind::None => "none",
        })
    }
}

/// How the configured secret text turns into key bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    #[default]
    Utf8,
    Hex,
    Base64,
}

/// How a generic `hmac` source writes its signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// The shape of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyShape {
    /// A JSON array of events (ScreenMeet).
    Array,
    /// One JSON object per request (GitHub, Standard Webhooks).
    Object,
}

/// Secret text: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A signing key after decoding.
#[derive(Clone)]
pub struct SigningKey {
    /// Shared, so every verified request can carry it without a copy.
    pub label: std::sync::Arc<str>,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.label)
    }
}

/// One `keys:` entry as written.
/// A target as written: `kind` plus kind-specific settings.
#[derive(Clone, Debug, Deserialize)]
pub struct TargetEntry {
    pub kind: TargetKind,
    #[serde(flatten)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub label: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A source as written in config.yaml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    pub path: String,
    pub verify: VerifyKind,
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    #[serde(default)]
    pub key_encoding: KeyEncoding,
    #[serde(default)]
    pub max_body: Option<Size>,
    #[serde(default)]
    pub dedup_window: Option<Span>,
    #[serde(default)]
    pub dedup_fields: Vec<String>,
    #[serde(default)]
    pub body: Option<BodyShape>,
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// `hmac`: the header carrying the signature.
    #[serde(default)]
    pub header: Option<String>,
    /// `hmac`: text before the signature, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `hmac`: how the signature is written.
    #[serde(default)]
    pub signature_encoding: Option<SignatureEncoding>,
    /// `standard-webhooks`: accepted clock skew of `webhook-timestamp`.
    #[serde(default)]
    pub tolerance: Option<Span>,
}

/// A source after validation: keys decoded, defaults applied.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub name: String,
    pub path: String,
    pub verify: VerifyKind,
    pub keys: Vec<SigningKey>,
    pub max_body: u64,
    pub dedup_window: Duration,
    pub dedup_fields: Vec<String>,
    pub body: BodyShape,
    pub max_depth: usize,
    pub hmac_header: String,
    pub hmac_prefix: String,
    pub signature_encoding: SignatureEncoding,
    pub tolerance: Duration,
}

impl Config {
    /// Parses and validates config text; `env` resolves `${VAR}`.
    pub fn from_str_with_env(
        text: &str,
        base_dir: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        load::parse(text, base_dir, env)
    }

    /// Reads and validates the file at `path` against the process environment.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("cannot read {}: {e}", path.display()),
            }],
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        load::parse(&text, base, &|k| std::env::var(k).ok())
    }

    /// The longest dedup window of any source.
    pub fn max_dedup_window(&self) -> Duration {
        self.sources
            .values()
            .map(|s| s.dedup_window)
            .max()
            .unwrap_or_default()
    }

    /// What the journal needs to know of this config to open.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_dedup_window: self.max_dedup_window(),
            indexing_nice: self.server.indexing_nice,
        }
    }

    /// The source whose `path` is `path`, if any.
    pub fn source_by_path(&self, path: &str) -> Option<&SourceConfig> {
        self.sources.values().find(|s| s.path == path)
    }
}

/// Key decoding as config does it, for verifier test vectors.
#[cfg(test)]
pub(crate) fn decode_key_for_tests(v: VerifyKind, e: KeyEncoding, text: &str) -> Vec<u8> {
    load::decode_key(v, e, text).expect("test key decodes")
}

impl SourceConfig {
    /// A ScreenMeet-style source with no keys, for signing with a key given
    /// on the command line.
    pub fn screenmeet_for_signing() -> SourceConfig {
        SourceConfig {
            name: "cli".into(),
            path: "/".into(),
            verify: VerifyKind::Screenmeet,
            keys: Vec::new(),
            max_body: 0,
            dedup_window: Duration::ZERO,
            dedup_fields: Vec::new(),
            body: BodyShape::Array,
            max_depth: 64,
            hmac_header: String::new(),
            hmac_prefix: String::new(),
            signature_encoding: SignatureEncoding::Hex,
            tolerance: Duration::ZERO,
        }
    }
}
