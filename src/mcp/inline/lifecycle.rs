//! A Streamable HTTP session's life (MCP 2025-03-26 to 2025-11-25,
//! *Transports*, "Session Management"): opened by `initialize` ([`open`]),
//! restored on another instance from the database ([`find`], shared mode),
//! read with `GET` ([`stream`]), ended by `DELETE` ([`delete`]) or when
//! unused for the idle timeout (`super::registry::InlineSessions::sweep`).
//!
//! What the client sees is what rmcp's session transport showed it: the
//! `initialize` answer is a `text/event-stream` (a priming event, then the
//! result) carrying `Mcp-Session-Id`; `GET` opens the standalone stream
//! (a priming event first, SEP-1699), resumable with `Last-Event-ID`
//! (`crate::mcp::standalone`); `DELETE` is answered `202` (turned into
//! `200` by `crate::mcp::sessions`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mcpgate_core::crypto::random_hex;
use rmcp::model::{
    ClientRequest, ErrorData, GetExtensions, GetMeta, InitializeRequest, InitializeRequestParams,
    InitializeResult, RequestId, RequestMetaObject, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{RequestContext, Service};
use rmcp::transport::streamable_http_server::session::store::SessionState;

use super::registry::InlineSession;
use crate::mcp::McpState;
use crate::mcp::client_link::{ClientLink, StreamLink};
use crate::mcp::sessions::SESSION_HEADER;
use crate::mcp::standalone::Attached;

/// The reconnection delay event streams suggest (SEP-1699), as rmcp's.
const RETRY: Duration = Duration::from_secs(3);

/// A session opened or restored: its handler has answered `initialize`.
struct Opened {
    session: Arc<InlineSession>,
    result: InitializeResult,
}

/// Serves `initialize` (`id`, `request`) of a POST without a session: a
/// new session, its id in `Mcp-Session-Id`. In shared mode the client's
/// `initialize` is stored first, so that another instance can restore the
/// session.
pub async fn open(mcp: &McpState, id: RequestId, request: ClientRequest, parts: Parts) -> Response {
    let params = match &request {
        ClientRequest::InitializeRequest(r) => r.params.clone(),
        _ => {
            return answer(
                ServerJsonRpcMessage::error(not_initialize(), Some(id)),
                None,
            );
        }
    };
    let opened = match initialize(mcp, id.clone(), request, parts).await {
        Ok(o) => o,
        Err(error) => return answer(ServerJsonRpcMessage::error(error, Some(id)), None),
    };
    let session_id: Arc<str> = random_hex::<16>().into();
    if mcp.cluster.shared() && !store_state(mcp, &session_id, params).await {
        opened.session.close();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the session could not be recorded; try again",
        )
            .into_response();
    }
    mcp.inline.insert(session_id.clone(), opened.session);
    let message = ServerJsonRpcMessage::response(ServerResult::InitializeResult(opened.result), id);
    answer(message, Some(&session_id))
}

fn not_initialize() -> ErrorData {
    ErrorData::invalid_request("not an initialize request", None)
}

/// Runs the handler's `initialize` for a new session (or one being
/// restored), and makes the session.
async fn initialize(
    mcp: &McpState,
    id: RequestId,
    mut request: ClientRequest,
    parts: Parts,
) -> Result<Opened, ErrorData> {
    if !matches!(request, ClientRequest::InitializeRequest(_)) {
        return Err(not_initialize());
    }
    let handler = mcp.stateless.handler(mcp);
    let stream = Arc::new(StreamLink::standalone());
    let link = ClientLink::from(stream.clone());
    let ct = mcp.cancel.child_token();
    // The initialize itself runs with a peer carrying no client
    // information: the handler records the client's on the link.
    let mut context = RequestContext::new(id, mcp.stateless.peer(mcp));
    context.ct = ct.child_token();
    context.meta = std::mem::replace(request.get_meta_mut(), RequestMetaObject::new());
    context.extensions = std::mem::take(request.extensions_mut());
    context.extensions.insert(parts);
    context.extensions.insert(link.clone());
    let result = match handler.handle_request(request, context).await {
        Ok(ServerResult::InitializeResult(r)) => r,
        Ok(_) => {
            return Err(ErrorData::internal_error(
                "initialize gave no InitializeResult",
                None,
            ));
        }
        Err(e) => return Err(e),
    };
    let peer = crate::mcp::peers::after_initialize(mcp, &link, &result)
        .unwrap_or_else(|| mcp.stateless.peer(mcp));
    let session = Arc::new(InlineSession::new(handler, peer, stream, ct));
    Ok(Opened { session, result })
}

async fn store_state(mcp: &McpState, session_id: &str, params: InitializeRequestParams) -> bool {
    let state = SessionState::new(params);
    let json = match serde_json::to_string(&state) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a session's initialize");
            return false;
        }
    };
    let c = &mcp.cluster;
    match c
        .store
        .save_mcp_session_state(session_id, &json, c.clock.now())
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot record a session");
            false
        }
    }
}

/// The session `id` of this instance, or (shared mode) restored from the
/// database: its stored `initialize` replayed through a new handler, as
/// rmcp restored sessions. A session is restorable until it has been idle
/// (no request on any instance) for the idle timeout. The owner was
/// checked already (`crate::mcp::sessions::bind_to_user`).
pub async fn find(mcp: &McpState, id: &str, parts: &Parts) -> Option<Arc<InlineSession>> {
    if let Some(s) = mcp.inline.get(id) {
        return Some(s);
    }
    let c = &mcp.cluster;
    if !c.shared() {
        return None;
    }
    let rec = match c.store.mcp_session(id).await {
        Ok(r) => r?,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a session to restore");
            return None;
        }
    };
    let idle = crate::config::secs(mcp.session_idle);
    if rec.user_id.is_none() || rec.seen_at < c.clock.now() - idle {
        return None;
    }
    let state: SessionState = match serde_json::from_str(rec.state.as_deref()?) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "a stored session does not parse");
            return None;
        }
    };
    let request = ClientRequest::InitializeRequest(InitializeRequest::new(state.initialize_params));
    match initialize(mcp, RequestId::Number(0), request, parts.clone()).await {
        Ok(opened) => {
            tracing::debug!("session restored from the database");
            Some(mcp.inline.insert(id.into(), opened.session))
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "a stored session's initialize failed");
            None
        }
    }
}

/// `GET`: the session's standalone stream. A `Last-Event-ID` that is not
/// one of its event ids gets an empty stream that ends at once, as rmcp
/// answers it (an error would make an event source retry it forever).
pub fn stream(mcp: &McpState, session: &InlineSession, headers: &HeaderMap) -> Response {
    session.touch();
    let last = match headers.get("last-event-id") {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => {
                return crate::mcp::sse::sse_response(
                    futures::stream::empty::<Result<Event, Infallible>>(),
                    mcp.keep_alive,
                );
            }
        },
    };
    let Some(standalone) = session.standalone() else {
        return gone();
    };
    let (events, after) = match standalone.attach(last) {
        Attached::Closed => return gone(),
        Attached::Primary(rx, after) => (rx.left_stream(), after),
        Attached::Shadow => (futures::stream::pending().right_stream(), 0),
    };
    let priming = Event::default().id(after.to_string()).retry(RETRY).data("");
    let events = futures::stream::once(async move { Ok::<_, Infallible>(priming) })
        .chain(events.map(|(id, json)| Ok(Event::default().id(id.to_string()).data(&*json))))
        .take_until(session.closed());
    crate::mcp::sse::sse_response(events, mcp.keep_alive)
}

/// `DELETE`: the session ends (its requests are cancelled, its stream
/// ends); `crate::mcp::sessions` then forgets it everywhere.
pub fn delete(mcp: &McpState, id: &str) -> Response {
    mcp.inline.close(id);
    StatusCode::ACCEPTED.into_response()
}

/// The event a stream starts with (SEP-1699): no data, the id to resume
/// from, the reconnection delay.
fn priming(id: &str) -> Event {
    Event::default().id(id).retry(RETRY).data("")
}

/// rmcp's answer for a session that is gone.
fn gone() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

/// `initialize`'s answer as rmcp gave it: an event stream with a priming
/// event, then the message; with the new session's id.
fn answer(message: ServerJsonRpcMessage, session_id: Option<&str>) -> Response {
    let data = match serde_json::to_string(&message) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize initialize's answer");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let events = [priming("0"), Event::default().data(data)];
    let stream = futures::stream::iter(events.map(Ok::<_, Infallible>));
    let mut r = crate::mcp::sse::sse_response(stream, Duration::from_secs(15));
    if let Some(id) = session_id
        && let Ok(v) = HeaderValue::from_str(id)
    {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
    r
}
