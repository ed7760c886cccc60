//! Serving a router with connection hygiene. `axum::serve` sets no
//! header-read timeout and no connection limit, so connections are driven
//! here through hyper's HTTP/1 builder with a timer:
//!
//! - `header_read_timeout`: hyper closes a connection whose request head is
//!   not complete in time; it also runs while a kept-alive connection waits
//!   for its next request, so idle keep-alives are bounded by it too;
//! - `body_read_timeout`: enforced by the ingress while it reads the body (408);
//! - `idle_timeout`: a watchdog closes any connection on which no byte has
//!   moved for that long (a client that stops reading our answer, say);
//! - `max_connections`: a semaphore; beyond it, new connections wait in the
//!   kernel backlog rather than costing memory;
//! - `max_header_bytes`: hyper's read buffer cap, so a huge head is refused.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::shutdown::Shutdown;
use crate::telemetry::InProgress;

/// Accepts connections on `listener` until `shutdown`, then waits up to
/// `shutdown_timeout` for requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: ServerConfig,
    open: Gauge,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout.0)
        .max_buf_size(
            usize::try_from(cfg.max_header_bytes.0)
                .unwrap_or(usize::MAX)
                .max(8192),
        )
        .keep_alive(true);
    let epoch = Instant::now();
    let idle = cfg.idle_timeout.0;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.wait() => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        // The idle clock starts at accept: a client that never sends a byte is idle too.
        let last = Arc::new(AtomicU64::new(epoch.elapsed().as_millis() as u64));
        let io = TokioIo::new(Tracked {
            inner: stream,
            last: last.clone(),
            epoch,
        });
        let conn =
            graceful.watch(http.serve_connection(io, TowerToHyperService::new(router.clone())));
        let counted = InProgress::start(&open);
        tokio::spawn(async move {
            let _permit = permit;
            let _counted = counted;
            tokio::pin!(conn);
            loop {
                let since = Duration::from_millis(last.load(Ordering::Relaxed));
                let deadline = epoch + since + idle;
                tokio::select! {
                    res = &mut conn => {
                        if let Err(e) = res {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    _ = tokio::time::sleep_until(deadline.into()) => {
                        let quiet = epoch.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                        if quiet >= idle {
                            tracing::debug!("closing a connection idle for {:?}", quiet);
                            return; // dropping the connection closes the socket
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(cfg.shutdown_timeout.0) => {
            tracing::warn!("shutdown deadline reached with requests still in flight");
        }
    }
}

/// A TCP stream that records when a byte last moved, for the idle watchdog.
struct Tracked {
    inner: TcpStream,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl Tracked {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
