//! Who is holding a connection, and since when: [`Watch`] is told when a
//! request begins (its head has been read) and when its response has been
//! sent, and [`Watched`] (the socket) when bytes arrive between requests.
//! From that it knows the connection's deadline:
//!
//! - a request in progress (reading its body, computing, streaming the
//!   response): none (the body has its own, `super::body`);
//! - no request yet on a new connection: `header_read_timeout` after accept;
//! - bytes of a new request head received: `header_read_timeout` after the
//!   first of them;
//! - nothing received since the last response: `keep_alive_timeout` after it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ServeLimits;

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the connection became idle (accepted, or its last response sent).
    idle_since: Instant,
    /// No request has begun yet on this connection.
    first: bool,
    /// The first byte of the next request head, if any has arrived.
    head_started: Option<Instant>,
}

/// The state of one connection; see the module documentation.
#[derive(Debug)]
pub struct Watch {
    limits: ServeLimits,
    state: Mutex<State>,
    changed: Notify,
}

impl Watch {
    pub fn new(limits: ServeLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                first: true,
                head_started: None,
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut State) -> bool) {
        let changed = match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        };
        if changed {
            self.changed.notify_one();
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.lock() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// A request head has been read; the returned guard ends the request.
    pub fn begin_request(self: &Arc<Self>) -> InFlight {
        self.update(|s| {
            s.in_flight += 1;
            s.first = false;
            s.head_started = None;
            true
        });
        InFlight(self.clone())
    }

    fn end_request(&self) {
        self.update(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
                s.head_started = None;
            }
            true
        });
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        self.update(|s| {
            if s.in_flight == 0 && s.head_started.is_none() {
                s.head_started = Some(Instant::now());
                return true;
            }
            false
        });
    }

    /// When the connection is to be closed unless something happens first;
    /// `None` while a request is in progress.
    pub fn deadline(&self) -> Option<Instant> {
        self.read(|s| {
            if s.in_flight > 0 {
                None
            } else if let Some(t) = s.head_started {
                Some(t + self.limits.header_read_timeout)
            } else if s.first {
                Some(s.idle_since + self.limits.header_read_timeout)
            } else {
                Some(s.idle_since + self.limits.keep_alive_timeout)
            }
        })
    }

    /// Why the connection is to be closed now, if it is.
    pub fn expired(&self) -> Option<&'static str> {
        let deadline = self.deadline()?;
        if Instant::now() < deadline {
            return None;
        }
        Some(self.read(|s| {
            if s.head_started.is_some() || s.first {
                "header_read_timeout"
            } else {
                "keep_alive_timeout"
            }
        }))
    }

    /// Completes when the state has changed (the deadline may have moved).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// A request in progress; dropping it ends the request.
pub struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// A response body that ends its request when it is done or dropped.
pub struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl Tracked {
    pub fn new(inner: Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket (a TCP stream, or a TLS stream over one), telling its
/// [`Watch`] when bytes arrive. HTTP/2 connections do not report bytes:
/// between requests a client sends frames of its own (`PING`,
/// `WINDOW_UPDATE`, `SETTINGS` acknowledgements), which are not the start of
/// a request head; only the keep-alive deadline applies to them.
pub struct Watched<S> {
    inner: S,
    watch: Arc<Watch>,
    report_bytes: bool,
}

impl<S> Watched<S> {
    pub fn new(inner: S, watch: Arc<Watch>) -> Self {
        Self {
            inner,
            watch,
            report_bytes: true,
        }
    }

    /// For an HTTP/2 connection: bytes between requests are not a request
    /// head being sent.
    pub fn http2(inner: S, watch: Arc<Watch>) -> Self {
        Self {
            inner,
            watch,
            report_bytes: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.report_bytes && matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.received();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
