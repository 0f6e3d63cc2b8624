//! The HTTP server under the exporter's routes, with the bounds `axum::serve`
//! lacks: a header-read timeout, an idle timeout and a cap on open
//! connections (`--web.read-header-timeout`, `--web.idle-timeout`,
//! `--web.max-connections`).
//!
//! Each accepted connection is served by hyper's HTTP/1.1 and HTTP/2 server
//! (`hyper_util`'s auto builder) in its own task, watched for three things:
//! the shutdown signal (the connection finishes its in-flight requests, then
//! closes), a first request that has not arrived within the header-read
//! timeout (the connection is dropped: this also covers a client that sends
//! nothing, which hyper's own header timer never sees while it waits to tell
//! HTTP/1 from HTTP/2), and no bytes moving either way for the idle timeout
//! (the connection is closed gracefully: a request in flight is finished
//! first). hyper applies the header-read timeout to every later HTTP/1
//! request too, counting from when the connection is ready for it, so a kept
//! alive HTTP/1 connection closes after the shorter of the two timeouts.
//!
//! With a web config (`--web.config.file`, `security.rs`), a TLS connection
//! is set up from the configuration in force when it is accepted, and its
//! handshake counts against the header-read timeout: a client that opens a
//! connection and never finishes the handshake is dropped like one that
//! sends no request. Each request then passes the rate limit and basic auth.
//!
//! At the cap the server stops accepting: further connections wait in the
//! kernel's accept queue, holding no file descriptor of the process, and are
//! served as soon as an open connection closes (as Prometheus' own
//! `--web.max-connections` does).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::security::WebSecurity;

/// The bounds on the HTTP server's connections. Their defaults are the
/// flags' (`src/main.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client has to send a request's headers.
    pub read_header_timeout: Duration,
    /// How long a connection may move no bytes before it is closed.
    pub idle_timeout: Duration,
    /// How many connections are served at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` within `limits`, behind the web config
/// `security` when given, until `shutdown` is cancelled, then waits for the
/// open connections to finish their in-flight requests and close.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    security: Option<Arc<WebSecurity>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let builders = Arc::new(Builders {
        auto: builder(limits),
        http1: builder(limits).http1_only(),
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: the error
                    // clears when connections close, so wait a moment
                    // rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let builders = builders.clone();
        let router = router.clone();
        let security = security.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            accept_connection(&builders, stream, router, limits, security, shutdown).await;
            drop(permit);
        });
    }
    // New connections are refused from here on; the open ones finish.
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The HTTP server of a connection: HTTP/1.1 and HTTP/2, or HTTP/1.1 only
/// (`http_server_config.http2: false`).
struct Builders {
    auto: Builder<TokioExecutor>,
    http1: Builder<TokioExecutor>,
}

fn builder(limits: HttpLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Sets up one accepted connection (the TLS handshake, within the
/// header-read timeout, when the web config has TLS) and serves it.
async fn accept_connection(
    builders: &Builders,
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    security: Option<Arc<WebSecurity>>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let started = Instant::now();
    // A web config that cannot be read now refuses a TLS connection, and
    // answers a plain one's requests with 500 (its error is logged once, by
    // `current`).
    let loaded = security.as_ref().map(|security| security.current());
    let (builder, tls) = match &loaded {
        None => (&builders.auto, None),
        Some(Ok(loaded)) if !loaded.config.http2 => (&builders.http1, loaded.tls.clone()),
        Some(Ok(loaded)) => (&builders.auto, loaded.tls.clone()),
        Some(Err(_)) if security.as_ref().is_some_and(|s| s.uses_tls()) => return,
        Some(Err(_)) => (&builders.auto, None),
    };
    let Some(tls) = tls else {
        return serve_connection(builder, stream, started, router, limits, security, shutdown)
            .await;
    };
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    let stream = tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep_until(started + limits.read_header_timeout) => {
            tracing::debug!("tls handshake not finished within the header-read timeout");
            return;
        }
        result = handshake => match result {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "tls handshake failed");
                return;
            }
        },
    };
    serve_connection(builder, stream, started, router, limits, security, shutdown).await;
}

/// Serves one connection until it closes, is idle too long, or sends no
/// first request in time (counted from `started`, when it was accepted).
async fn serve_connection<S>(
    builder: &Builder<TokioExecutor>,
    stream: S,
    started: Instant,
    router: Router,
    limits: HttpLimits,
    security: Option<Arc<WebSecurity>>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(AtomicU64::new(0));
    let requested = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Tracked {
        inner: stream,
        started,
        activity: activity.clone(),
    });
    let service = {
        let requested = requested.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            requested.store(true, Ordering::Relaxed);
            let router = router.clone();
            let security = security.clone();
            async move {
                match security {
                    Some(security) => Ok(security.serve(request, router).await),
                    None => router.oneshot(request).await,
                }
            }
        })
    };
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let first_request_deadline = started + limits.read_header_timeout;
    let mut closing = false;
    loop {
        let idle_deadline =
            started + Duration::from_millis(activity.load(Ordering::Relaxed)) + limits.idle_timeout;
        let waiting_for_first = !requested.load(Ordering::Relaxed);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "http connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(first_request_deadline), if waiting_for_first => {
                if !requested.load(Ordering::Relaxed) {
                    tracing::debug!("http connection sent no request within the header-read timeout");
                    return;
                }
            }
            _ = tokio::time::sleep_until(idle_deadline), if !closing => {
                let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
                if last + limits.idle_timeout <= Instant::now() {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// A connection's socket (or TLS stream) that notes when bytes last moved,
/// in milliseconds since the connection was accepted.
struct Tracked<S> {
    inner: S,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(elapsed, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
