//! The accept loop and the connections (in place of `axum::serve`, which
//! has no timeouts and no connection cap). Slow or idle clients must not
//! hold the server: "slowloris" clients that send a request a byte at a
//! time, or connect and send nothing, would otherwise keep a connection
//! (a file descriptor, a task, buffers) forever.
//!
//! - At most `max_connections` connections are served at once. At the cap
//!   the loop stops accepting until one closes: further clients wait in the
//!   kernel's listen backlog (and are served in turn) instead of costing a
//!   descriptor and a task each, or being turned away.
//! - `header_read_timeout`: a request head (request line and headers,
//!   RFC 9112 §2) must be complete within this long of its first byte, and
//!   a new connection must deliver its first head this soon; else the
//!   connection is closed. ([`watch`])
//! - `keep_alive_timeout`: a kept-alive connection (RFC 9112 §9.3) with no
//!   request for this long is closed. ([`watch`])
//! - `body_read_timeout`: a request body must arrive within this long of
//!   its head; the body then fails with [`body::BodyTimeout`], and the
//!   handler reading it answers `408`. ([`body`])
//!
//! None of them runs while a response is being sent: a legacy SSE stream,
//! a Streamable HTTP GET stream or a long tool call lasts as long as it needs.
//!
//! Graceful shutdown: the loop stops accepting, idle connections close at
//! once, the others after their current response; the loop returns when
//! every connection has closed.
//!
//! Plain connections speak HTTP/1.1 (with keep-alive). With native TLS
//! (`super::tls`) the handshake must finish within `header_read_timeout`,
//! and the protocol the client chose by ALPN is served: HTTP/2 or HTTP/1.1.

pub mod body;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use watch::{Watch, Watched};

/// The timeouts and the connection cap (from the settings).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes
/// the requests in progress and returns once every connection has closed.
/// Requests carry `ConnectInfo<SocketAddr>` (the peer), as with axum's
/// `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let stop = CancellationToken::new();
    // Every connection task holds a sender; `recv` ends when all are gone.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = shutdown.as_mut() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = shutdown.as_mut() => break,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            tcp,
            peer,
            router.clone(),
            limits,
            tls.clone(),
            stop.clone(),
            permit,
            open_tx.clone(),
        ));
    }
    drop(listener);
    stop.cancel();
    drop(open_tx);
    let _ = open_rx.recv().await;
}

/// As hyper 0.14 and axum do: a failed accept of one connection is
/// nothing; running out of descriptors (`EMFILE`) calls for a pause.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it closes, its client stalls (see
/// [`watch`]), or shutdown lets it finish.
#[allow(clippy::too_many_arguments)]
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
    _open: mpsc::Sender<()>,
) {
    // TCP_NODELAY: a streamed answer (an SSE event, then the end of the
    // chunked body) is several small writes; with Nagle's algorithm the
    // last one waits for the client's delayed ACK, about 40 ms per request.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let Some(acceptor) = tls else {
        let watch = Arc::new(Watch::new(limits));
        let io = TokioIo::new(Watched::new(tcp, watch.clone()));
        let conn = http1().serve_connection(io, service(router, peer, limits, watch.clone()));
        drive(conn, |c| c.graceful_shutdown(), watch, stop).await;
        return;
    };
    let stream = match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(reason = "header_read_timeout", "TLS handshake too slow");
            return;
        }
    };
    let watch = Arc::new(Watch::new(limits));
    if stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
        let io = TokioIo::new(Watched::http2(stream, watch.clone()));
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service(router, peer, limits, watch.clone()));
        drive(conn, |c| c.graceful_shutdown(), watch, stop).await;
    } else {
        let io = TokioIo::new(Watched::new(stream, watch.clone()));
        let conn = http1().serve_connection(io, service(router, peer, limits, watch.clone()));
        drive(conn, |c| c.graceful_shutdown(), watch, stop).await;
    }
}

fn http1() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own header timeout (hyper's also runs between requests, which
    // would make it the keep-alive timeout as well).
    builder.header_read_timeout(None);
    builder
}

/// The router as a hyper service: the peer address in the request, the
/// body deadline, and the request counted in progress until its response
/// body is sent (or dropped): no timeout cuts a stream.
fn service(
    router: Router,
    peer: SocketAddr,
    limits: ServeLimits,
    watch: Arc<Watch>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<axum::body::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<hyper::Response<axum::body::Body>, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = watch.begin_request();
        let mut req = req
            .map(|b| axum::body::Body::new(body::DeadlineBody::new(b, limits.body_read_timeout)));
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let Ok(resp) = router.oneshot(req).await;
            Ok::<_, std::convert::Infallible>(
                resp.map(|b| axum::body::Body::new(watch::Tracked::new(b, in_flight))),
            )
        }
    })
}

/// Runs a connection until it ends, its deadline passes (see [`watch`]),
/// or shutdown lets its requests in progress finish.
async fn drive<C, E>(
    conn: C,
    graceful_shutdown: impl Fn(std::pin::Pin<&mut C>),
    watch: Arc<Watch>,
    stop: CancellationToken,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = watch.deadline();
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                graceful_shutdown(conn.as_mut());
            }
            () = watch.changed() => {}
            () = sleep_until(deadline) => {
                if let Some(why) = watch.expired() {
                    tracing::debug!(reason = why, "closing a stalled connection");
                    break;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
