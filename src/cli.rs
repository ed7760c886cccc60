//! The command line: `serve`, `check`, `sign` and `send`. Errors are
//! `anyhow` here (the edge); `main` maps them to exit codes.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, KeyEncoding, SignatureEncoding, SourceConfig, VerifyKind};
use crate::ingress::verify::Verifier;
use crate::rules::{RuleSet, cases};
use crate::store::outbox::PendingEvent;
use crate::telemetry::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "switchyard",
    version,
    about = "Webhook automation router for ScreenMeet and other signed senders"
)]
pub struct Cli {
    /// Path to config.yaml.
    #[arg(
        long,
        global = true,
        default_value = "config.yaml",
        env = "SWITCHYARD_CONFIG"
    )]
    pub config: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Log level filter (RUST_LOG overrides it).
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the router: receive, verify and journal webhooks.
    Serve,
    /// Validate config.yaml, compile the rules and run their tests; exit 1 on any problem.
    Check,
    /// Print, as JSON lines, the actions the current rules plan for events (nothing is sent or stored).
    Route(RouteArgs),
    /// Run the rule tests under rules/tests/ and print a report; exit 1 on failure.
    Test,
    /// List stored events, newest first, with how their evaluation ended.
    Events(EventsArgs),
    /// List actions by state, with their attempts and last error.
    Actions(ActionsArgs),
    /// Send dead letters again (all, by target, by id or by time range), or
    /// re-evaluate stored events through today's rules as a dry-run diff.
    Replay(ReplayArgs),
    /// Print the signature a sender would attach to a body.
    Sign(SignArgs),
    /// Sign a file and POST it, like the sender's Test button; prints the answer.
    Send(SendArgs),
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only events of this type.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only events from this source.
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::store::inspect::EVENT_STATES))]
    pub state: Option<String>,
    /// How the evaluation ended (`unevaluated`: not reached yet).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::store::inspect::OUTCOMES))]
    pub outcome: Option<String>,
    /// Only events with a smaller id (to page back).
    #[arg(long)]
    pub before: Option<i64>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ActionsArgs {
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::store::delivery::STATES))]
    pub state: Option<String>,
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["dead", "evaluate"])))]
pub struct ReplayArgs {
    /// Move dead letters back to pending, to be sent again.
    #[arg(long)]
    pub dead: bool,
    /// Run stored events through today's rules as a dry run and print what
    /// would be planned differently than it was. Nothing is written or sent.
    #[arg(long)]
    pub evaluate: bool,
    /// With --dead: only the dead letters of this target (a name under `targets:`).
    #[arg(long, conflicts_with = "evaluate")]
    pub target: Option<String>,
    /// With --dead: only this action (its id, as `switchyard actions` lists it).
    #[arg(long, conflicts_with = "evaluate")]
    pub id: Option<String>,
    /// With --evaluate: only events of this type.
    #[arg(long = "type", conflicts_with = "dead")]
    pub event_type: Option<String>,
    /// With --evaluate: re-evaluate at most this many events (oldest first).
    #[arg(long, default_value_t = 100_000, conflicts_with = "dead")]
    pub limit: usize,
    /// With --evaluate: one JSON object per changed event, then the summary.
    #[arg(long, conflicts_with = "dead")]
    pub json: bool,
    /// At or after this time (RFC 3339): when dead-lettered (--dead) or
    /// received (--evaluate).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (RFC 3339), likewise.
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct RouteArgs {
    /// A batch (JSON array) or a single event (JSON object); `-` reads stdin.
    #[arg(required_unless_present = "stored")]
    pub file: Option<PathBuf>,
    /// Route a stored event by its id instead of a file (also one that is
    /// still only in the ingest log, as after a crash).
    #[arg(long, conflicts_with = "file")]
    pub stored: Option<i64>,
    /// What now() returns (RFC 3339); default: the event's `ts`, else the current time.
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    /// Sign with a key of this configured source.
    #[arg(long, conflicts_with = "key_env")]
    pub source: Option<String>,
    /// Which key of the source (default: the first).
    #[arg(long, requires = "source")]
    pub key: Option<String>,
    /// Read the key from this environment variable instead of the config.
    #[arg(long)]
    pub key_env: Option<String>,
    /// How the key in --key-env is encoded.
    #[arg(long, value_enum, default_value = "utf8")]
    pub key_encoding: KeyEncodingArg,
    /// How to write the signature (screenmeet sources).
    #[arg(long, value_enum, default_value = "hex")]
    pub encoding: EncodingArg,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The body to sign; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print every header the sender would add (`Name: value` lines).
    #[arg(long)]
    pub headers: bool,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The body to send (e.g. examples/events/session-closed.json).
    pub file: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Where to POST (default: the source's path on the configured listener).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum KeyEncodingArg {
    Utf8,
    Hex,
    Base64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum EncodingArg {
    Hex,
    Base64,
}

/// Runs the parsed command. Returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    telemetry::init_logging(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Serve => {
            let config = load(&cli.config)?;
            // Before the start, so a SIGTERM during it stops the router
            // cleanly rather than killing it.
            let signals =
                crate::shutdown::Signals::install().context("installing signal handlers")?;
            let running = crate::app::start(config).await?;
            let rules = running.rules.clone();
            // SIGHUP reloads the rules (the watcher does it on its own; this
            // is for operators and tools that expect the signal).
            crate::shutdown::on_signals(running.trigger(), signals, move || {
                tracing::info!("SIGHUP: reloading rules");
                let r = rules.clone();
                async move {
                    let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                }
            });
            running.wait().await;
            Ok(0)
        }
        Command::Check => match Config::load(&cli.config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} source{}: {})",
                    cli.config.display(),
                    c.sources.len(),
                    if c.sources.len() == 1 { "" } else { "s" },
                    c.sources.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                let connectors = crate::connectors::Connectors::new(&c);
                let held = connectors.held();
                println!(
                    "targets: {} ({} ready, {} holding their actions)",
                    c.targets.keys().cloned().collect::<Vec<_>>().join(", "),
                    c.targets.len() - held.len(),
                    held.len()
                );
                for (name, why) in held {
                    println!("  {name}: {why}");
                }
                println!("admin: {}", admin_summary(&c));
                println!("retention: {}", retention_summary(&c.retention));
                match RuleSet::load(&c) {
                    Err(errors) => {
                        for e in errors {
                            eprintln!("{}/{e}", c.rules.dir.display());
                        }
                        Ok(1)
                    }
                    Ok(set) => {
                        let report = cases::run_with(&set, Some(&c.sources));
                        println!(
                            "{}: ok ({} rule file{}, version {}); tests: {} passed, {} failed",
                            c.rules.dir.display(),
                            set.files().len(),
                            if set.files().len() == 1 { "" } else { "s" },
                            set.version,
                            report.passed(),
                            report.failed()
                        );
                        for f in report.failures() {
                            eprintln!("rule test failed: {f}");
                        }
                        Ok(if report.ok() { 0 } else { 1 })
                    }
                }
            }
            Err(e) => {
                eprintln!("{}: {e}", cli.config.display());
                Ok(1)
            }
        },
        Command::Test => {
            let c = load(&cli.config)?;
            let set = load_rules(&c)?;
            let report = cases::run_with(&set, Some(&c.sources));
            print!("{report}");
            Ok(if report.ok() { 0 } else { 1 })
        }
        Command::Route(args) => route(&cli.config, args),
        Command::Events(args) => {
            let c = load(&cli.config)?;
            let conn = crate::store::read_journal(&c.store)?;
            // The CLI has no request to keep short: it walks the whole journal.
            let rows = crate::store::inspect::events(
                &conn,
                &crate::store::inspect::EventFilter {
                    event_type: args.event_type,
                    source: args.source,
                    state: args.state,
                    outcome: args.outcome,
                    before: args.before,
                    limit: args.limit,
                },
                i64::MAX,
            )?
            .rows;
            for r in &rows {
                if args.json {
                    println!("{}", serde_json::to_string(r)?);
                    continue;
                }
                let received = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(r.received_at.max(0) as u64),
                );
                let how = match (&r.reason, &r.outcome) {
                    (Some(reason), _) => format!("rejected: {reason}"),
                    (None, Some(outcome)) => outcome.clone(),
                    (None, None) => "unevaluated".into(),
                };
                println!(
                    "{:>8}  {received}  {:<12} {:<24} {how}",
                    r.id,
                    r.source,
                    r.event_type.as_deref().unwrap_or("-")
                );
            }
            Ok(0)
        }
        Command::Actions(args) => {
            let conn = journal(&cli.config)?;
            let rows = crate::store::delivery::list(
                &conn,
                &crate::store::delivery::ActionFilter {
                    state: args.state.as_deref(),
                    target: args.target.as_deref(),
                    event_id: None,
                    limit: args.limit,
                },
            )?;
            for r in &rows {
                if args.json {
                    println!("{}", serde_json::to_string(r)?);
                } else {
                    println!(
                        "{}  {:<10} {:<12} {:<7} attempts={}  {}",
                        r.id,
                        r.state,
                        r.target,
                        r.action,
                        r.attempts,
                        r.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(0)
        }
        Command::Replay(args) => {
            let parse = |t: &Option<String>| -> anyhow::Result<Option<i64>> {
                t.as_deref()
                    .map(|t| {
                        crate::domain::parse_time_ms(t)
                            .ok_or_else(|| anyhow::anyhow!("{t:?} is not an RFC 3339 time"))
                    })
                    .transpose()
            };
            let filter = crate::store::delivery::ReplayFilter {
                target: args.target.clone(),
                id: args.id.clone(),
                since: parse(&args.since)?,
                until: parse(&args.until)?,
            };
            if args.evaluate {
                return reevaluate(&cli.config, &args, filter.since, filter.until);
            }
            let conn = journal(&cli.config)?;
            let n =
                crate::store::delivery::replay_dead(&conn, &filter, crate::domain::now_millis())?;
            println!(
                "{n} dead letter{} queued again",
                if n == 1 { "" } else { "s" }
            );
            Ok(0)
        }
        Command::Sign(args) => {
            let body = read_input(args.file.as_deref())?;
            let signer = Signer::resolve(&cli.config, &args.key)?;
            let headers = signer.headers(&body, args.key.encoding);
            if args.headers {
                for (k, v) in &headers {
                    println!("{k}: {}", v.to_str().unwrap_or(""));
                }
            } else {
                let main = headers
                    .iter()
                    .find(|(k, _)| k.as_str().contains("signature"))
                    .or(headers.first())
                    .context("this source does not sign requests (verify: none)")?;
                println!("{}", main.1.to_str().unwrap_or(""));
            }
            Ok(0)
        }
        Command::Send(args) => {
            let body = std::fs::read(&args.file)
                .with_context(|| format!("reading {}", args.file.display()))?;
            let signer = Signer::resolve(&cli.config, &args.key)?;
            let url = match (&args.url, &signer.url) {
                (Some(u), _) => u.clone(),
                (None, Some(u)) => u.clone(),
                (None, None) => bail!("give --url, or --source to post to that source's path"),
            };
            let mut req = reqwest::Client::new()
                .post(&url)
                .header(http::header::CONTENT_TYPE, "text/plain")
                .body(body.clone());
            for (k, v) in signer.headers(&body, args.key.encoding) {
                req = req.header(k, v);
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("posting to {url}"))?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            println!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            println!("{text}");
            Ok(if status.is_success() { 0 } else { 1 })
        }
    }
}

/// `switchyard route`: evaluates without sending or storing anything.
fn route(config_path: &Path, args: RouteArgs) -> anyhow::Result<i32> {
    let c = load(config_path)?;
    let set = load_rules(&c)?;
    let events: Vec<PendingEvent> = match (&args.file, args.stored) {
        (_, Some(id)) => vec![
            crate::store::stored_event(&c.store, id)?
                .with_context(|| format!("no stored event with id {id}"))?,
        ],
        (Some(file), None) => {
            let text =
                String::from_utf8(read_input(Some(file))?).context("the file is not UTF-8")?;
            let value: serde_json::Value =
                serde_json::from_str(&text).context("the file is not JSON")?;
            let items = match value {
                serde_json::Value::Array(items) => items,
                other => vec![other],
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let event_type = v
                        .get("type")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let ts = v.get("ts").and_then(|t| t.as_str()).map(str::to_owned);
                    PendingEvent {
                        id: i as i64 + 1,
                        event_type,
                        body: v.to_string(),
                        received_at: time_ms(args.now.as_deref().or(ts.as_deref())),
                    }
                })
                .collect()
        }
        (None, None) => bail!("give a FILE or --stored ID"),
    };
    let mut failed = false;
    for ev in &events {
        let at = match &args.now {
            Some(t) => time_ms(Some(t)),
            None => ev.received_at,
        };
        let ev = PendingEvent {
            received_at: at,
            ..ev.clone()
        };
        let eval = crate::dispatch::evaluate::dry_run(&set, &ev);
        for a in &eval.actions {
            println!(
                "{}",
                serde_json::json!({"event": ev.id, "type": ev.event_type, "rule": a.rule, "target": a.target, "action": a.action, "payload": a.payload})
            );
        }
        for r in &eval.rules {
            if let Some(e) = &r.error {
                failed = true;
                eprintln!("event {} ({}): {e}", ev.id, ev.event_type);
            }
            if let Some(s) = &r.skip {
                eprintln!(
                    "event {} ({}): {} skipped: {s}",
                    ev.id, ev.event_type, r.rule
                );
            }
        }
        if eval.outcome == crate::rules::Outcome::NoRule {
            eprintln!("event {} ({}): no rule for this type", ev.id, ev.event_type);
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// What `check` says of the admin listener.
fn admin_summary(c: &Config) -> String {
    match (c.admin.listen, c.admin.api_token()) {
        (None, _) => "off (admin.listen: null)".into(),
        (Some(a), Some(_)) => format!("{a} (health, metrics, dashboard; API on)"),
        (Some(a), None) => {
            format!("{a} (health, metrics, dashboard; API off: no admin.token)")
        }
    }
}

/// What `check` says of `retention:`.
fn retention_summary(r: &crate::config::RetentionConfig) -> String {
    let keep = |v: Option<crate::config::Span>| {
        v.map_or("forever".to_owned(), |s| {
            humantime::format_duration(s.0).to_string()
        })
    };
    format!(
        "events {}, delivered actions {}, dead letters {}, quarantine {}; every {}",
        keep(r.events),
        keep(r.actions),
        keep(r.dead_letters),
        keep(r.quarantine),
        humantime::format_duration(r.every.0)
    )
}

/// `replay --evaluate`: the dry-run diff of stored events against today's rules.
fn reevaluate(
    config_path: &Path,
    args: &ReplayArgs,
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<i32> {
    let c = load(config_path)?;
    let set = load_rules(&c)?;
    let conn = crate::store::read_journal(&c.store)?;
    let range = crate::store::inspect::EventRange {
        since,
        until,
        event_type: args.event_type.clone(),
        after: 0,
        limit: args.limit,
    };
    let summary = crate::dispatch::reevaluate::run(&set, &conn, &range, |ch| {
        if args.json {
            println!("{}", serde_json::to_string(ch).unwrap_or_default());
            return;
        }
        let was = ch.was.as_deref().unwrap_or("unevaluated");
        if was == ch.now {
            println!("event {} ({}): {was}", ch.event, ch.event_type);
        } else {
            println!(
                "event {} ({}): {was} -> {}",
                ch.event, ch.event_type, ch.now
            );
        }
        for e in &ch.errors {
            println!("  error: {e}");
        }
        for (sign, list) in [("-", &ch.removed), ("+", &ch.added)] {
            for a in list {
                println!(
                    "  {sign} {} {} {} ({})",
                    a.action, a.target, a.payload, a.rule
                );
            }
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        println!(
            "re-evaluated {} with rules {}: {} unchanged, {} changed ({} added, {} removed); nothing was written or sent",
            plural(summary.events, "event"),
            summary.version,
            summary.unchanged,
            summary.changed,
            plural(summary.added, "action"),
            summary.removed
        );
    }
    Ok(0)
}

/// Milliseconds of an RFC 3339 time; the current time when absent or unreadable.
fn time_ms(t: Option<&str>) -> i64 {
    t.and_then(crate::domain::parse_time_ms)
        .unwrap_or_else(crate::domain::now_millis)
}

/// A read-write connection to the configured journal, for operator tools.
fn journal(config_path: &Path) -> anyhow::Result<rusqlite::Connection> {
    let c = load(config_path)?;
    let crate::config::StoreUrl::Sqlite(path) = &c.store;
    anyhow::ensure!(path.exists(), "no journal at {} yet", path.display());
    let conn =
        rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn load_rules(c: &Config) -> anyhow::Result<RuleSet> {
    RuleSet::load(c).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("rules do not compile:\n  {}", lines.join("\n  "))
    })
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn read_input(file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match file {
        Some(p) if p != Path::new("-") => {
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            Ok(buf)
        }
    }
}

/// A key and the verifier scheme to sign with, from the config or the environment.
struct Signer {
    source: SourceConfig,
    key: Vec<u8>,
    url: Option<String>,
}

impl Signer {
    fn resolve(config_path: &Path, args: &KeyArgs) -> anyhow::Result<Signer> {
        if let Some(var) = &args.key_env {
            let text = std::env::var(var)
                .with_context(|| format!("environment variable {var} is not set"))?;
            let enc = match args.key_encoding {
                KeyEncodingArg::Utf8 => KeyEncoding::Utf8,
                KeyEncodingArg::Hex => KeyEncoding::Hex,
                KeyEncodingArg::Base64 => KeyEncoding::Base64,
            };
            let key = crate::config::decode_key(VerifyKind::Screenmeet, enc, &text)
                .map_err(|e| anyhow::anyhow!("{var}: {e}"))?;
            return Ok(Signer {
                source: SourceConfig::screenmeet_for_signing(),
                key,
                url: None,
            });
        }
        let Some(name) = &args.source else {
            bail!("give --source NAME (a source in the config) or --key-env VAR");
        };
        let config = load(config_path)?;
        let source = config
            .sources
            .get(name)
            .with_context(|| {
                format!(
                    "no source {name:?} in {} (sources: {})",
                    config_path.display(),
                    config
                        .sources
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?
            .clone();
        let key = match &args.key {
            Some(label) => source
                .keys
                .iter()
                .find(|k| *k.label == **label)
                .with_context(|| format!("source {name} has no usable key labelled {label:?}"))?,
            None => source
                .keys
                .first()
                .with_context(|| format!("source {name} has no signing key"))?,
        }
        .bytes
        .clone();
        let mut host = config.listen;
        if host.ip().is_unspecified() {
            host.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let url = Some(format!("http://{host}{}", source.path));
        Ok(Signer { source, key, url })
    }

    fn headers(&self, body: &[u8], enc: EncodingArg) -> Vec<(http::HeaderName, http::HeaderValue)> {
        let enc = match enc {
            EncodingArg::Hex => SignatureEncoding::Hex,
            EncodingArg::Base64 => SignatureEncoding::Base64,
        };
        Verifier::new(&self.source).sign(&self.key, body, crate::domain::now_millis() / 1000, enc)
    }
}
