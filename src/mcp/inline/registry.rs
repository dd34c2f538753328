//! The Streamable HTTP sessions of this instance that can take requests
//! inline: for each, the session's handler and rmcp `Peer` (registered by
//! the handler's `initialize`), the requests in flight (for
//! `notifications/cancelled`), and the requests mcpgate sent the client on
//! an inline response stream and awaits answers to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use rmcp::{Peer, RoleServer};

use crate::mcp::answers::Answers;
use crate::mcp::handler::McpHandler;
use crate::mcp::in_flight::InFlightRequests;

pub struct InlineSession {
    pub handler: McpHandler,
    /// The session's peer in rmcp: unrelated notifications (list changes,
    /// resource updates) reach the client's GET stream through it.
    pub peer: Peer<RoleServer>,
    ready: AtomicBool,
    /// Milliseconds since `epoch` of the last touch of rmcp's idle clock.
    touched: AtomicU64,
    epoch: Instant,
    /// Its requests being served inline.
    pub in_flight: InFlightRequests,
    /// Requests mcpgate sent the client on an inline response stream.
    pub answers: Answers,
}

impl InlineSession {
    fn new(handler: McpHandler, peer: Peer<RoleServer>) -> Self {
        Self {
            handler,
            peer,
            ready: AtomicBool::new(false),
            touched: AtomicU64::new(0),
            epoch: Instant::now(),
            in_flight: InFlightRequests::default(),
            answers: Answers::default(),
        }
    }

    /// Whether the client has sent `notifications/initialized`: requests
    /// are served inline from then on.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether rmcp's idle clock should hear of a request now (at most
    /// once per `every`).
    pub fn touch_due(&self, every: Duration) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.touched.load(Ordering::Relaxed);
        now.saturating_sub(last) >= every.as_millis() as u64
            && self
                .touched
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// This instance's inline sessions, by session id.
#[derive(Default)]
pub struct InlineSessions {
    map: RwLock<HashMap<Arc<str>, Arc<InlineSession>>>,
}

impl InlineSessions {
    /// Registers a session, to be served inline once
    /// [`Registration::ready`]. Returns the registration, whose drop
    /// removes it.
    pub fn register(
        self: &Arc<Self>,
        id: Arc<str>,
        handler: McpHandler,
        peer: Peer<RoleServer>,
    ) -> Registration {
        let session = Arc::new(InlineSession::new(handler, peer));
        if let Ok(mut m) = self.map.write() {
            m.insert(id.clone(), session.clone());
        }
        Registration {
            sessions: Arc::downgrade(self),
            id,
            session,
            _gauge: crate::telemetry::metrics::get().map(|m| m.open_session()),
        }
    }

    /// A registered session whose rmcp service is still running.
    pub fn get(&self, id: &str) -> Option<Arc<InlineSession>> {
        let s = self.map.read().ok()?.get(id).cloned()?;
        if s.peer.is_transport_closed() {
            self.remove(id);
            return None;
        }
        Some(s)
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.write() {
            m.remove(id);
        }
    }
}

/// A registered session, held by the session's handler in rmcp: when rmcp
/// drops the handler (the session closed, expired or was deleted), the
/// session leaves the registry.
pub struct Registration {
    sessions: Weak<InlineSessions>,
    id: Arc<str>,
    session: Arc<InlineSession>,
    /// Counts the session in `mcpgate_mcp_sessions` while it lives.
    _gauge: Option<crate::telemetry::metrics::GaugeGuard>,
}

impl Registration {
    /// The client sent `notifications/initialized` (as rmcp's handler
    /// sees it, also when rmcp replays it for a restored session).
    pub fn ready(&self) {
        self.session.set_ready();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(s) = self.sessions.upgrade() {
            // Only this registration's entry: a restore may have replaced it.
            if let Ok(mut m) = s.map.write()
                && m.get(&self.id)
                    .is_some_and(|e| Arc::ptr_eq(e, &self.session))
            {
                m.remove(&self.id);
            }
        }
    }
}
