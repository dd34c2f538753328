//! The legacy HTTP+SSE transport of MCP 2024-11-05, which rmcp no longer
//! ships: `GET /sse` opens an event stream whose first event is `endpoint`
//! with the relative URL `/messages/?session_id=<id>`; each
//! `POST /messages/?session_id=<id>` carries one JSON-RPC message, is
//! answered `202 Accepted`, and the server's reply arrives on the stream as
//! an `event: message`. The session ends when the stream closes.
//!
//! Sessions belong to the user whose token opened them: a POST with another
//! user's token gets 404, like an unknown session. Every POST is
//! authenticated again (the bearer gate runs on both routes).
//!
//! **Several instances** (`crate::cluster`, shared mode): the POST may land
//! on an instance other than the one holding the stream. The session is
//! then also a row in the database (its user and holding instance, kept
//! alive by that instance's heartbeat every [`HEARTBEAT`]); every POST,
//! wherever it lands, queues the message in the database with its caller
//! and wakes the holder (directly, or by a `NOTIFY` naming the session),
//! whose pump takes the session's messages in order and hands them to the
//! handler. Queuing every message, even on the holder, keeps a client's
//! messages in the order it sent them. A session whose holder stopped
//! beating for [`STALE_AFTER`] gets 404.
//!
//! - [`session`]: one session, which serves its client's messages itself
//!   (it has no rmcp service).

pub mod session;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use mcpgate_core::crypto::random_hex;
use mcpgate_core::mcp::bearer::Caller;
use rmcp::RoleServer;
use rmcp::model::{GetExtensions, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::RxJsonRpcMessage;

use self::session::Session;
use super::McpState;
use super::handler::McpHandler;
use crate::cluster::bus::{self as cluster_bus, Event as BusEvent};
use crate::cluster::caller;
use crate::store::SseSessionRecord;

/// Largest message accepted on `POST /messages/`.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How often an instance marks the SSE sessions it holds as alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A session not marked alive for this long (seconds) is gone.
pub const STALE_AFTER: i64 = 20;
/// Sessions of instances gone this long (seconds) are deleted.
const PURGE_AFTER: i64 = 300;

/// How many messages may wait for a session's event stream to take them;
/// past that, what sends one waits.
const STREAM_BUFFER: usize = 64;

#[derive(Default)]
pub struct SseSessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl SseSessions {
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    fn wake(&self, id: &str) -> bool {
        let Ok(m) = self.map.lock() else { return false };
        match m.get(id) {
            Some(s) => {
                s.wake.notify_one();
                true
            }
            None => false,
        }
    }

    fn wake_all(&self) {
        if let Ok(m) = self.map.lock() {
            for s in m.values() {
                s.wake.notify_one();
            }
        }
    }
}

/// Removes the session and ends it when the stream is dropped (the client
/// went away or the server is shutting down).
struct SessionGuard {
    id: String,
    mcp: Arc<McpState>,
    session: Arc<Session>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.mcp.sse.remove(&self.id);
        self.session.close();
        if self.mcp.cluster.shared() {
            let store = self.mcp.cluster.store.clone();
            let id = self.id.clone();
            tokio::spawn(async move {
                if let Err(e) = store.delete_sse_session(&id).await {
                    tracing::warn!(error = %e, "cannot delete a closed SSE session");
                }
            });
        }
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

fn no_session() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "no such session (it may have closed): open a new one with GET /sse",
    )
}

/// `GET /sse`: opens a session.
pub async fn connect(State(mcp): State<Arc<McpState>>, req: Request) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return json_error(StatusCode::UNAUTHORIZED, "not authenticated");
    };
    let req_path = req.uri().path().to_string();
    let id = random_hex::<16>();
    let cluster = mcp.cluster.clone();
    if cluster.shared() {
        let now = cluster.clock.now();
        let record = SseSessionRecord {
            session_id: id.clone(),
            user_id: caller.owner(),
            instance_id: cluster.instance_id.clone(),
            created_at: now,
            seen_at: now,
        };
        if let Err(e) = cluster.store.create_sse_session(&record).await {
            tracing::error!(error = %e, "cannot record an SSE session");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the session could not be opened; try again",
            );
        }
    }
    let (to_client, from_session) = mpsc::channel::<ServerJsonRpcMessage>(STREAM_BUFFER);
    let handler = McpHandler::new(mcp.tools.clone(), mcp.gateway.clone(), &mcp.server_name)
        .with_tasks(mcp.tasks.clone());
    let ct = mcp.cancel.child_token();
    let peers = Arc::downgrade(&mcp);
    let session = Session::new(
        caller.owner(),
        handler,
        mcp.stateless.peer(&mcp),
        Box::new(move |link, result| {
            let mcp = peers.upgrade()?;
            super::peers::after_initialize(&mcp, link, result)
        }),
        to_client,
        ct.clone(),
    );
    if let Ok(mut m) = mcp.sse.map.lock() {
        m.insert(id.clone(), session.clone());
    }
    if cluster.shared() {
        tokio::spawn(pump(mcp.clone(), id.clone(), session.clone()));
    }
    tracing::info!(event = "mcp.sse_session_opened", caller = ?caller.label(), "legacy SSE session opened");

    // Messages go to a path of the same resource as the stream, so that a
    // 401 on them names the resource the client connected to (RFC 9728 §3.3).
    let messages = if req_path.ends_with("/v1/ai/mcp/sse") {
        "/v1/ai/mcp/messages/"
    } else {
        "/messages/"
    };
    let endpoint = format!("{}{messages}?session_id={id}", mcp.base_path);
    let guard = SessionGuard {
        id,
        mcp: mcp.clone(),
        session,
    };
    let first = futures::stream::once(async move {
        Ok::<_, Infallible>(Event::default().event("endpoint").data(endpoint))
    });
    let messages = from_session.filter_map(|m| async move {
        match serde_json::to_string(&m) {
            Ok(json) => Some(Ok(Event::default().event("message").data(json))),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a server message");
                None
            }
        }
    });
    let stream = first
        .chain(messages)
        .take_until(ct.cancelled_owned())
        .map(move |e| {
            let _keep = &guard;
            e
        });
    sse_response(stream, mcp.keep_alive)
}

/// An event stream response: a keep-alive comment every `keep_alive` it
/// has nothing else to send, and `X-Accel-Buffering: no` so that
/// nginx-style proxies pass each event on at once. The inline replies'
/// event streams (`super::inline::reply`) are made here too.
pub(crate) fn sse_response(
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response();
    r.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    r
}

/// Hands the caller to the handler the way rmcp's Streamable HTTP transport
/// does: in the message's extensions (`handler::caller_of` reads both).
fn attach<T: Send + Sync + Clone + 'static>(msg: &mut RxJsonRpcMessage<RoleServer>, value: T) {
    match msg {
        JsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(value);
        }
        JsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(value);
        }
        _ => {}
    }
}

/// Shared mode: takes the session's queued messages, in order, whenever
/// woken, and hands them to the handler with their callers.
async fn pump(mcp: Arc<McpState>, id: String, session: Arc<Session>) {
    loop {
        tokio::select! {
            _ = session.closed() => return,
            _ = session.wake.notified() => {}
        }
        let queued = match mcp.cluster.store.take_sse_messages(&id).await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "cannot take queued SSE messages");
                continue;
            }
        };
        for m in queued {
            let (Some(caller), Ok(mut msg)) = (
                caller::from_json(&m.caller),
                serde_json::from_str::<RxJsonRpcMessage<RoleServer>>(&m.message),
            ) else {
                tracing::error!(
                    message_id = m.id,
                    "a queued SSE message does not parse; dropped"
                );
                continue;
            };
            attach(&mut msg, caller);
            if session.is_closed() {
                return;
            }
            session.take(msg).await;
        }
    }
}

/// Shared mode: wakes the pumps of this instance's sessions when messages
/// are queued elsewhere, and keeps those sessions alive in the database.
pub fn start_cluster_tasks(mcp: &Arc<McpState>) {
    let mut rx = mcp.cluster.bus.subscribe();
    let weak = Arc::downgrade(mcp);
    let cancel = mcp.cancel.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = cluster_bus::next(&mut rx) => e,
            };
            let Some(mcp) = weak.upgrade() else { return };
            match event {
                Some(BusEvent::SseMessage(id)) => {
                    mcp.sse.wake(&id);
                }
                Some(BusEvent::Resync) => mcp.sse.wake_all(),
                Some(_) => {}
                None => return,
            }
        }
    });
    let weak = Arc::downgrade(mcp);
    let cancel = mcp.cancel.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        let mut beats: u64 = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(mcp) = weak.upgrade() else { return };
            let c = &mcp.cluster;
            let now = c.clock.now();
            if let Err(e) = c.store.heartbeat_sse_sessions(&c.instance_id, now).await {
                tracing::warn!(error = %e, "SSE session heartbeat failed");
            }
            beats += 1;
            // About once a minute: forget sessions of instances gone a while
            // and Streamable HTTP sessions idle past their timeout.
            if beats.is_multiple_of(12) {
                let idle = crate::config::secs(mcp.session_idle);
                match c
                    .store
                    .purge_cluster_sessions(
                        now.saturating_sub(idle).saturating_sub(120),
                        now - PURGE_AFTER,
                    )
                    .await
                {
                    Ok(n) if n > 0 => {
                        tracing::info!(sessions = n, "expired shared sessions removed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot remove expired shared sessions"),
                }
            }
        }
    });
}

/// `POST /messages/?session_id=<id>`: one JSON-RPC message for a session.
pub async fn message(State(mcp): State<Arc<McpState>>, req: Request) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return json_error(StatusCode::UNAUTHORIZED, "not authenticated");
    };
    let session_id = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "session_id" || k == "sessionId")
            .map(|(_, v)| v.into_owned())
    });
    let Some(session_id) = session_id else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "session_id is missing: use the URL from the endpoint event",
        );
    };
    if session_id.len() != 32 || !session_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "session_id is malformed: use the URL from the endpoint event",
        );
    }
    let mismatch = || {
        tracing::warn!(event = "mcp.session_user_mismatch", caller = ?caller.label(), "a legacy SSE session id was presented with another user's or service's token");
    };
    let local = mcp
        .sse
        .map
        .lock()
        .ok()
        .and_then(|m| m.get(&session_id).cloned());
    let local = match local {
        Some(session) if session.user_id != caller.owner() => {
            mismatch();
            return no_session();
        }
        Some(session) => Some(session),
        None if mcp.cluster.shared() => {
            let c = &mcp.cluster;
            match c.store.sse_session(&session_id).await {
                Ok(Some(s)) if s.user_id != caller.owner() => {
                    mismatch();
                    return no_session();
                }
                Ok(Some(s)) if s.seen_at >= c.clock.now() - STALE_AFTER => None,
                Ok(_) => return no_session(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot look up an SSE session");
                    return json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the session could not be checked; try again",
                    );
                }
            }
        }
        None => return no_session(),
    };
    let (parts, body) = req.into_parts();
    let bytes = match super::message::read_body(Body::new(body), MAX_MESSAGE_BYTES).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(mut msg) = serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(&bytes) else {
        // JSON-RPC's parse error (-32700) or invalid request (-32600),
        // as on the Streamable HTTP endpoint.
        return super::message::malformed(&bytes);
    };
    // Step-up: the 403 answers this POST (its reply would otherwise go to
    // the event stream, where no client looks for a challenge).
    if let Some(rejected) = super::scope_gate::reject_message(&mcp, &caller, &bytes, true).await {
        return rejected;
    }
    if mcp.cluster.shared() {
        return queue(&mcp, &session_id, &caller, &bytes).await;
    }
    attach(&mut msg, parts);
    let Some(session) = local else {
        return no_session();
    };
    if session.link().is_closed() {
        return json_error(
            StatusCode::NOT_FOUND,
            "the session has closed: open a new one with GET /sse",
        );
    }
    session.take(msg).await;
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

/// Shared mode: queues the message for the session's holder and wakes it.
async fn queue(mcp: &McpState, session_id: &str, caller: &Caller, body: &[u8]) -> Response {
    let c = &mcp.cluster;
    let Ok(text) = std::str::from_utf8(body) else {
        return json_error(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    match c
        .store
        .push_sse_message(session_id, &caller::to_json(caller), text, c.clock.now())
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return no_session(),
        Err(e) => {
            tracing::error!(error = %e, "cannot queue an SSE message");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the message could not be delivered; try again",
            );
        }
    }
    if !mcp.sse.wake(session_id)
        && let Err(e) = c
            .bus
            .publish(BusEvent::SseMessage(session_id.to_string()))
            .await
    {
        // Queued: the holder takes it at its next wake-up (a later message
        // or a resync).
        tracing::error!(error = %e, "cannot notify the instance holding an SSE session");
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
