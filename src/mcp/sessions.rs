//! Binding Streamable HTTP sessions to users (MCP security best practices:
//! session hijacking). A session belongs to the user who opened it: this middleware
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

use super::inline::registry::InlineSessions;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::model::UnixTime;
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
    /// What the admin console shows (recorded at open; `last` and the
    /// version under the lock each request takes anyway).
    about: About,
}

/// What is known of a session besides its owner.
struct About {
    /// The client and token that opened it (`None` when this instance
    /// learned of the session from the database: shared mode).
    client_id: Option<String>,
    token_hash: Option<String>,
    /// The `MCP-Protocol-Version` its requests carry (clients send it
    /// after `initialize`; none from 2025-03-26 clients).
    protocol_version: Option<String>,
    opened_at: UnixTime,
    last: Instant,
}

/// One open Streamable HTTP session of this instance, as the admin console
/// shows it. The session id is a bearer-like secret: only its SHA-256
/// ([`handle`]) leaves this module.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// SHA-256 (hex) of the session id.
    pub handle: String,
    pub client_id: Option<String>,
    /// SHA-256 of the access token that opened it.
    pub token_hash: Option<String>,
    pub protocol_version: Option<String>,
    pub opened_at: UnixTime,
    /// Seconds since its last request.
    pub idle_secs: u64,
}

/// The handle of a session (SHA-256 of its id, hex): what the console
/// shows and posts instead of the id.
pub fn handle(session_id: &str) -> String {
    mcpgate_core::crypto::hash_secret(session_id)
}

/// Who opened a session, as recorded at open.
pub struct Opener<'a> {
    pub owner: &'a str,
    pub client_id: Option<&'a str>,
    pub token_hash: Option<&'a str>,
    pub opened_at: UnixTime,
}

/// The user each Streamable HTTP session of this instance belongs to.
///
/// An entry lives exactly as long as the session: it is removed when the
/// session ends (deleted, ended in the console or elsewhere, or idle), and
/// the sweep of idle sessions (`InlineSessions::sweep`) drops the entries
/// of sessions this instance does not hold (learned from the database for
/// a session it could not restore). A session whose owner is unknown is
/// refused ([`bind_to_user`] fails closed).
#[derive(Default)]
pub struct SessionOwners {
    map: Mutex<HashMap<String, Owner>>,
}

impl SessionOwners {
    /// The owner of a session; and whether the database should hear of
    /// this request (shared mode: at most once per [`TOUCH_EVERY`]).
    /// Also notes the request's time and, once, its `MCP-Protocol-Version`.
    fn owner(&self, session: &str, version: Option<&str>) -> Option<(String, bool)> {
        let mut map = self.map.lock().ok()?;
        let entry = map.get_mut(session)?;
        let now = Instant::now();
        let touch = now.duration_since(entry.touched) >= TOUCH_EVERY;
        if touch {
            entry.touched = now;
        }
        entry.about.last = now;
        if entry.about.protocol_version.is_none()
            && let Some(v) = version
        {
            entry.about.protocol_version = Some(v.chars().take(32).collect());
        }
        Some((entry.user_id.clone(), touch))
    }

    fn record(&self, session: &str, opener: Opener<'_>) {
        if let Ok(mut map) = self.map.lock() {
            map.entry(session.to_string()).or_insert_with(|| Owner {
                user_id: opener.owner.to_string(),
                touched: Instant::now(),
                about: About {
                    client_id: opener.client_id.map(str::to_string),
                    token_hash: opener.token_hash.map(str::to_string),
                    protocol_version: None,
                    opened_at: opener.opened_at,
                    last: Instant::now(),
                },
            });
        }
    }

    /// The open sessions of `owner` (a user id, or a service's owner), oldest
    /// first.
    pub fn of_owner(&self, owner: &str) -> Vec<SessionView> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        let mut v: Vec<SessionView> = map
            .iter()
            .filter(|(_, o)| o.user_id == owner)
            .map(|(id, o)| SessionView {
                handle: handle(id),
                client_id: o.about.client_id.clone(),
                token_hash: o.about.token_hash.clone(),
                protocol_version: o.about.protocol_version.clone(),
                opened_at: o.about.opened_at,
                idle_secs: o.about.last.elapsed().as_secs(),
            })
            .collect();
        v.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then(a.handle.cmp(&b.handle)));
        v
    }

    /// The id of `owner`'s session with this handle (another owner's is
    /// not found).
    fn find(&self, owner: &str, handle_hex: &str) -> Option<String> {
        let map = self.map.lock().ok()?;
        map.iter()
            .find(|(id, o)| o.user_id == owner && handle(id) == handle_hex)
            .map(|(id, _)| id.clone())
    }

    pub fn forget(&self, session: &str) {
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

/// Exactly the answer for an unknown session (rmcp's, and
/// `super::inline::lifecycle`'s), so that a session of
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
            let Some(rec) = rec else { return Ok(None) };
            if let Some(o) = &rec.user_id {
                mcp.inline.owners.record(
                    session,
                    Opener {
                        owner: o,
                        client_id: None,
                        token_hash: None,
                        opened_at: rec.created_at,
                    },
                );
            }
            Ok(rec.user_id)
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
        let version = req
            .headers()
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        let owner = match mcp.inline.owners.owner(s, version) {
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
            // nobody (it is unknown here as well, or its owner was lost).
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
        mcp.inline.owners.record(
            &created,
            Opener {
                owner: &caller.owner(),
                client_id: Some(caller.client_id.as_str()),
                token_hash: Some(&caller.token_hash),
                opened_at: cluster.clock.now(),
            },
        );
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
        forget_everywhere(&mcp, s).await;
        // A DELETE is answered 202; the session is gone at once, and some clients
        // (the Python SDK) accept only 200 or 204 here.
        if resp.status() == StatusCode::ACCEPTED {
            *resp.status_mut() = StatusCode::OK;
        }
    }
    resp
}

/// Forgets a closed session here and, in shared mode, in the database and
/// on the other instances (which close their copy).
async fn forget_everywhere(mcp: &McpState, session: &str) {
    mcp.inline.owners.forget(session);
    let cluster = &mcp.cluster;
    if cluster.shared() {
        if let Err(e) = cluster.store.delete_mcp_session(session).await {
            tracing::error!(error = %e, "cannot delete a session");
        }
        if let Err(e) = cluster
            .bus
            .publish(Event::McpSessionClosed(session.to_string()))
            .await
        {
            tracing::error!(error = %e, "cannot tell the other instances about a closed session");
        }
    }
}

/// Ends `owner`'s session with this [`handle`] (the admin console's "End"):
/// it closes (its GET stream ends with it), its other open streams end,
/// and a later request with its id gets `404` on every instance. `false`
/// when `owner` has no such session on this instance.
pub async fn end_session(mcp: &McpState, owner: &str, handle_hex: &str) -> bool {
    let Some(id) = mcp.inline.owners.find(owner, handle_hex) else {
        return false;
    };
    forget_everywhere(mcp, &id).await;
    mcp.streams.end_of_session(&id);
    mcp.inline.close(&id);
    true
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
pub fn follow_closures(
    bus: Arc<dyn Bus>,
    sessions: Arc<InlineSessions>,
    cancel: CancellationToken,
) {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = cluster_bus::next(&mut rx) => e,
            };
            match event {
                Some(Event::McpSessionClosed(id)) => {
                    sessions.close(&id);
                }
                Some(_) => {}
                None => return,
            }
        }
    });
}
