//! Wiring: open the journal, bind the listeners, serve until shutdown, then
//! close in order (servers drain first, the journal closes last so every
//! answered request is on disk).

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;

use std::sync::Arc;

use crate::config::{Config, VerifyKind};
use crate::connectors::Connectors;
use crate::dispatch::deliver;
use crate::dispatch::evaluate::Evaluator;
use crate::rules::reload::{LiveRules, WatchHandle};
use crate::shutdown::{self, Shutdown, Trigger};
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::{admin, ingress};

/// Work that runs beside the servers and stops after them.
struct Background {
    evaluator: Evaluator,
    watcher: WatchHandle,
    dispatcher: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
}

/// A started instance: where it listens and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub rules: Arc<LiveRules>,
    pub metrics: Arc<Metrics>,
    /// The journal (for tools and tests: e.g. [`Store::settle`]).
    pub store: Store,
    trigger: Trigger,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts a graceful shutdown and waits until the journal is closed.
    pub async fn stop(self) {
        self.trigger.fire();
        let _ = self.done.await;
    }

    /// Waits until something else (a signal) stops the instance.
    pub async fn wait(self) {
        let _ = self.done.await;
    }

    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }
}

/// Opens the store, binds `listen` (and the admin listener) and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    for (name, src) in &config.sources {
        if src.verify == VerifyKind::None {
            tracing::warn!(source = %name, "source {name} accepts UNAUTHENTICATED requests (verify: none); use it only for local development");
        }
    }
    let metrics = Metrics::new();
    let rules = LiveRules::start(config.clone(), metrics.clone()).map_err(|errors| {
        anyhow::anyhow!(
            "the rules in {} do not load:\n  {}",
            config.rules.dir.display(),
            errors.join("\n  ")
        )
    })?;
    // The listeners first: a router that cannot bind (another one holds the
    // port) stops before it touches the journal.
    let listener = bind(config.listen, config.server.max_connections)
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let admin_listener = match config.admin.listen {
        Some(a) => Some(bind(a, 128).with_context(|| format!("binding the admin listener {a}"))?),
        None => None,
    };
    let store =
        Store::open(&config.store, &config.store_options()).context("opening the journal")?;
    let evaluator = Evaluator::spawn(&store, rules.clone(), metrics.clone())
        .context("starting the evaluation loop")?;
    let watcher = rules
        .watch()
        .with_context(|| format!("watching {}", config.rules.dir.display()))?;
    let admin_addr = admin_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let (trigger, shutdown) = shutdown::channel();
    let connectors = Arc::new(Connectors::new(&config));
    let pruner = tokio::spawn(crate::dispatch::prune::run(
        store.clone(),
        config.retention.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let dispatcher = tokio::spawn(deliver::run(
        store.clone(),
        connectors.clone(),
        metrics.clone(),
        shutdown.clone(),
        config.server.shutdown_timeout.0,
    ));
    let router = ingress::router(&config, store.clone(), metrics.clone());
    let admin_router = admin::router(
        store.clone(),
        metrics.clone(),
        rules.clone(),
        connectors.clone(),
        config.admin.api_token(),
    );
    if config.admin.listen.is_some() && config.admin.api_token().is_none() {
        tracing::info!(
            "the admin API is off (no admin.token); /healthz, /readyz and /metrics are on"
        );
    }
    let server_cfg = config.server.clone();
    tracing::info!(%addr, admin = ?admin_addr, sources = config.sources.len(), "switchyard is listening");
    for (name, src) in &config.sources {
        tracing::info!(source = %name, path = %src.path, verify = %src.verify, keys = ?src.keys.iter().map(|k| &k.label).collect::<Vec<_>>(), "source ready");
    }
    let store_handle = store.clone();
    let done = tokio::spawn(run(
        listener,
        admin_listener,
        router,
        admin_router,
        server_cfg,
        shutdown,
        store,
        metrics.clone(),
        Background {
            evaluator,
            watcher,
            dispatcher,
            pruner,
        },
    ));
    Ok(Running {
        addr,
        admin_addr,
        rules,
        metrics,
        store: store_handle,
        trigger,
        done,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    router: axum::Router,
    admin_router: axum::Router,
    cfg: crate::config::ServerConfig,
    shutdown: Shutdown,
    store: Store,
    metrics: std::sync::Arc<Metrics>,
    background: Background,
) {
    let gauge = |name: &str| {
        metrics
            .connections
            .get_or_create(&crate::telemetry::ListenerLabel {
                listener: name.to_owned(),
            })
            .clone()
    };
    let admin_task = admin_listener.map(|l| {
        tokio::spawn(ingress::server::serve(
            l,
            admin_router,
            cfg.clone(),
            gauge("admin"),
            shutdown.clone(),
        ))
    });
    ingress::server::serve(listener, router, cfg, gauge("ingress"), shutdown).await;
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    // No new events arrive now: stop evaluating (the batch in hand commits),
    // stop watching rules, then let the writer finish and close the database.
    let Background {
        evaluator,
        watcher,
        dispatcher,
        pruner,
    } = background;
    // A prune batch in hand finishes in the writer; none starts after this.
    let _ = pruner.await;
    // The dispatcher stopped claiming on the same signal; let its sends in
    // flight record their attempts before the journal closes.
    let _ = dispatcher.await;
    let _ = tokio::task::spawn_blocking(move || {
        evaluator.stop();
        drop(watcher);
    })
    .await;
    store.close().await;
    tracing::info!("switchyard stopped; journal closed");
}

/// Binds with an accept backlog sized for `max_connections` (the kernel caps
/// it at `net.core.somaxconn`), so a burst of clients waits in the queue
/// instead of having its handshakes dropped.
fn bind(addr: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let backlog = u32::try_from(max_connections.clamp(1024, 65_535)).unwrap_or(1024);
    socket.listen(backlog)
}
