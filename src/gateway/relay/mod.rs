//! The client side of an upstream connection: what mcpgate does when an
//! upstream sends a request or notification.
//!
//! - `sampling/createMessage`, `elicitation/create`, `roots/list`: asked of
//!   the downstream session whose request caused them ([`RelayState::origin`]),
//!   as part of that request (on its response stream, for Streamable HTTP;
//!   see [`ask_downstream`]), and the answer goes back up. MCP defines no
//!   wire field relating such a request to the call that caused it
//!   (SEP-2260 leaves it to the transport, and rmcp's client merges the
//!   streams it arrives on), so the origin is the most recent call among
//!   those in flight on the connection, provided they all belong to one
//!   user (`Downstream::owner`; one session where the owner is unknown); on
//!   a per-user connection they always do. Within one user the most recent
//!   call is a guess (the user's 2026-07-28 calls waiting for input,
//!   `super::input`, stay in flight meanwhile); across users there is
//!   none. Anything else (calls of several users in flight, a request of
//!   mcpgate's own such
//!   as a list, a REST call, or nothing) is ambiguous: the upstream gets a
//!   JSON-RPC error, the event is logged, and nobody is asked. Never a
//!   guess: one user's prompt must not reach another user. (A progress
//!   token is no evidence: rmcp numbers its tokens from zero on both sides,
//!   so an upstream's own token may equal one of the gateway's.) An
//!   upstream that asks its clients and serves several users at once
//!   belongs in `isolation = "per_user"`.
//! - an `InputRequiredResult` of an upstream on 2026-07-28: answered by
//!   asking the client of the request it answers, and the request sent
//!   again ([`rounds`]).
//! - progress: rmcp gives every request it sends its own progress token;
//!   [`RelayState::map_progress`] maps it back to the downstream session and
//!   the token that session chose.
//! - list changes and resource updates: to the sessions that used (or
//!   subscribed through) this connection. Log messages: to the origin as
//!   above, or, for a per-user connection, to that user's sessions; on a
//!   shared connection a log message of unknown origin is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::ServerNotification;
use rmcp::model::{
    ClientResult, GetExtensions, LoggingMessageNotification, LoggingMessageNotificationParam,
    ProgressNotification, ProgressNotificationParam, ProgressToken, RequestId, ServerRequest,
};
use rmcp::service::{OriginatingRequestId, RequestContext, ServiceError};
use rmcp::{ErrorData as McpError, RoleClient};

mod handler;
mod links;
mod logs;
mod origin;
pub mod rounds;
mod transport;

pub use handler::RelayHandler;
use links::SessionLinks;
pub use logs::LogFilter;
use origin::InFlight;
pub use origin::NoOrigin;
pub use transport::{Counted, counted};

use super::listen::{Event, ListenHub, Source};
use crate::mcp::client_link::ClientLink;
use crate::mcp::inline::reply::RequestStream;

/// A downstream MCP session (one per connected client session).
#[derive(Clone)]
pub struct Downstream {
    pub session: u64,
    /// Who the session acts for (`Caller::owner`), if known: on a shared
    /// connection, requests of one owner's sessions in flight together are
    /// not ambiguous ([`RelayState::origin`]).
    pub owner: Option<String>,
    /// The way to the session's client: notifications unrelated to a
    /// request (list changes, resource updates) go through it.
    pub link: ClientLink,
    /// The request of that session the gateway is serving; requests the
    /// upstream makes meanwhile are sent to the client as part of it.
    pub request: Option<RequestId>,
    /// That request's response stream, when it is served inline
    /// (`crate::mcp::inline`); otherwise its messages go through `link`.
    pub inline: Option<RequestStream>,
    /// Set when the client is asked through results rather than requests
    /// (2026-07-28 multi-round-trip requests, `super::input`): requests of
    /// the upstream go to this asker instead of `link` or `inline`.
    pub input: Option<super::input::Asker>,
    /// A 2026-07-28 request (no session): its link lives as long as the
    /// request, and list changes reach such clients on their
    /// `subscriptions/listen` streams instead (`super::listen`).
    pub per_request: bool,
    /// The log messages the request accepts.
    pub logs: LogFilter,
}

/// Whose a request in flight is, for [`RelayState::origin`]: its owner's,
/// or (owner unknown) its session's alone.
#[derive(Debug, PartialEq, Eq)]
enum Party<'a> {
    Owner(&'a str),
    Session(u64),
}

impl Downstream {
    fn party(&self) -> Party<'_> {
        match &self.owner {
            Some(o) => Party::Owner(o),
            None => Party::Session(self.session),
        }
    }

    async fn notify_progress(&self, p: ProgressNotificationParam) {
        match &self.inline {
            Some(s) => {
                s.notify(ServerNotification::ProgressNotification(
                    ProgressNotification::new(p),
                ));
            }
            None => {
                let _ = self.link.notify_progress(p).await;
            }
        }
    }

    async fn notify_logging_message(&self, p: LoggingMessageNotificationParam) {
        if !self.logs.allows(p.level) {
            return;
        }
        match &self.inline {
            Some(s) => {
                s.notify(ServerNotification::LoggingMessageNotification(
                    LoggingMessageNotification::new(p),
                ));
            }
            None => {
                let _ = self.link.notify_logging_message(p).await;
            }
        }
    }
}

pub struct RelayState {
    upstream: String,
    per_user: bool,
    seq: AtomicU64,
    in_flight: Mutex<Vec<InFlight>>,
    /// The requests sent on the connection and not yet answered (nor
    /// cancelled), as the transport saw them ([`Counted`]), with when they
    /// were sent: every request, including those the gateway does not track
    /// in `in_flight` (lists, pings). One older than `stale_after` (the
    /// connection's request timeout: nobody waits for its answer any more)
    /// is forgotten.
    outstanding: Mutex<HashMap<RequestId, std::time::Instant>>,
    stale_after: Duration,
    progress: Mutex<HashMap<ProgressToken, (Downstream, ProgressToken)>>,
    /// The downstream sessions that sent a request through the connection
    /// (told of list changes, and of log messages on a per-user one).
    listeners: Mutex<SessionLinks<u64>>,
    /// The sessions subscribed to a resource, by URI and session.
    subscriptions: Mutex<SessionLinks<(String, u64)>>,
    /// Held while a request is sent upstream and recorded
    /// ([`RelayState::hold_sending`]).
    send_gate: tokio::sync::Mutex<()>,
    /// Progress and log notifications received from the upstream (counted
    /// by [`Counted`] as they arrive, in order with the responses) and
    /// relayed (counted when their handler is done), for
    /// [`RelayState::settle`].
    received: AtomicU64,
    relayed: AtomicU64,
    relayed_changed: tokio::sync::Notify,
    /// The listen streams told of list changes and resource updates, and
    /// the connection as they know it.
    listen: Option<(std::sync::Arc<ListenHub>, Source)>,
    /// The connection's cached tool list (`super::upstream::Conn::tools`),
    /// forgotten when the upstream says its tools changed.
    tools_cache: Option<std::sync::Arc<Mutex<Option<Vec<rmcp::model::Tool>>>>>,
}

/// Counts a notification as relayed when dropped (whatever became of it).
struct Relayed<'a>(&'a RelayState);

impl Drop for Relayed<'_> {
    fn drop(&mut self) {
        self.0.relayed.fetch_add(1, Ordering::SeqCst);
        self.0.relayed_changed.notify_waiters();
    }
}

/// How long [`RelayState::settle`] waits at most. It returns as soon as
/// the handlers have caught up (microseconds, normally); the limit only
/// matters for a notification whose handler never runs, and is generous
/// for a loaded machine. (A last progress notification that went missing
/// under load was once blamed on this limit; the cause was the inline
/// response stream, which dropped a message sent in the poll where the
/// result became ready: `crate::mcp::inline::reply`.)
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// Turns a failure talking to a peer into a JSON-RPC error.
pub fn service_error(upstream: &str, e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        ServiceError::Timeout { timeout } => McpError::internal_error(
            format!(
                "upstream {upstream} did not answer within {} s",
                timeout.as_secs()
            ),
            None,
        ),
        other => McpError::internal_error(format!("upstream {upstream} failed: {other}"), None),
    }
}

/// Aborts a task when dropped (the upstream gave up on its request).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends a request of the upstream on to the downstream client, as part of
/// the downstream request `d.request`.
///
/// rmcp marks a request sent from inside a request handler with that
/// handler's request id (a task-local, SEP-2260), and its Streamable HTTP
/// server sends the request on the response stream of the request with that
/// id. Inside a [`RelayHandler`] method that id is the upstream's request id,
/// which means nothing in the downstream session: the request would go to
/// the standalone GET stream (a client without one never sees it, and the
/// call hangs until `request_timeout`) or to the stream of an unrelated
/// request that happens to have the same id. In a task of its own the
/// task-local is unset, so the marker set here, the downstream request's id,
/// is the one the transport sees.
pub(crate) async fn ask_downstream(
    d: &Downstream,
    mut request: ServerRequest,
    hint: Option<String>,
) -> Result<ClientResult, McpError> {
    if let Some(asker) = &d.input {
        return asker.ask(request, hint.as_deref()).await;
    }
    if let Some(s) = &d.inline {
        return s.ask(request).await;
    }
    if let Some(id) = &d.request {
        request
            .extensions_mut()
            .insert(OriginatingRequestId(id.clone()));
    }
    let link = d.link.clone();
    let task = tokio::spawn(async move { link.send_request(request).await });
    let _abort = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(r) => r.map_err(|e| service_error("client", e)),
        Err(e) => Err(McpError::internal_error(
            format!("relaying a request to the client failed: {e}"),
            None,
        )),
    }
}

/// The `inputRequests` key an upstream suggests for its request
/// ([`super::input::INPUT_KEY_META`]), in the request's `_meta` (in its
/// params, or where rmcp put it: the context).
fn input_key<P: serde::Serialize>(
    params: Option<&P>,
    context: &RequestContext<RoleClient>,
) -> Option<String> {
    let from_params = params
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|v| {
            v.get("_meta")?
                .get(super::input::INPUT_KEY_META)?
                .as_str()
                .map(str::to_string)
        });
    from_params.or_else(|| {
        context
            .meta
            .get(super::input::INPUT_KEY_META)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
}

fn unexpected(what: &str, reply: ClientResult) -> McpError {
    McpError::internal_error(
        format!("the client answered {what} with an unexpected result: {reply:?}"),
        None,
    )
}

impl RelayState {
    /// `stale_after`: the connection's request timeout.
    pub fn new(upstream: &str, per_user: bool, stale_after: Duration) -> Self {
        Self {
            upstream: upstream.to_string(),
            per_user,
            seq: AtomicU64::new(0),
            in_flight: Mutex::default(),
            outstanding: Mutex::default(),
            stale_after,
            progress: Mutex::default(),
            listeners: Mutex::default(),
            subscriptions: Mutex::default(),
            send_gate: tokio::sync::Mutex::new(()),
            received: AtomicU64::new(0),
            relayed: AtomicU64::new(0),
            relayed_changed: tokio::sync::Notify::new(),
            listen: None,
            tools_cache: None,
        }
    }

    /// Forget `cache` when the upstream's tools change.
    pub fn with_tools_cache(
        mut self,
        cache: std::sync::Arc<Mutex<Option<Vec<rmcp::model::Tool>>>>,
    ) -> Self {
        self.tools_cache = Some(cache);
        self
    }

    /// Tells the listen streams of `hub` what this connection (`source`)
    /// sends.
    pub fn with_listen(mut self, hub: std::sync::Arc<ListenHub>, source: Source) -> Self {
        self.listen = Some((hub, source));
        self
    }

    fn publish(&self, event: Event) {
        if let Some((hub, source)) = &self.listen {
            hub.publish(source, event);
        }
    }

    /// Whether a downstream session subscribed to `uri` through this
    /// connection.
    pub fn has_subscribers(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .map(|m| !m.select(|(u, _)| u == uri).is_empty())
            .unwrap_or(false)
    }

    /// Hold this while sending a request upstream and recording it
    /// ([`Self::sent`]): the upstream may report progress, or ask the
    /// client, as soon as it has the request, and [`RelayHandler`] waits
    /// for the guard before it looks the request up.
    pub async fn hold_sending(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.send_gate.lock().await
    }

    /// Call when an upstream response arrived, before [`Self::end`] and
    /// [`Self::unmap_progress`]: waits until the progress and log
    /// notifications the upstream sent before its response have been
    /// relayed. rmcp receives messages in order but handles each
    /// notification in a task of its own, and the task waiting for the
    /// response may well run first (tokio's LIFO slot): the relay would then
    /// find the request ended (a log message dropped, the last progress
    /// notification lost or sent after the response). Everything received
    /// until now has had its handler started, so waiting for the counts to
    /// meet is enough; [`SETTLE_LIMIT`] bounds the wait.
    pub async fn settle(&self) {
        let target = self.received.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            let changed = self.relayed_changed.notified();
            if self.relayed.load(Ordering::SeqCst) >= target {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                // A notification that never reached its handler must not
                // make every later call wait: count it as relayed.
                tracing::debug!(upstream = %self.upstream, "relayed notifications did not catch up");
                self.relayed.fetch_max(target, Ordering::SeqCst);
                return;
            }
        }
    }

    /// Records a request in flight, made by the downstream session `d` (or
    /// by no client session: `None`); returns its ticket.
    pub fn begin(&self, d: Option<&Downstream>) -> u64 {
        let ticket = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.in_flight.lock() {
            v.push(InFlight {
                ticket,
                downstream: d.cloned(),
                upstream: None,
            });
        }
        if let Some(d) = d.filter(|d| !d.per_request)
            && let Ok(mut l) = self.listeners.lock()
        {
            l.insert(d.session, d.link.clone());
        }
        ticket
    }

    /// Records the id of the request sent for `ticket`.
    pub fn sent(&self, ticket: u64, id: RequestId) {
        if let Ok(mut v) = self.in_flight.lock()
            && let Some(f) = v.iter_mut().find(|f| f.ticket == ticket)
        {
            f.upstream = Some(id);
        }
    }

    pub fn end(&self, ticket: u64) {
        if let Ok(mut v) = self.in_flight.lock() {
            v.retain(|f| f.ticket != ticket);
        }
    }

    /// The request `id` is being sent (rmcp's, seen by `Counted`; or a
    /// lane call's, `crate::gateway::stdio::lane`).
    pub(in crate::gateway) fn sending(&self, id: &RequestId) {
        if let Ok(mut o) = self.outstanding.lock() {
            if o.len() >= 64 {
                let stale = self.stale_after;
                o.retain(|_, at| at.elapsed() < stale);
            }
            o.insert(id.clone(), std::time::Instant::now());
        }
    }

    /// The request `id` was answered, cancelled or given up on.
    pub fn answered(&self, id: &RequestId) {
        if let Ok(mut o) = self.outstanding.lock() {
            o.remove(id);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// The downstream session a request (or, with `answered_too`, a log
    /// message) of the upstream belongs to. See the module documentation
    /// for the rules. A request can only belong to a call not yet answered;
    /// a notification may also belong to a call whose answer has arrived
    /// but is still being settled (rmcp handles notifications in tasks of
    /// their own, which may run after the answer is received; the call ends
    /// only once they have run, see [`Self::settle`]).
    pub fn origin(&self, answered_too: bool) -> Result<Downstream, NoOrigin> {
        let in_flight = self.in_flight.lock().map_err(|_| NoOrigin::Idle)?;
        let outstanding = self.outstanding.lock().map_err(|_| NoOrigin::Idle)?;
        // The calls the upstream may be serving: sent and (for a request)
        // not answered.
        let live: Vec<&InFlight> = in_flight
            .iter()
            .filter(|f| {
                f.upstream
                    .as_ref()
                    .is_some_and(|id| answered_too || outstanding.contains_key(id))
            })
            .collect();
        let last = live.last().ok_or(NoOrigin::Idle)?;
        if !self.per_user {
            // Something mcpgate sent that no tracked call accounts for (a
            // list, a ping) may be what the upstream is serving.
            let untracked = outstanding.iter().any(|(id, at)| {
                at.elapsed() < self.stale_after
                    && !in_flight.iter().any(|f| f.upstream.as_ref() == Some(id))
            });
            if untracked {
                return Err(NoOrigin::Ambiguous);
            }
            let mut parties = live
                .iter()
                .map(|f| f.downstream.as_ref().map(Downstream::party));
            let first = parties.next().flatten();
            if parties.any(|s| s.is_none() || s != first) {
                return Err(NoOrigin::Ambiguous);
            }
        }
        last.downstream.clone().ok_or(NoOrigin::NoClient)
    }

    /// [`Self::origin`], logging and turning a failure into the JSON-RPC
    /// error the upstream gets (`-32602`, as SEP-2260 has clients answer a
    /// request associated with no request of theirs).
    fn origin_for(&self, what: &str) -> Result<Downstream, McpError> {
        self.origin(false).map_err(|why| {
            tracing::warn!(
                event = why.event(),
                upstream = %self.upstream,
                request = what,
                "an upstream request cannot be related to the client request that caused it; refused"
            );
            McpError::invalid_params(
                format!(
                    "mcpgate does not relay this {what} request of upstream {}: {}",
                    self.upstream,
                    why.describe()
                ),
                None,
            )
        })
    }

    pub fn map_progress(
        &self,
        upstream_token: ProgressToken,
        d: Downstream,
        downstream_token: ProgressToken,
    ) {
        if let Ok(mut m) = self.progress.lock() {
            m.insert(upstream_token, (d, downstream_token));
        }
    }

    pub fn unmap_progress(&self, upstream_token: &ProgressToken) {
        if let Ok(mut m) = self.progress.lock() {
            m.remove(upstream_token);
        }
    }

    pub fn subscribe(&self, uri: &str, d: &Downstream) {
        if let Ok(mut m) = self.subscriptions.lock() {
            m.insert((uri.to_string(), d.session), d.link.clone());
        }
    }

    pub fn unsubscribe(&self, uri: &str, session: u64) {
        if let Ok(mut m) = self.subscriptions.lock() {
            m.remove(&(uri.to_string(), session));
        }
    }

    fn listeners(&self) -> Vec<(u64, ClientLink)> {
        self.listeners
            .lock()
            .map(|l| l.select(|_| true))
            .unwrap_or_default()
    }

    /// Number of downstream sessions held as listeners (ended ones
    /// included until they are pruned: `links.rs`).
    pub fn listener_count(&self) -> usize {
        self.listeners.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Number of resource subscriptions held (see [`Self::listener_count`]).
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn forget_listener(&self, session: u64) {
        if let Ok(mut l) = self.listeners.lock() {
            l.remove(&session);
        }
    }
}

#[cfg(test)]
mod tests;
