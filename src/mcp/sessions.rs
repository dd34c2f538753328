//! Binding Streamable HTTP sessions to users (MCP security best practices:
//! session hijacking). rmcp knows sessions but not users; this middleware
//! records which user's request created a session (the `Mcp-Session-Id`
//! of the `initialize` response) and answers `404` when the same session
//! id arrives with another user's token, exactly as for an unknown session,
//! so it reveals nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use mcpgate_core::mcp::bearer::Caller;

use super::McpState;

pub const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Default)]
pub struct SessionOwners {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl SessionOwners {
    /// The owner of a session, refreshing its last-seen time.
    fn owner(&self, session: &str) -> Option<String> {
        let mut map = self.map.lock().ok()?;
        let entry = map.get_mut(session)?;
        entry.1 = Instant::now();
        Some(entry.0.clone())
    }

    fn record(&self, session: &str, user_id: &str, idle: Duration) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() % 256 == 0 {
                map.retain(|_, (_, seen)| seen.elapsed() < idle * 2);
            }
            map.entry(session.to_string())
                .or_insert_with(|| (user_id.to_string(), Instant::now()));
        }
    }

    fn forget(&self, session: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(session);
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Exactly rmcp's answer for an unknown session, so that a session of
/// another user cannot be told apart from one that does not exist.
fn not_found() -> Response {
    let mut r = Response::new(axum::body::Body::from("Not Found: Session not found"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

pub async fn bind_to_user(
    State(mcp): State<std::sync::Arc<McpState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(s) = &session
        && let Some(owner) = mcp.session_owners.owner(s)
        && owner != caller.user_id
    {
        tracing::warn!(event = "mcp.session_user_mismatch", user = %caller.username, "a session id was presented with another user's token");
        return not_found();
    }
    let is_delete = req.method() == Method::DELETE;
    let mut resp = next.run(req).await;
    if let Some(created) = resp
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        mcp.session_owners
            .record(created, &caller.user_id, mcp.session_idle);
    }
    if is_delete
        && resp.status().is_success()
        && let Some(s) = &session
    {
        mcp.session_owners.forget(s);
        // rmcp answers 202; the session is gone at once, and some clients
        // (the Python SDK) accept only 200 or 204 here.
        if resp.status() == StatusCode::ACCEPTED {
            *resp.status_mut() = StatusCode::OK;
        }
    }
    resp
}
