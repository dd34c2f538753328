//! The client side of an upstream connection: what mcpgate does when an
//! upstream sends a request or notification.
//!
//! - `sampling/createMessage`, `elicitation/create`, `roots/list`: asked of
//!   the downstream session whose request is in flight on this connection
//!   (the most recent one), and the answer goes back up.
//! - progress: rmcp gives every request it sends its own progress token;
//!   [`RelayState::map_progress`] maps it back to the downstream session and
//!   the token that session chose.
//! - list changes and resource updates: to the sessions that used (or
//!   subscribed through) this connection. Log messages: to the session in
//!   flight, or, for a per-user connection, to that user's sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::{
    ClientCapabilities, ClientInfo, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, Implementation, ListRootsResult, LoggingMessageNotificationParam, ProgressNotificationParam,
    ProgressToken, ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext, ServiceError};
use rmcp::{ClientHandler, ErrorData as McpError, Peer, RoleClient, RoleServer};

/// A downstream MCP session (one per connected client session).
#[derive(Clone)]
pub struct Downstream {
    pub session: u64,
    pub peer: Peer<RoleServer>,
}

pub struct RelayState {
    upstream: String,
    per_user: bool,
    seq: AtomicU64,
    in_flight: Mutex<Vec<(u64, Downstream)>>,
    progress: Mutex<HashMap<ProgressToken, (Downstream, ProgressToken)>>,
    listeners: Mutex<HashMap<u64, Peer<RoleServer>>>,
    subscriptions: Mutex<HashMap<String, HashMap<u64, Peer<RoleServer>>>>,
}

/// Turns a failure talking to a peer into a JSON-RPC error.
pub fn service_error(upstream: &str, e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        ServiceError::Timeout { timeout } => McpError::internal_error(
            format!("upstream {upstream} did not answer within {} s", timeout.as_secs()),
            None,
        ),
        other => McpError::internal_error(format!("upstream {upstream} failed: {other}"), None),
    }
}

impl RelayState {
    pub fn new(upstream: &str, per_user: bool) -> Self {
        Self {
            upstream: upstream.to_string(),
            per_user,
            seq: AtomicU64::new(0),
            in_flight: Mutex::default(),
            progress: Mutex::default(),
            listeners: Mutex::default(),
            subscriptions: Mutex::default(),
        }
    }

    /// Records a downstream request in flight; returns its ticket.
    pub fn begin(&self, d: &Downstream) -> u64 {
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.in_flight.lock() {
            v.push((id, d.clone()));
        }
        if let Ok(mut l) = self.listeners.lock() {
            l.insert(d.session, d.peer.clone());
        }
        id
    }

    pub fn end(&self, ticket: u64) {
        if let Ok(mut v) = self.in_flight.lock() {
            v.retain(|(id, _)| *id != ticket);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map(|v| v.len()).unwrap_or(0)
    }

    pub fn map_progress(&self, upstream_token: ProgressToken, d: Downstream, downstream_token: ProgressToken) {
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
            m.entry(uri.to_string()).or_default().insert(d.session, d.peer.clone());
        }
    }

    pub fn unsubscribe(&self, uri: &str, session: u64) {
        if let Ok(mut m) = self.subscriptions.lock()
            && let Some(s) = m.get_mut(uri)
        {
            s.remove(&session);
        }
    }

    fn current(&self) -> Option<Downstream> {
        self.in_flight.lock().ok()?.last().map(|(_, d)| d.clone())
    }

    fn listeners(&self) -> Vec<(u64, Peer<RoleServer>)> {
        self.listeners
            .lock()
            .map(|l| l.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }

    fn forget_listener(&self, session: u64) {
        if let Ok(mut l) = self.listeners.lock() {
            l.remove(&session);
        }
    }

    fn no_session(&self, what: &str) -> McpError {
        McpError::internal_error(
            format!("upstream {} asked for {what}, but no client request is in flight to ask", self.upstream),
            None,
        )
    }
}

#[derive(Clone)]
pub struct RelayHandler {
    pub state: std::sync::Arc<RelayState>,
}

impl ClientHandler for RelayHandler {
    fn get_info(&self) -> ClientInfo {
        let caps = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        let mut info = ClientInfo::new(caps, Implementation::new("mcpgate", env!("CARGO_PKG_VERSION")));
        // The newest revision with an initialize handshake: on 2026-07-28
        // sessions servers may not send sampling, elicitation or roots
        // requests, which the gateway relays.
        info.protocol_version = rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE;
        info
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let d = self.state.current().ok_or_else(|| self.state.no_session("sampling"))?;
        d.peer
            .create_message(params)
            .await
            .map_err(|e| service_error("client", e))
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let d = self.state.current().ok_or_else(|| self.state.no_session("elicitation"))?;
        d.peer
            .create_elicitation(params)
            .await
            .map_err(|e| service_error("client", e))
    }

    async fn list_roots(&self, _context: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        let d = self.state.current().ok_or_else(|| self.state.no_session("roots"))?;
        d.peer.list_roots().await.map_err(|e| service_error("client", e))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        let target = self
            .state
            .progress
            .lock()
            .ok()
            .and_then(|m| m.get(&params.progress_token).cloned());
        if let Some((d, token)) = target {
            let mut p = params;
            p.progress_token = token;
            let _ = d.peer.notify_progress(p).await;
        }
    }

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _context: NotificationContext<RoleClient>) {
        if let Some(d) = self.state.current() {
            let _ = d.peer.notify_logging_message(params).await;
        } else if self.state.per_user {
            for (session, peer) in self.state.listeners() {
                if peer.notify_logging_message(params.clone()).await.is_err() {
                    self.state.forget_listener(session);
                }
            }
        }
    }

    async fn on_resource_updated(&self, params: ResourceUpdatedNotificationParam, _context: NotificationContext<RoleClient>) {
        let peers: Vec<Peer<RoleServer>> = self
            .state
            .subscriptions
            .lock()
            .ok()
            .and_then(|m| m.get(&params.uri).map(|s| s.values().cloned().collect()))
            .unwrap_or_default();
        for p in peers {
            let _ = p.notify_resource_updated(params.clone()).await;
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        for (session, peer) in self.state.listeners() {
            if peer.notify_tool_list_changed().await.is_err() {
                self.state.forget_listener(session);
            }
        }
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        for (session, peer) in self.state.listeners() {
            if peer.notify_prompt_list_changed().await.is_err() {
                self.state.forget_listener(session);
            }
        }
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        for (session, peer) in self.state.listeners() {
            if peer.notify_resource_list_changed().await.is_err() {
                self.state.forget_listener(session);
            }
        }
    }
}
