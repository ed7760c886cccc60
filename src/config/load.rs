//! Turning config text into a validated [`Config`]: YAML → interpolated
//! tree → each section deserialized on its own (so one typo does not hide the
//! next) → semantic checks. Every problem is collected with its YAML path.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_norway::Value;

use super::{
    AdminConfig, BodyShape, Config, DeliveryConfig, DeliveryOverride, KeyEncoding, RetentionConfig,
    RulesConfig, ServerConfig, SignatureEncoding, SigningKey, SourceConfig, SourceEntry, StoreUrl,
    TargetConfig, TargetEntry, VerifyKind,
};

/// One thing wrong with the config, at a YAML path such as `sources.screenmeet.keys[0].secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one config file.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str(")")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

const TOP_LEVEL: &[&str] = &[
    "delivery",
    "listen",
    "store",
    "server",
    "admin",
    "sources",
    "targets",
    "rules",
    "retention",
];
const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_MAX_DEPTH: usize = 64;
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }
}

pub(super) fn parse(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut problems = Problems(Vec::new());
    let mut root: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(ConfigError {
                problems: vec![ConfigProblem {
                    path: String::new(),
                    message: format!("not valid YAML: {e}"),
                }],
            });
        }
    };
    interpolate(&mut root, String::new(), env, &mut problems);

    let Value::Mapping(map) = root else {
        problems.add(
            "",
            "the config must be a mapping with listen, store and sources",
        );
        return Err(ConfigError {
            problems: problems.0,
        });
    };
    let mut sections: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in map {
        match k.as_str() {
            Some(key) if TOP_LEVEL.contains(&key) => {
                sections.insert(key.to_owned(), v);
            }
            Some(key) => problems.add(
                key,
                format!("unknown key (expected one of: {})", TOP_LEVEL.join(", ")),
            ),
            None => problems.add("", "top-level keys must be strings"),
        }
    }

    let listen: Option<std::net::SocketAddr> = required(&mut sections, "listen", &mut problems)
        .and_then(|v| section(v, "listen", &mut problems));
    let store = required(&mut sections, "store", &mut problems)
        .and_then(|v| section::<String>(v, "store", &mut problems))
        .and_then(|s| parse_store(&s, base_dir, &mut problems));
    let server = sections
        .remove("server")
        .map(|v| section::<ServerConfig>(v, "server", &mut problems))
        .unwrap_or_else(|| Some(ServerConfig::default()));
    let admin = match sections.remove("admin") {
        Some(v) => section::<AdminConfig>(v, "admin", &mut problems),
        None => Some(AdminConfig::default()),
    }
    .map(|a| check_admin(a, base_dir, &mut problems));
    if let Some(s) = &server {
        check_server(s, &mut problems);
    }
    let rules = match sections.remove("rules") {
        Some(v) => section::<RulesConfig>(v, "rules", &mut problems),
        None => Some(RulesConfig::default()),
    }
    .map(|mut r| {
        if r.dir.is_relative() {
            r.dir = base_dir.join(&r.dir);
        }
        r
    });
    let delivery = match sections.remove("delivery") {
        Some(v) => section::<DeliveryConfig>(v, "delivery", &mut problems),
        None => Some(DeliveryConfig::default()),
    };
    if let Some(d) = &delivery {
        check_delivery(d, "delivery", &mut problems);
    }
    let mut targets = BTreeMap::new();
    match sections.remove("targets") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let Some(name) = k.as_str().map(str::to_owned) else {
                    problems.add("targets", "target names must be strings");
                    continue;
                };
                let path = format!("targets.{name}");
                let Some(mut entry) = section::<TargetEntry>(v, &path, &mut problems) else {
                    continue;
                };
                let allowed = entry.kind.allowed_settings();
                let mut ok = read_secret_files(&mut entry, &path, base_dir, &mut problems);
                for key in entry.settings.keys() {
                    if !allowed.contains(&key.as_str()) {
                        ok = false;
                        problems.add(
                            format!("{path}.{key}"),
                            format!(
                                "unknown setting for a {} target (expected one of: {}; or {})",
                                entry.kind.as_str(),
                                allowed.join(", "),
                                entry
                                    .kind
                                    .secret_settings()
                                    .iter()
                                    .map(|s| format!("{s}_file"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                }
                let own = match entry.settings.get("delivery") {
                    None => DeliveryOverride::default(),
                    Some(v) => match serde_json::from_value::<DeliveryOverride>(v.clone()) {
                        Ok(o) => o,
                        Err(e) => {
                            ok = false;
                            problems.add(format!("{path}.delivery"), e.to_string());
                            DeliveryOverride::default()
                        }
                    },
                };
                let resolved = delivery.as_ref().map(|d| d.with(&own)).unwrap_or_default();
                check_delivery(&resolved, &format!("{path}.delivery"), &mut problems);
                if ok {
                    targets.insert(
                        name.clone(),
                        TargetConfig {
                            name,
                            kind: entry.kind,
                            settings: entry.settings,
                            delivery: resolved,
                        },
                    );
                }
            }
        }
        Some(_) => problems.add("targets", "expected a mapping of target name to target"),
    }

    let mut sources = BTreeMap::new();
    match required(&mut sections, "sources", &mut problems) {
        Some(Value::Mapping(m)) if m.is_empty() => {
            problems.add("sources", "at least one source is needed")
        }
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let Some(name) = k.as_str().map(str::to_owned) else {
                    problems.add("sources", "source names must be strings");
                    continue;
                };
                let path = format!("sources.{name}");
                if let Some(entry) = section::<SourceEntry>(v, &path, &mut problems)
                    && let Some(src) = check_source(&name, entry, base_dir, listen, &mut problems)
                {
                    sources.insert(name, src);
                }
            }
        }
        Some(_) => problems.add("sources", "expected a mapping of source name to source"),
        None => {}
    }
    let mut seen_paths: HashSet<&str> = HashSet::new();
    for (name, s) in &sources {
        if !seen_paths.insert(&s.path) {
            problems.add(
                format!("sources.{name}.path"),
                format!("path {} is used by another source", s.path),
            );
        }
    }

    let retention = match sections.remove("retention") {
        Some(v) => section::<RetentionConfig>(v, "retention", &mut problems),
        None => Some(RetentionConfig::default()),
    };
    if let Some(r) = &retention {
        check_retention(r, &sources, &mut problems);
    }

    match (listen, store, server, admin, rules, delivery, retention) {
        (
            Some(listen),
            Some(store),
            Some(server),
            Some(admin),
            Some(rules),
            Some(delivery),
            Some(retention),
        ) if problems.0.is_empty() => Ok(Config {
            listen,
            store,
            server,
            admin,
            sources,
            targets,
            rules,
            delivery,
            retention,
        }),
        _ => Err(ConfigError {
            problems: problems.0,
        }),
    }
}

fn required(
    sections: &mut BTreeMap<String, Value>,
    key: &str,
    problems: &mut Problems,
) -> Option<Value> {
    let v = sections.remove(key);
    if v.is_none() {
        problems.add(key, "missing (required)");
    }
    v
}

/// Deserializes one subtree, reporting the failing field's full path.
fn section<T: DeserializeOwned>(v: Value, path: &str, problems: &mut Problems) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(v) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{inner}")
            };
            problems.add(full, e.into_inner().to_string());
            None
        }
    }
}

/// Replaces `${VAR}` / `${VAR:-default}` in every string scalar; `$$` is a literal `$`.
fn interpolate(
    v: &mut Value,
    path: String,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    match v {
        Value::String(s) => {
            if s.contains('$') {
                match expand(s, env) {
                    Ok(out) => *s = out,
                    Err(msg) => problems.add(path, msg),
                }
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                interpolate(item, format!("{path}[{i}]"), env, problems);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let p = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                interpolate(item, p, env, problems);
            }
        }
        Value::Tagged(t) => interpolate(&mut t.value, path, env, problems),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated ${{ in {s:?} (write $$ for a literal $)"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("invalid variable name {name:?} in ${{{expr}}}"));
            }
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (set it, or write ${{{name}:-}} to make it optional)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_store(s: &str, base_dir: &Path, problems: &mut Problems) -> Option<StoreUrl> {
    match s.strip_prefix("sqlite://") {
        Some(p) if !p.is_empty() => {
            let path = Path::new(p);
            Some(StoreUrl::Sqlite(if path.is_absolute() {
                path.to_owned()
            } else {
                base_dir.join(path)
            }))
        }
        _ => {
            problems.add(
                "store",
                format!("unsupported store {s:?} (expected sqlite://PATH, e.g. sqlite://data/switchyard.db)"),
            );
            None
        }
    }
}

fn check_delivery(d: &DeliveryConfig, at: &str, problems: &mut Problems) {
    if d.retry.schedule.is_empty() {
        problems.add(
            format!("{at}.retry.schedule"),
            "needs at least one wait, e.g. [5s, 30s, 2m]",
        );
    }
    if d.concurrency == 0 {
        problems.add(format!("{at}.concurrency"), "must be at least 1");
    }
    if !(d.rate.per_second > 0.0 && d.rate.per_second.is_finite()) || d.rate.burst == 0 {
        problems.add(
            format!("{at}.rate"),
            "per_second must be above 0 and burst at least 1",
        );
    }
}

/// The content of a `*_file` secret (relative to the config's directory),
/// without its trailing newline.
fn read_secret_file(f: &Path, base_dir: &Path) -> Result<String, String> {
    let p = if f.is_absolute() {
        f.to_path_buf()
    } else {
        base_dir.join(f)
    };
    std::fs::read_to_string(&p)
        .map(|t| t.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|err| format!("cannot read {}: {err}", p.display()))
}

/// Replaces each `<secret>_file` setting of a target with the file's
/// content under `<secret>`; false when one could not be read or both
/// forms were given.
fn read_secret_files(
    entry: &mut TargetEntry,
    path: &str,
    base_dir: &Path,
    problems: &mut Problems,
) -> bool {
    let mut ok = true;
    for secret in entry.kind.secret_settings() {
        let key = format!("{secret}_file");
        let Some(file) = entry.settings.remove(&key) else {
            continue;
        };
        let Some(file) = file.as_str().map(Path::new) else {
            problems.add(format!("{path}.{key}"), "must be a file path");
            ok = false;
            continue;
        };
        if entry
            .settings
            .get(*secret)
            .and_then(|v| v.as_str())
            .is_some_and(|v| !v.is_empty())
        {
            problems.add(path, format!("give either {secret} or {key}, not both"));
            ok = false;
            continue;
        }
        match read_secret_file(file, base_dir) {
            Ok(text) => {
                entry
                    .settings
                    .insert((*secret).to_owned(), serde_json::Value::String(text));
            }
            Err(msg) => {
                problems.add(format!("{path}.{key}"), msg);
                ok = false;
            }
        }
    }
    ok
}

/// Shortest admin API token accepted: guessing 16 random characters over
/// the network is hopeless, guessing "admin" is not.
const MIN_ADMIN_TOKEN: usize = 16;

/// Resolves `token_file` into `token` and checks the token's length.
fn check_admin(mut a: AdminConfig, base_dir: &Path, problems: &mut Problems) -> AdminConfig {
    if let Some(f) = a.token_file.take() {
        if a.token.as_ref().is_some_and(|t| !t.0.is_empty()) {
            problems.add("admin", "give either token or token_file, not both");
        } else {
            match read_secret_file(&f, base_dir) {
                Ok(t) => a.token = Some(super::Secret(t)),
                Err(msg) => problems.add("admin.token_file", msg),
            }
        }
    }
    if let Some(t) = a.api_token()
        && t.chars().count() < MIN_ADMIN_TOKEN
    {
        problems.add(
            "admin.token",
            format!("must be at least {MIN_ADMIN_TOKEN} characters (e.g. the output of `openssl rand -hex 32`)"),
        );
    }
    a
}

/// Events must outlive every dedup window: the window is rebuilt from
/// the stored events at start, so a resend of a pruned event would pass.
fn check_retention(
    r: &RetentionConfig,
    sources: &BTreeMap<String, SourceConfig>,
    problems: &mut Problems,
) {
    if let Some(keep) = r.events {
        for (name, s) in sources {
            if keep.0 < s.dedup_window {
                problems.add(
                    "retention.events",
                    format!(
                        "{} is shorter than sources.{name}.dedup_window ({}): a resend of a pruned event would be accepted again",
                        humantime::format_duration(keep.0),
                        humantime::format_duration(s.dedup_window)
                    ),
                );
            }
        }
    }
    for (name, v) in [
        ("events", r.events),
        ("actions", r.actions),
        ("dead_letters", r.dead_letters),
        ("quarantine", r.quarantine),
    ] {
        if v.is_some_and(|v| v.0.is_zero()) {
            problems.add(
                format!("retention.{name}"),
                "must be longer than 0s (null keeps forever)",
            );
        }
    }
    if r.every.0.is_zero() {
        problems.add("retention.every", "must be longer than 0s");
    }
    if r.batch == 0 {
        problems.add("retention.batch", "must be at least 1");
    }
}

fn check_server(s: &ServerConfig, problems: &mut Problems) {
    if s.max_connections == 0 {
        problems.add("server.max_connections", "must be at least 1");
    }
    if s.max_header_bytes.0 < 8192 {
        problems.add("server.max_header_bytes", "must be at least 8KiB");
    }
    if !(0..=19).contains(&s.indexing_nice) {
        problems.add(
            "server.indexing_nice",
            "must be between 0 and 19 (0 = the ingress's priority)",
        );
    }
    for (name, v) in [
        ("header_read_timeout", s.header_read_timeout),
        ("body_read_timeout", s.body_read_timeout),
        ("idle_timeout", s.idle_timeout),
    ] {
        if v.0.is_zero() {
            problems.add(format!("server.{name}"), "must be longer than 0s");
        }
    }
}

fn check_source(
    name: &str,
    e: SourceEntry,
    base_dir: &Path,
    listen: Option<std::net::SocketAddr>,
    problems: &mut Problems,
) -> Option<SourceConfig> {
    let before = problems.0.len();
    let at = |field: &str| format!("sources.{name}.{field}");
    if !e.path.starts_with('/') {
        problems.add(at("path"), format!("{:?} must start with /", e.path));
    } else if !e
        .path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        || e.path.contains("//")
    {
        problems.add(
            at("path"),
            format!("{:?} may only hold letters, digits and / - _ . ~", e.path),
        );
    }
    let mut labels = HashSet::new();
    let mut keys = Vec::new();
    for (i, k) in e.keys.iter().enumerate() {
        let kp = format!("sources.{name}.keys[{i}]");
        if k.label.trim().is_empty() {
            problems.add(format!("{kp}.label"), "must not be empty");
        } else if !labels.insert(k.label.clone()) {
            problems.add(
                format!("{kp}.label"),
                format!("duplicate key label {:?}", k.label),
            );
        }
        let text = match (&k.secret, &k.secret_file) {
            (Some(s), None) => s.0.clone(),
            (None, Some(f)) => match read_secret_file(f, base_dir) {
                Ok(t) => t,
                Err(msg) => {
                    problems.add(format!("{kp}.secret_file"), msg);
                    continue;
                }
            },
            (Some(_), Some(_)) => {
                problems.add(kp, "give either secret or secret_file, not both");
                continue;
            }
            (None, None) => {
                problems.add(kp, "needs secret or secret_file");
                continue;
            }
        };
        if text.is_empty() {
            continue; // an empty secret marks an unused slot, e.g. no previous key yet
        }
        match decode_key(e.verify, e.key_encoding, &text) {
            Ok(bytes) => keys.push(SigningKey {
                label: k.label.as_str().into(),
                bytes,
            }),
            Err(msg) => problems.add(format!("{kp}.secret"), msg),
        }
    }
    match e.verify {
        VerifyKind::None => {
            if !e.keys.is_empty() {
                problems.add(at("keys"), "verify: none takes no keys");
            }
            if let Some(l) = listen
                && !l.ip().is_loopback()
            {
                problems.add(
                    at("verify"),
                    format!("verify: none is only allowed when listen is a loopback address (listen is {l})"),
                );
            }
        }
        VerifyKind::Screenmeet
        | VerifyKind::StandardWebhooks
        | VerifyKind::Github
        | VerifyKind::Hmac => {
            if keys.is_empty() && problems.0.len() == before {
                problems.add(
                    at("keys"),
                    format!(
                        "verify: {} needs at least one key with a non-empty secret",
                        e.verify
                    ),
                );
            }
        }
    }
    if e.verify == VerifyKind::StandardWebhooks && e.key_encoding != KeyEncoding::Utf8 {
        problems.add(
            at("key_encoding"),
            "standard-webhooks keys are whsec_<base64>; leave key_encoding unset",
        );
    }
    let hmac_header = match (e.verify, &e.header) {
        (VerifyKind::Hmac, Some(h)) => {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                problems.add(at("header"), format!("{h:?} is not a valid header name"));
            }
            h.to_ascii_lowercase()
        }
        (VerifyKind::Hmac, None) => {
            problems.add(
                at("header"),
                "verify: hmac needs header: (e.g. x-signature)",
            );
            String::new()
        }
        (_, Some(_)) => {
            problems.add(at("header"), "only verify: hmac takes header");
            String::new()
        }
        (_, None) => String::new(),
    };
    if e.verify != VerifyKind::Hmac && (e.prefix.is_some() || e.signature_encoding.is_some()) {
        problems.add(
            at("prefix"),
            "prefix and signature_encoding only apply to verify: hmac",
        );
    }
    if e.verify != VerifyKind::StandardWebhooks && e.tolerance.is_some() {
        problems.add(
            at("tolerance"),
            "only verify: standard-webhooks takes tolerance",
        );
    }
    let max_body = e.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0);
    if max_body == 0 {
        problems.add(at("max_body"), "must be larger than 0");
    }
    let max_depth = e.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
    if !(1..=120).contains(&max_depth) {
        problems.add(at("max_depth"), "must be between 1 and 120");
    }
    if e.dedup_fields.iter().any(|f| f.is_empty()) {
        problems.add(at("dedup_fields"), "field names must not be empty");
    }
    let body = e.body.unwrap_or(match e.verify {
        VerifyKind::Github | VerifyKind::StandardWebhooks => BodyShape::Object,
        VerifyKind::Screenmeet | VerifyKind::Hmac | VerifyKind::None => BodyShape::Array,
    });
    if problems.0.len() != before {
        return None;
    }
    Some(SourceConfig {
        name: name.to_owned(),
        path: e.path,
        verify: e.verify,
        keys,
        max_body,
        dedup_window: e.dedup_window.map_or(DEFAULT_DEDUP_WINDOW, |s| s.0),
        dedup_fields: e.dedup_fields,
        body,
        max_depth,
        hmac_header,
        hmac_prefix: e.prefix.unwrap_or_default(),
        signature_encoding: e.signature_encoding.unwrap_or(SignatureEncoding::Hex),
        tolerance: e.tolerance.map_or(DEFAULT_TOLERANCE, |s| s.0),
    })
}

/// Decodes secret text into key bytes according to the source's settings.
pub fn decode_key(verify: VerifyKind, enc: KeyEncoding, text: &str) -> Result<Vec<u8>, String> {
    if verify == VerifyKind::StandardWebhooks {
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "not a whsec_<base64> key".to_owned());
    }
    match enc {
        KeyEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
        KeyEncoding::Hex => hex::decode(text)
            .map_err(|_| "key_encoding is hex but the secret is not hex".to_owned()),
        KeyEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .map_err(|_| "key_encoding is base64 but the secret is not base64".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "KEY" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_default_and_literal_dollar() {
        assert_eq!(expand("a${KEY}b", &env).unwrap(), "as3cretb");
        assert_eq!(expand("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
        assert_eq!(expand("$$5", &env).unwrap(), "$5");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
    }

    #[test]
    fn unset_variable_names_the_variable_and_a_hint() {
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
        assert!(e.contains("${NOPE:-}"), "{e}");
    }

    #[test]
    fn unterminated_reference_is_an_error() {
        assert!(expand("${KEY", &env).unwrap_err().contains("unterminated"));
    }
}
