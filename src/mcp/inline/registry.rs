//! The Streamable HTTP sessions of this instance, which mcpgate serves
//! itself (no rmcp service per session, [`super`]): for each, its handler,
//! the ended peer its handler contexts get (`crate::mcp::peers`), its link
//! to the client (its standalone stream, the requests sent on it awaiting
//! answers, what the client sent at `initialize`), and its requests in
//! flight (for `notifications/cancelled`). Also the owner of every session
//! ([`SessionOwners`], `crate::mcp::sessions`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

use crate::mcp::client_link::{ClientLink, StreamLink};
use crate::mcp::handler::McpHandler;
use crate::mcp::in_flight::InFlightRequests;
use crate::mcp::sessions::SessionOwners;
use crate::mcp::standalone::Standalone;

pub struct InlineSession {
    pub handler: McpHandler,
    /// The ended peer carrying the client's `initialize`.
    pub peer: Peer<RoleServer>,
    link: Arc<StreamLink>,
    /// Its requests being served.
    pub in_flight: InFlightRequests,
    /// Cancelled when the session ends: so are its requests.
    ct: CancellationToken,
    /// Counts the session in `mcpgate_mcp_sessions` while it lives.
    _gauge: Option<crate::telemetry::metrics::GaugeGuard>,
}

impl InlineSession {
    /// A session served by `handler`, whose client `link` has had its
    /// `initialize` answered; `ct` ends it.
    pub fn new(
        handler: McpHandler,
        peer: Peer<RoleServer>,
        link: Arc<StreamLink>,
        ct: CancellationToken,
    ) -> Self {
        Self {
            handler,
            peer,
            link,
            in_flight: InFlightRequests::default(),
            ct,
            _gauge: crate::telemetry::metrics::get().map(|m| m.open_session()),
        }
    }

    /// The session's link to its client.
    pub fn link(&self) -> ClientLink {
        self.link.clone().into()
    }

    pub fn stream_link(&self) -> &StreamLink {
        &self.link
    }

    /// The session's standalone stream (what `GET` reads).
    pub fn standalone(&self) -> Option<&Standalone> {
        self.link.standalone_stream()
    }

    /// A token for one of its requests: cancelled when the session ends.
    pub fn request_token(&self) -> CancellationToken {
        self.ct.child_token()
    }

    /// Completes when the session has ended.
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.ct.clone().cancelled_owned()
    }

    pub fn is_closed(&self) -> bool {
        self.ct.is_cancelled()
    }

    /// The client used the session now (its idle clock starts again).
    pub fn touch(&self) {
        if let Some(s) = self.standalone() {
            s.touch();
        }
    }

    fn idle_for(&self) -> Duration {
        self.standalone()
            .map(Standalone::idle_for)
            .unwrap_or_default()
    }

    /// Ends the session: its requests are cancelled, its standalone stream
    /// ends, and requests awaiting the client's answer end without one.
    pub fn close(&self) {
        self.ct.cancel();
        self.link.close();
    }
}

/// This instance's sessions, by session id, and their owners.
#[derive(Default)]
pub struct InlineSessions {
    map: RwLock<HashMap<Arc<str>, Arc<InlineSession>>>,
    /// The user each session belongs to (`crate::mcp::sessions`).
    pub owners: SessionOwners,
}

impl InlineSessions {
    /// Adds a session; when one with this id is there already (two
    /// requests restored it at once), that one, and `session` is ended.
    pub fn insert(&self, id: Arc<str>, session: Arc<InlineSession>) -> Arc<InlineSession> {
        let Ok(mut m) = self.map.write() else {
            session.close();
            return session;
        };
        match m.get(&id) {
            Some(existing) if !existing.is_closed() => {
                session.close();
                existing.clone()
            }
            _ => {
                m.insert(id, session.clone());
                session
            }
        }
    }

    /// An open session.
    pub fn get(&self, id: &str) -> Option<Arc<InlineSession>> {
        let s = self.map.read().ok()?.get(id).cloned()?;
        (!s.is_closed()).then_some(s)
    }

    /// Ends a session and forgets it and its owner; `false` when there was
    /// no such session.
    pub fn close(&self, id: &str) -> bool {
        self.owners.forget(id);
        let s = self.map.write().ok().and_then(|mut m| m.remove(id));
        match s {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }

    /// Ends the sessions unused for `idle` (no message from the client and
    /// nothing sent to it, as rmcp's sessions time out) and forgets the
    /// owners of sessions no longer here (learned from the database for a
    /// session that could not be restored); returns how many ended.
    pub fn sweep(&self, idle: Duration) -> usize {
        let expired: Vec<Arc<str>> = match self.map.read() {
            Ok(m) => m
                .iter()
                .filter(|(_, s)| s.is_closed() || s.idle_for() >= idle)
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => return 0,
        };
        for id in &expired {
            self.close(id);
        }
        if let Ok(m) = self.map.read() {
            self.owners.retain(|id| m.contains_key(id));
        }
        expired.len()
    }

    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
