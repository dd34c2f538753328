//! rmcp's in-memory session manager, with one addition: the `initialize`
//! request it hands to a new (or restored) session carries the session's id
//! ([`SessionTag`]), so that the handler can register the session for
//! inline dispatch ([`super::registry`]); and it holds each session's owner
//! ([`SessionOwners`]) for as long as rmcp holds the session. Everything
//! else is delegated.

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::mcp::sessions::SessionOwners;

/// Every this many new sessions, the owners of sessions rmcp no longer
/// holds (closed when idle, or ended by shutdown) are dropped.
const PRUNE_EVERY: u64 = 256;

/// The id of the session an `initialize` request opens, in its extensions.
#[derive(Debug, Clone)]
pub struct SessionTag(pub SessionId);

/// [`LocalSessionManager`] that tags `initialize` with the session id.
pub struct TaggedSessions {
    inner: LocalSessionManager,
    /// The user of each session (`crate::mcp::sessions`).
    pub owners: SessionOwners,
    created: AtomicU64,
}

impl TaggedSessions {
    /// Sessions idle for `idle` (no message through rmcp's session worker,
    /// see [`Self::touch`]) are closed.
    pub fn new(idle: Duration) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(idle);
        Self {
            inner,
            owners: SessionOwners::default(),
            created: AtomicU64::new(0),
        }
    }

    /// Drops the owners of sessions rmcp no longer holds.
    async fn prune_owners(&self) {
        let sessions = self.inner.sessions.read().await;
        self.owners.retain(|id| sessions.contains_key(id));
    }

    /// Resets the session's idle clock, as a request through rmcp would;
    /// `false` when the session is gone. (An event for a stream that does
    /// not exist: the worker answers it and changes nothing.)
    pub async fn touch(&self, id: &str) -> bool {
        let handle = self.inner.sessions.read().await.get(id).cloned();
        match handle {
            Some(h) => h.close_request_wise_channel(u64::MAX).await.is_ok(),
            None => false,
        }
    }
}

impl SessionManager for TaggedSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        if self.created.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune_owners().await;
        }
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        if let ClientJsonRpcMessage::Request(r) = &mut message {
            r.request.extensions_mut().insert(SessionTag(id.clone()));
        }
        self.inner.initialize_session(id, message).await
    }

    fn has_session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.inner.has_session(id)
    }

    fn close_session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close_session(id)
    }

    fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_stream(id, message)
    }

    fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.accept_message(id, message)
    }

    fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_standalone_stream(id)
    }

    fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.resume(id, last_event_id)
    }

    fn restore_session(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<RestoreOutcome<Self::Transport>, Self::Error>> + Send {
        self.inner.restore_session(id)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
