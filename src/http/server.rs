//! The connection loop: accepts on an already bound listener, serves each connection with
//! hyper's HTTP/1.1 under the limits a slow or hostile client must not get past, and stops
//! gracefully. warp's own `serve` sets none of these limits (it builds hyper without a timer).
//!
//! - at most `server.max_connections` open at once: the next accept waits for a free place, so
//!   past the cap new connections wait in the kernel's listen queue while the open ones are
//!   served;
//! - `server.header_read_timeout` from the first byte of a request to the end of its headers,
//!   and `server.idle_timeout` for a keep-alive connection with no request: past either, the
//!   connection is closed (a per-connection watchdog; hyper's own header timer would also cut
//!   idle keep-alive connections at the header timeout);
//! - `server.body_read_timeout` is enforced where the body is read (`408`, see `read_body`);
//! - a client that goes away is not a server error: it is logged at debug level and counted;
//! - `accept` failing for want of file descriptors is logged at most every ten seconds, and the
//!   loop backs off instead of spinning.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The socket's peer, set on every request this loop serves (warp's own is private to it).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What the connection loop has seen, for operators (and the metrics to come).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicU64,
    /// Connections the client dropped or broke mid-exchange.
    pub client_disconnects: AtomicU64,
    /// Connections closed for a header or idle timeout.
    pub timed_out: AtomicU64,
}

/// Milliseconds since the loop started: one clock for the watchdogs.
fn millis(since: Instant) -> i64 {
    since.elapsed().as_millis() as i64
}

/// What a connection's watchdog needs to know.
#[derive(Default)]
struct Activity {
    /// When the bytes of a request not yet handed to the application began (0: none).
    head_started: AtomicI64,
    /// Requests handed to the application and not yet answered.
    in_flight: AtomicU32,
    /// When the connection last finished answering (or was opened).
    last_done: AtomicI64,
}

/// The connection's socket, noting when a new request's bytes begin.
struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
    epoch: Instant,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.in_flight.load(Ordering::Acquire) == 0 {
            let now = millis(self.epoch).max(1);
            let _ = self.activity.head_started.compare_exchange(
                0,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;

/// The response's body, or the chunks of a streamed one (`reply::streamed`).
fn with_streamed_body(response: warp::reply::Response, head: bool) -> hyper::Response<Body> {
    use http_body_util::BodyExt;
    let streamed = response
        .extensions()
        .get::<super::reply::Streamed>()
        .and_then(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    let (parts, body) = response.into_parts();
    let body = match streamed {
        Some(chunks) if !head => {
            let frames = futures_util::stream::unfold(chunks, |mut chunks| async move {
                let next = chunks.recv().await?;
                Some((
                    next.map(hyper::body::Frame::data)
                        .map_err(|e| Box::new(e) as BoxError),
                    chunks,
                ))
            });
            http_body_util::StreamBody::new(frames).boxed()
        }
        _ => body.map_err(|e| Box::new(e) as BoxError).boxed(),
    };
    hyper::Response::from_parts(parts, body)
}

/// Whether a connection error is the client's doing (gone, reset, malformed) rather than ours.
fn client_side(error: &hyper::Error) -> bool {
    error.is_incomplete_message()
        || error.is_parse()
        || error.is_canceled()
        || error.is_closed()
        || error.is_timeout()
        || std::error::Error::source(error)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::TimedOut
                )
            })
}

/// Connections the metrics address holds open at most: a scraper or two, never a share of the
/// process's file descriptors that the API's connections need.
const METRICS_CONNECTIONS: usize = 16;

/// What one address's connections may hold and how long they may take (see the module).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    header_timeout_ms: i64,
    idle_timeout_ms: i64,
}

impl Limits {
    /// The API's address: `server.max_connections` and the server's timeouts.
    pub fn api(settings: &crate::config::ServerConfig) -> Limits {
        Limits {
            max_connections: settings.max_connections as usize,
            header_timeout_ms: settings.header_read_timeout.0.as_millis() as i64,
            idle_timeout_ms: settings.idle_timeout.0.as_millis() as i64,
        }
    }

    /// The metrics address: the same timeouts, `METRICS_CONNECTIONS` at once.
    pub fn metrics(settings: &crate::config::ServerConfig) -> Limits {
        Limits {
            max_connections: METRICS_CONNECTIONS,
            ..Limits::api(settings)
        }
    }
}

/// Serves `filter` on `listener` under `limits` until `shutdown` completes, then lets the
/// connections in flight finish (the caller bounds how long). `stats` counts this address's
/// connections.
pub async fn run<F>(
    filter: F,
    listener: tokio::net::TcpListener,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()> + Send,
) where
    F: warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let places = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (header_timeout, idle_timeout) = (limits.header_timeout_ms, limits.idle_timeout_ms);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let epoch = Instant::now();
    let mut last_accept_warning: Option<Instant> = None;
    let mut shutdown = pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors (or another transient failure): say so now and then,
                    // and give the open connections a moment to end.
                    if last_accept_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "accepting a connection failed; backing off");
                        last_accept_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        activity.last_done.store(millis(epoch), Ordering::Release);
        // A new connection owes its first request's headers within the header timeout, even
        // before it sends a byte: a silent connection is a slow client too.
        activity
            .head_started
            .store(millis(epoch).max(1), Ordering::Release);
        let io = TokioIo::new(Watched {
            io: stream,
            activity: activity.clone(),
            epoch,
        });
        let service = {
            let inner =
                hyper_util::service::TowerToHyperService::new(warp::service(filter.clone()));
            let activity = activity.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(Peer(peer));
                activity.in_flight.fetch_add(1, Ordering::AcqRel);
                activity.head_started.store(0, Ordering::Release);
                let head = request.method() == hyper::Method::HEAD;
                let answer = hyper::service::Service::call(&inner, request);
                let activity = activity.clone();
                async move {
                    let response = answer.await;
                    activity.last_done.store(millis(epoch), Ordering::Release);
                    activity.in_flight.fetch_sub(1, Ordering::AcqRel);
                    response.map(|r| with_streamed_body(r, head))
                }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // The watchdog below times headers and idleness; hyper's timer would also close
            // idle keep-alive connections at the header timeout.
            .header_read_timeout(None)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        let stats = stats.clone();
        tokio::spawn(async move {
            let _place = place;
            stats.open.fetch_add(1, Ordering::Relaxed);
            let watchdog = async {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    let now = millis(epoch);
                    let started = activity.head_started.load(Ordering::Acquire);
                    let busy = activity.in_flight.load(Ordering::Acquire) > 0;
                    if started > 0 && !busy && now - started > header_timeout {
                        return "header";
                    }
                    let idle = now - activity.last_done.load(Ordering::Acquire);
                    if started == 0 && !busy && idle > idle_timeout {
                        return "idle";
                    }
                }
            };
            tokio::select! {
                served = connection => match served {
                    Ok(()) => {}
                    Err(e) if client_side(&e) => {
                        stats.client_disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, %peer, "client connection ended early");
                    }
                    Err(e) => tracing::warn!(error = %e, %peer, "connection failed"),
                },
                why = watchdog => {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "closing a connection past its {why} timeout");
                }
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
