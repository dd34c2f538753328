//! Long-lived responses end with the token that opened them.
//!
//! A revoked or expired access token must stop working (RFC 7009 §2.1: the
//! invalidation takes place immediately; RFC 6750 §3.1 `invalid_token`),
//! including for the event streams it already opened: the legacy SSE
//! stream (`GET /sse`, `GET /v1/ai/mcp/sse`), the Streamable HTTP GET
//! stream of a session, and the event stream answering a POST (a tool call
//! in progress). Each of them would otherwise keep delivering to the holder
//! of a dead token for as long as the connection lives.
//!
//! The bearer gate (`gate::guard`) hands every `text/event-stream` response
//! to [`watch`], which registers it in [`OpenStreams`] under the hash and
//! expiry of the token that authenticated its request, and wraps its body
//! in an [`EndingBody`]: when the stream is ended, the body finishes at
//! once (the client sees the end of the stream) and drops what it wrapped.
//! Dropping a legacy SSE stream closes its session (`sse::SessionGuard`);
//! dropping a Streamable HTTP GET stream leaves rmcp's session in place
//! (still bound to its user: a new GET with a valid token of that user
//! opens a new stream); dropping a POST's stream cancels its request.
//!
//! The watcher ([`start`], in [`watcher`]) checks the tokens of the open
//! streams every [`RECHECK_EVERY`], and at once whenever tokens may have
//! been revoked ([`crate::auth::AuthServer::token_changes`]: every
//! revocation made by this instance, and every `TokensRevoked` or `Resync`
//! of the cluster bus, which other instances and `mcpgate user remove` /
//! `client remove` on PostgreSQL announce). A check ends the streams whose
//! token has expired by the clock, then asks the store
//! ([`Store::dead_access_tokens`]) which tokens are no longer active
//! (absent, revoked or expired: removing a user or a client deletes its
//! tokens), and ends their streams. It asks about a token when its first
//! stream opens, and about all of them again only when the store's counter
//! of token changes moved ([`Store::access_token_changes`], which triggers
//! move on every change or removal of a token, by any process: on SQLite
//! the CLI runs in another process with no way to tell the server, and on
//! PostgreSQL a notification can be lost while the listener reconnects)
//! or a revocation was announced. With nothing revoked, a check is one
//! read of that counter, however many streams are open.
//! [`OpenStreams`] keeps the streams by token too, so that a check costs a
//! step per distinct token, not per stream; and the store is asked about
//! at most [`watcher::CHECK_AT_MOST`] tokens at a time (see [`watcher`]).
//! One instance may hold 100,000 idle GET streams (docs/benchmarks.md,
//! workload 5 at scale). Nothing is queried while no stream is open.
//! A store failure ends nothing (it is logged; the next check tries again).
//! A token found dead this way also clears this instance's token cache, so
//! that a new request with it is refused at once rather than after the
//! cache's lifetime.
//!
//! [`Store::dead_access_tokens`]: crate::store::Store::dead_access_tokens
//! [`Store::access_token_changes`]: crate::store::Store::access_token_changes

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::task::AtomicWaker;
use http_body::{Frame, SizeHint};
use mcpgate_core::model::UnixTime;

mod watcher;

pub use watcher::RECHECK_EVERY;

/// The open event streams of this instance, by their number and by the
/// token that opened them.
#[derive(Default)]
pub struct OpenStreams {
    next_id: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    streams: HashMap<u64, Open>,
    /// The streams of each token, with its expiry: what the watcher checks.
    by_token: HashMap<Arc<str>, TokenStreams>,
    /// Tokens that came into `by_token` since the watcher last took them:
    /// each is checked once (the bearer check that let it open a stream may
    /// have used a cached answer). Emptied with `by_token`.
    fresh: Vec<Arc<str>>,
}

struct TokenStreams {
    expires_at: UnixTime,
    ids: HashSet<u64>,
}

struct Open {
    token_hash: Arc<str>,
    end: Arc<EndSignal>,
    about: StreamInfo,
}

impl Inner {
    /// Ends and forgets stream `id`; whether it was open.
    fn end(&mut self, id: u64) -> bool {
        let Some(open) = self.forget(id) else {
            return false;
        };
        open.end.end();
        true
    }

    /// Forgets stream `id` (its body was dropped, or it is being ended).
    fn forget(&mut self, id: u64) -> Option<Open> {
        let open = self.streams.remove(&id)?;
        if let Some(t) = self.by_token.get_mut(&open.token_hash) {
            t.ids.remove(&id);
            if t.ids.is_empty() {
                self.by_token.remove(&open.token_hash);
                if self.by_token.is_empty() {
                    self.fresh = Vec::new();
                }
            }
        }
        Some(open)
    }

    /// Ends and forgets these streams; how many were open.
    fn end_ids(&mut self, ids: Vec<u64>) -> usize {
        ids.into_iter().filter(|id| self.end(*id)).count()
    }
}

/// Which kind of event stream (what the admin console shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenKind {
    /// The GET stream of a Streamable HTTP session.
    StreamableGet,
    /// The event stream answering a POST (a request in progress).
    StreamablePost,
    /// A `subscriptions/listen` stream (2026-07-28).
    Listen,
    /// A legacy SSE session's stream (2024-11-05).
    LegacySse,
}

impl OpenKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::StreamableGet => "Streamable HTTP GET stream",
            Self::StreamablePost => "POST response stream",
            Self::Listen => "subscriptions/listen stream",
            Self::LegacySse => "legacy SSE session",
        }
    }

    /// Its label in `mcpgate_mcp_open_streams` (a listen stream is a POST's).
    fn metric(self) -> crate::telemetry::labels::StreamKind {
        use crate::telemetry::labels::StreamKind;
        match self {
            Self::StreamableGet => StreamKind::StreamableGet,
            Self::StreamablePost | Self::Listen => StreamKind::StreamablePost,
            Self::LegacySse => StreamKind::LegacySse,
        }
    }
}

/// Who opened a stream, and when (recorded at open).
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub kind: OpenKind,
    /// `Caller::owner` of the token that opened it.
    pub owner: String,
    pub client_id: String,
    /// The Streamable HTTP session it belongs to, if any.
    pub session: Option<String>,
    pub opened_at: UnixTime,
}

/// One open stream, as the admin console shows it.
#[derive(Debug, Clone)]
pub struct StreamView {
    /// Its number on this instance (what "End" posts).
    pub id: u64,
    pub kind: OpenKind,
    pub client_id: String,
    pub token_hash: String,
    /// The handle (`sessions::handle`) of its Streamable HTTP session.
    pub session_handle: Option<String>,
    pub opened_at: UnixTime,
}

/// Set once to end a stream; wakes its body.
#[derive(Default)]
struct EndSignal {
    ended: AtomicBool,
    waker: AtomicWaker,
}

impl EndSignal {
    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl OpenStreams {
    fn inner(&self) -> Option<std::sync::MutexGuard<'_, Inner>> {
        self.inner.lock().ok()
    }

    /// Number of open streams.
    pub fn len(&self) -> usize {
        self.inner().map(|m| m.streams.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open streams of `owner`, oldest first.
    pub fn of_owner(&self, owner: &str) -> Vec<StreamView> {
        let Some(m) = self.inner() else {
            return Vec::new();
        };
        let mut v: Vec<StreamView> = m
            .streams
            .iter()
            .filter(|(_, o)| o.about.owner == owner)
            .map(|(id, o)| StreamView {
                id: *id,
                kind: o.about.kind,
                client_id: o.about.client_id.clone(),
                token_hash: o.token_hash.to_string(),
                session_handle: o.about.session.as_deref().map(super::sessions::handle),
                opened_at: o.about.opened_at,
            })
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Ends `owner`'s stream `id`; `false` if `owner` has no such stream.
    pub fn end_one(&self, owner: &str, id: u64) -> bool {
        let Some(mut m) = self.inner() else {
            return false;
        };
        m.streams.get(&id).is_some_and(|o| o.about.owner == owner) && m.end(id)
    }

    /// Ends the streams of a Streamable HTTP session.
    pub fn end_of_session(&self, session: &str) -> usize {
        let Some(mut m) = self.inner() else { return 0 };
        let ids: Vec<u64> = m
            .streams
            .iter()
            .filter(|(_, o)| o.about.session.as_deref() == Some(session))
            .map(|(id, _)| *id)
            .collect();
        m.end_ids(ids)
    }

    fn register(
        self: &Arc<Self>,
        token_hash: String,
        expires_at: UnixTime,
        about: StreamInfo,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let end = Arc::new(EndSignal::default());
        if let Some(mut m) = self.inner() {
            let token: Arc<str> = match m.by_token.get_key_value(token_hash.as_str()) {
                Some((k, _)) => k.clone(),
                None => {
                    let token: Arc<str> = token_hash.into();
                    m.fresh.push(token.clone());
                    token
                }
            };
            let t = m
                .by_token
                .entry(token.clone())
                .or_insert_with(|| TokenStreams {
                    expires_at,
                    ids: HashSet::new(),
                });
            // One token, one expiry; the earlier, should two ever differ.
            t.expires_at = t.expires_at.min(expires_at);
            t.ids.insert(id);
            m.streams.insert(
                id,
                Open {
                    token_hash: token,
                    end: end.clone(),
                    about,
                },
            );
        }
        Registration {
            id,
            streams: self.clone(),
            end,
            _gauge: None,
        }
    }

    fn remove(&self, id: u64) {
        if let Some(mut m) = self.inner() {
            m.forget(id);
        }
    }

    /// Ends the streams whose token expires at or before `now`; how many.
    fn end_expired(&self, now: UnixTime) -> usize {
        let Some(mut m) = self.inner() else { return 0 };
        let ids: Vec<u64> = m
            .by_token
            .values()
            .filter(|t| now >= t.expires_at)
            .flat_map(|t| t.ids.iter().copied())
            .collect();
        m.end_ids(ids)
    }

    /// Ends the streams of these tokens; how many.
    fn end_tokens(&self, dead: &[&str]) -> usize {
        let Some(mut m) = self.inner() else { return 0 };
        let ids: Vec<u64> = dead
            .iter()
            .filter_map(|t| m.by_token.get(*t))
            .flat_map(|t| t.ids.iter().copied())
            .collect();
        m.end_ids(ids)
    }

    /// The distinct tokens of the open streams (what the tests look at).
    #[cfg(test)]
    fn tokens(&self) -> Vec<String> {
        let Some(m) = self.inner() else {
            return Vec::new();
        };
        m.by_token.keys().map(|k| k.to_string()).collect()
    }

    /// The distinct tokens of the open streams, all of them to be checked:
    /// the fresh ones are among them, and are no longer fresh.
    fn take_all(&self) -> Vec<String> {
        let Some(mut m) = self.inner() else {
            return Vec::new();
        };
        m.fresh = Vec::new();
        m.by_token.keys().map(|k| k.to_string()).collect()
    }

    /// The tokens that opened their first stream since the last call (and
    /// still have one), each once.
    fn take_fresh(&self) -> Vec<String> {
        let Some(mut m) = self.inner() else {
            return Vec::new();
        };
        let mut fresh = std::mem::take(&mut m.fresh);
        fresh.sort_unstable();
        fresh.dedup();
        fresh
            .into_iter()
            .filter(|t| m.by_token.contains_key(t))
            .map(|t| t.to_string())
            .collect()
    }
}

/// One stream's entry in [`OpenStreams`], removed when the stream's body is
/// dropped (it ended, the client went away, or it was ended).
struct Registration {
    id: u64,
    streams: Arc<OpenStreams>,
    end: Arc<EndSignal>,
    /// Counts the stream in `mcpgate_mcp_open_streams` while it is open.
    _gauge: Option<crate::telemetry::metrics::GaugeGuard>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.streams.remove(self.id);
    }
}

/// A response body that finishes as soon as its stream is ended, dropping
/// the body it wraps.
pub struct EndingBody {
    inner: Option<Body>,
    registration: Registration,
}

impl http_body::Body for EndingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let end = &this.registration.end;
        if !end.is_ended() {
            end.waker.register(cx.waker());
        }
        if end.is_ended() {
            this.inner = None;
            return Poll::Ready(None);
        }
        match this.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: the body may end early.
        SizeHint::default()
    }
}

/// `resp`, registered and made to end with its token (`token_hash`, valid
/// until `expires_at`) when it is an event stream; other responses as they
/// are.
pub fn watch(
    streams: &Arc<OpenStreams>,
    token_hash: String,
    expires_at: UnixTime,
    resp: Response,
    about: StreamInfo,
) -> Response {
    let is_stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !is_stream || resp.headers().contains_key(header::CONTENT_LENGTH) {
        return resp;
    }
    let kind = about.kind.metric();
    let mut registration = streams.register(token_hash, expires_at, about);
    registration._gauge = crate::telemetry::metrics::get().map(|m| m.open_stream(kind));
    resp.map(|inner| {
        Body::new(EndingBody {
            inner: Some(inner),
            registration,
        })
    })
}

pub use watcher::start;

#[cfg(test)]
mod tests;
