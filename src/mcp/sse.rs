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
use futures::{SinkExt, Stream, StreamExt};
use mcpgate_core::crypto::random_hex;
use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::{GetExtensions, JsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::{RoleServer, ServiceExt};
use tokio_util::sync::CancellationToken;

use super::McpState;
use super::handler::McpHandler;

/// Largest message accepted on `POST /messages/`.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Session {
    user_id: String,
    to_server: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
}

#[derive(Default)]
pub struct SseSessions {
    map: Mutex<HashMap<String, Session>>,
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
}

/// Removes the session and stops its server when the stream is dropped
/// (the client went away or the server is shutting down).
struct SessionGuard {
    id: String,
    mcp: Arc<McpState>,
    ct: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.mcp.sse.remove(&self.id);
        self.ct.cancel();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

/// `GET /sse`: opens a session.
pub async fn connect(State(mcp): State<Arc<McpState>>, req: Request) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return json_error(StatusCode::UNAUTHORIZED, "not authenticated");
    };
    let req_path = req.uri().path().to_string();
    let id = random_hex::<16>();
    let (to_server_tx, to_server_rx) = mpsc::channel::<RxJsonRpcMessage<RoleServer>>(64);
    let (from_server_tx, from_server_rx) = mpsc::channel::<TxJsonRpcMessage<RoleServer>>(64);
    if let Ok(mut m) = mcp.sse.map.lock() {
        m.insert(
            id.clone(),
            Session {
                user_id: caller.user_id.clone(),
                to_server: to_server_tx,
            },
        );
    }
    let ct = mcp.cancel.child_token();
    let handler = McpHandler::new(mcp.tools.clone(), mcp.gateway.clone(), &mcp.server_name);
    let server_ct = ct.clone();
    let session_id = id.clone();
    tokio::spawn(async move {
        match handler
            .serve_with_ct((from_server_tx, to_server_rx), server_ct)
            .await
        {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => {
                tracing::debug!(session = %session_id, error = %e, "legacy SSE session ended before initialization")
            }
        }
    });
    tracing::info!(event = "mcp.sse_session_opened", user = %caller.username, "legacy SSE session opened");

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
        ct: ct.clone(),
    };
    let first = futures::stream::once(async move {
        Ok::<_, Infallible>(Event::default().event("endpoint").data(endpoint))
    });
    let messages = from_server_rx.filter_map(|m| async move {
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
    sse_response(stream)
}

fn sse_response(
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    r.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    r
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
    let sender = mcp.sse.map.lock().ok().and_then(|m| {
        let s = m.get(&session_id)?;
        if s.user_id != caller.user_id {
            tracing::warn!(event = "mcp.session_user_mismatch", user = %caller.username, "a legacy SSE session id was presented with another user's token");
            return None;
        }
        Some(s.to_server.clone())
    });
    let Some(mut sender) = sender else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no such session (it may have closed): open a new one with GET /sse",
        );
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(Body::new(body), MAX_MESSAGE_BYTES).await {
        Ok(b) => b,
        Err(_) => return json_error(StatusCode::PAYLOAD_TOO_LARGE, "the message is too large"),
    };
    let mut msg: RxJsonRpcMessage<RoleServer> = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a JSON-RPC message: {e}"),
            );
        }
    };
    match &mut msg {
        JsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(parts);
        }
        JsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    if sender.send(msg).await.is_err() {
        return json_error(
            StatusCode::NOT_FOUND,
            "the session has closed: open a new one with GET /sse",
        );
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
