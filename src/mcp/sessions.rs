//! Binding Streamable HTTP sessions to users (MCP security best practices:
//! session hijacking). rmcp knows sessions but not users; this middleware
//! records which user's request created a session (the `Mcp-Session-Id`
//! of the `initialize` response) and answers `404` when the same session
//! id arrives with another user's token, exactly as for an unknown session,
//! so it reveals nothing.
//!
//! With several instances (`crate::cluster`, shared mode) the owner is also
//! recorded in the database before the `initialize` response leaves, so
//! that every instance refuses another user's token, and a request is
//! recorded there at most once a minute (the session's idle clock). A
//! successful `DELETE` is announced on the bus: every instance closes its
//! copy of the session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::inline::manager::TaggedSessions;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use mcpgate_core::mcp::bearer::Caller;
use rmcp::transport::streamable_http_server::session::SessionManager;
use tokio_util::sync::CancellationToken;

use super::McpState;
use crate::cluster::bus::{self as cluster_bus, Event};
use crate::cluster::{Bus, Cluster};

pub const SESSION_HEADER: &str = "mcp-session-id";
/// How often a session's use is written to the database (shared mode).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

struct Owner {
    user_id: String,
    /// When the database last heard of a request for the session.
    touched: Instant,
}

/// The user each Streamable HTTP session of this instance belongs to.
///
/// An entry lives exactly as long as the session: it is removed when the
/// session is deleted, and [`SessionOwners::retain`] (run by the session
/// manager as sessions are created, see `TaggedSessions`) drops the entries
/// of sessions rmcp no longer holds. Nothing is dropped on a timer: a
/// session kept alive without requests (by notifications the server sends)
/// keeps its owner. A session whose owner is unknown is refused
/// ([`bind_to_user`] fails closed).
#[derive(Default)]
pub struct SessionOwners {
    map: Mutex<HashMap<String, Owner>>,
}

impl SessionOwners {
    /// The owner of a session; and whether the database should hear of
    /// this request (shared mode: at most once per [`TOUCH_EVERY`]).
    fn owner(&self, session: &str) -> Option<(String, bool)> {
        let mut map = self.map.lock().ok()?;
        let entry = map.get_mut(session)?;
        let touch = entry.touched.elapsed() >= TOUCH_EVERY;
        if touch {
            entry.touched = Instant::now();
        }
        Some((entry.user_id.clone(), touch))
    }

    fn record(&self, session: &str, user_id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.entry(session.to_string()).or_insert_with(|| Owner {
                user_id: user_id.to_string(),
                touched: Instant::now(),
            });
        }
    }

    fn forget(&self, session: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(session);
        }
    }

    /// Keeps the owners of the sessions for which `alive` holds.
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|id, _| alive(id));
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

fn unavailable() -> Response {
    let mut r = Response::new(axum::body::Body::from(
        "Service Unavailable: the session could not be checked; try again",
    ));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// The owner of a session this instance has not seen, from the database
/// (shared mode only). `Err` when the database failed.
async fn owner_from_store(mcp: &McpState, session: &str) -> Result<Option<String>, ()> {
    let cluster = &mcp.cluster;
    if !cluster.shared() {
        return Ok(None);
    }
    match cluster.store.mcp_session(session).await {
        Ok(rec) => {
            let owner = rec.and_then(|r| r.user_id);
            if let Some(o) = &owner {
                mcp.session_manager.owners.record(session, o);
            }
            Ok(owner)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read a session's owner");
            Err(())
        }
    }
}

pub async fn bind_to_user(State(mcp): State<Arc<McpState>>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cluster = mcp.cluster.clone();
    if let Some(s) = &session {
        let owner = match mcp.session_manager.owners.owner(s) {
            Some((owner, touch)) => {
                if touch && cluster.shared() {
                    touch_session(&cluster, s).await;
                }
                Some(owner)
            }
            None => match owner_from_store(&mcp, s).await {
                Ok(owner) => {
                    if owner.is_some() {
                        touch_session(&cluster, s).await;
                    }
                    owner
                }
                Err(()) => return unavailable(),
            },
        };
        match owner {
            Some(owner) if owner == caller.owner() => {}
            Some(_) => {
                tracing::warn!(event = "mcp.session_user_mismatch", caller = ?caller.label(), "a session id was presented with another user's or service's token");
                return not_found();
            }
            // Fail closed: a session whose owner is unknown is served to
            // nobody (it is unknown to rmcp as well, or its owner was lost).
            None => return not_found(),
        }
    }
    let is_delete = req.method() == Method::DELETE;
    let mut resp = super::inline::dispatch(&mcp, req, next).await;
    if let Some(created) = resp
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    {
        mcp.session_manager.owners.record(&created, &caller.owner());
        if cluster.shared()
            && session.as_deref() != Some(created.as_str())
            && let Err(e) = cluster
                .store
                .bind_mcp_session(&created, &caller.owner(), cluster.clock.now())
                .await
        {
            // Other instances will not restore it; this one serves it.
            tracing::error!(error = %e, "cannot record a session's owner");
        }
    }
    if is_delete
        && resp.status().is_success()
        && let Some(s) = &session
    {
        mcp.session_manager.owners.forget(s);
        if cluster.shared() {
            if let Err(e) = cluster.store.delete_mcp_session(s).await {
                tracing::error!(error = %e, "cannot delete a session");
            }
            if let Err(e) = cluster
                .bus
                .publish(Event::McpSessionClosed(s.clone()))
                .await
            {
                tracing::error!(error = %e, "cannot tell the other instances about a closed session");
            }
        }
        // rmcp answers 202; the session is gone at once, and some clients
        // (the Python SDK) accept only 200 or 204 here.
        if resp.status() == StatusCode::ACCEPTED {
            *resp.status_mut() = StatusCode::OK;
        }
    }
    resp
}

async fn touch_session(cluster: &Cluster, session: &str) {
    if let Err(e) = cluster
        .store
        .touch_mcp_session(session, cluster.clock.now())
        .await
    {
        tracing::warn!(error = %e, "cannot record a session's use");
    }
}

/// Closes this instance's copy of sessions deleted on another instance,
/// until `cancel`.
pub fn follow_closures(bus: Arc<dyn Bus>, manager: Arc<TaggedSessions>, cancel: CancellationToken) {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = cluster_bus::next(&mut rx) => e,
            };
            match event {
                Some(Event::McpSessionClosed(id)) => {
                    manager.owners.forget(&id);
                    let id: rmcp::transport::streamable_http_server::session::SessionId = id.into();
                    if let Err(e) = manager.close_session(&id).await {
                        tracing::debug!(error = %e, "closing a session deleted elsewhere");
                    }
                }
                Some(_) => {}
                None => return,
            }
        }
    });
}
