//! The way to one downstream client outside the answer to one of its
//! requests: the notifications mcpgate sends a session on its own (list
//! changes, resource updates), the progress and log messages and the
//! relayed requests of a request rmcp serves, and what the client said of
//! itself at `initialize` (its capabilities: whether it takes URL-mode
//! elicitation).
//!
//! The gateway, the relay, tasks and upstream OAuth hold a session's
//! [`ClientLink`], never its rmcp `Peer`. A link is one of two things:
//!
//! - an rmcp peer, of a session rmcp runs a service for (a Streamable HTTP
//!   session rmcp made itself, which mcpgate does not let happen, and the
//!   tests' own services);
//! - a [`StreamLink`], mcpgate's own, for a session without an rmcp service
//!   (Streamable HTTP, `super::inline`; legacy SSE, `super::sse::session`):
//!   what is sent goes on the session's event stream (a legacy session's
//!   one stream, or a Streamable HTTP session's standalone stream,
//!   `super::standalone`), the client's answers come back by id
//!   (`super::answers`), and the client's `initialize` is kept in the link.
//!   Such a session's handler contexts get an ended peer other sessions
//!   may share (`super::peers`), so the handler finds the link in the
//!   request's extensions ([`of_request`]), and asks it (never the peer's
//!   service) what the client declared ([`capabilities_of`],
//!   [`version_of`]).
//!
//! Logging is deprecated by the 2026-07-28 revision (SEP-2577) but part of
//! the earlier ones the gateway serves, hence `allow(deprecated)`.

#![allow(deprecated)]

use std::sync::{Arc, RwLock};

use futures::SinkExt;
use futures::channel::mpsc;
use rmcp::model::{
    ClientCapabilities, ClientResult, InitializeRequestParams, LoggingMessageNotification,
    LoggingMessageNotificationParam, ProgressNotification, ProgressNotificationParam,
    PromptListChangedNotification, ProtocolVersion, ResourceListChangedNotification,
    ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerJsonRpcMessage,
    ServerNotification, ServerRequest, ToolListChangedNotification,
};
use rmcp::service::{RequestContext, ServiceError};
use rmcp::{Peer, RoleServer};

use super::answers::Answers;
use super::standalone::Standalone;

/// See the module documentation.
#[derive(Clone)]
pub struct ClientLink {
    to: To,
}

#[derive(Clone)]
enum To {
    /// The session's rmcp service (Streamable HTTP sessions).
    Rmcp(Peer<RoleServer>),
    /// An event stream mcpgate holds itself (legacy SSE sessions).
    Stream(Arc<StreamLink>),
}

impl std::fmt::Debug for ClientLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLink")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl From<Peer<RoleServer>> for ClientLink {
    fn from(peer: Peer<RoleServer>) -> Self {
        Self { to: To::Rmcp(peer) }
    }
}

impl From<Arc<StreamLink>> for ClientLink {
    fn from(link: Arc<StreamLink>) -> Self {
        Self {
            to: To::Stream(link),
        }
    }
}

/// The link of a request: the one its transport put in its extensions (a
/// session without an rmcp service, whose context has a shared peer that
/// reaches no one), else its rmcp peer.
pub fn of_request(context: &RequestContext<RoleServer>) -> ClientLink {
    context
        .extensions
        .get::<ClientLink>()
        .cloned()
        .unwrap_or_else(|| context.peer.clone().into())
}

/// The client capabilities a request goes by: its own (`_meta`), else
/// what its session's client declared at `initialize` (rmcp's
/// `RequestContext::client_capabilities`, which asks the peer, and then
/// the link).
pub fn capabilities_of(context: &RequestContext<RoleServer>) -> Option<ClientCapabilities> {
    context.client_capabilities().or_else(|| {
        let link = context.extensions.get::<ClientLink>()?;
        Some(link.client_info()?.capabilities.clone())
    })
}

/// The protocol version a request goes by, in the same order as
/// [`capabilities_of`].
pub fn version_of(context: &RequestContext<RoleServer>) -> Option<ProtocolVersion> {
    context.protocol_version().or_else(|| {
        let link = context.extensions.get::<ClientLink>()?;
        Some(link.client_info()?.protocol_version.clone())
    })
}

impl ClientLink {
    /// Whether the session ended: nothing sent reaches it any more.
    pub fn is_closed(&self) -> bool {
        match &self.to {
            To::Rmcp(peer) => peer.is_transport_closed(),
            To::Stream(s) => s.is_closed(),
        }
    }

    /// What the client sent at `initialize` (`None` before it).
    pub fn client_info(&self) -> Option<Arc<InitializeRequestParams>> {
        match &self.to {
            To::Rmcp(peer) => peer.peer_info(),
            To::Stream(s) => s.info.read().ok().and_then(|i| i.clone()),
        }
    }

    /// Records what the client sent at `initialize`: on this session's own
    /// link, never on a peer other sessions share.
    pub fn set_client_info(&self, info: InitializeRequestParams) {
        match &self.to {
            To::Rmcp(peer) => peer.set_peer_info(info),
            To::Stream(s) => {
                if let Ok(mut i) = s.info.write() {
                    *i = Some(Arc::new(info));
                }
            }
        }
    }

    /// Sends a notification (the `notify_*` methods build the common ones
    /// as rmcp's `Peer` does).
    pub async fn notify(&self, notification: ServerNotification) -> Result<(), ServiceError> {
        match &self.to {
            To::Rmcp(peer) => peer.send_notification(notification).await,
            To::Stream(s) => {
                s.send(ServerJsonRpcMessage::notification(notification))
                    .await
            }
        }
    }

    pub async fn notify_tool_list_changed(&self) -> Result<(), ServiceError> {
        self.notify(ServerNotification::ToolListChangedNotification(
            ToolListChangedNotification::default(),
        ))
        .await
    }

    pub async fn notify_prompt_list_changed(&self) -> Result<(), ServiceError> {
        self.notify(ServerNotification::PromptListChangedNotification(
            PromptListChangedNotification::default(),
        ))
        .await
    }

    pub async fn notify_resource_list_changed(&self) -> Result<(), ServiceError> {
        self.notify(ServerNotification::ResourceListChangedNotification(
            ResourceListChangedNotification::default(),
        ))
        .await
    }

    pub async fn notify_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
    ) -> Result<(), ServiceError> {
        self.notify(ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification::new(params),
        ))
        .await
    }

    pub async fn notify_progress(
        &self,
        params: ProgressNotificationParam,
    ) -> Result<(), ServiceError> {
        self.notify(ServerNotification::ProgressNotification(
            ProgressNotification::new(params),
        ))
        .await
    }

    pub async fn notify_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
    ) -> Result<(), ServiceError> {
        self.notify(ServerNotification::LoggingMessageNotification(
            LoggingMessageNotification::new(params),
        ))
        .await
    }

    /// Sends the client a request and waits for its answer.
    pub async fn send_request(&self, request: ServerRequest) -> Result<ClientResult, ServiceError> {
        match &self.to {
            To::Rmcp(peer) => peer.send_request(request).await,
            To::Stream(s) => s.ask(request).await,
        }
    }
}

/// A link of mcpgate's own: what is sent goes on the session's event
/// stream, and the client's answers to requests come back by id
/// ([`Self::answers`]).
pub struct StreamLink {
    out: Outlet,
    info: RwLock<Option<Arc<InitializeRequestParams>>>,
    /// The requests sent on the stream that await the client's answer.
    pub answers: Answers,
}

enum Outlet {
    /// A legacy SSE session's one stream (a bounded channel its HTTP
    /// response drains).
    Stream(mpsc::Sender<ServerJsonRpcMessage>),
    /// A Streamable HTTP session's standalone stream, which its client
    /// opens and reopens with `GET`.
    Standalone(Standalone),
}

impl StreamLink {
    /// A link sending on `tx`.
    pub fn new(tx: mpsc::Sender<ServerJsonRpcMessage>) -> Self {
        Self::with(Outlet::Stream(tx))
    }

    /// A link sending on a Streamable HTTP session's standalone stream.
    pub fn standalone() -> Self {
        Self::with(Outlet::Standalone(Standalone::default()))
    }

    fn with(out: Outlet) -> Self {
        Self {
            out,
            info: RwLock::new(None),
            answers: Answers::default(),
        }
    }

    /// The standalone stream, for a Streamable HTTP session's link.
    pub fn standalone_stream(&self) -> Option<&Standalone> {
        match &self.out {
            Outlet::Standalone(s) => Some(s),
            Outlet::Stream(_) => None,
        }
    }

    /// Puts a message on the stream (a legacy one: waiting while it is
    /// full); an error once the session has ended.
    pub async fn send(&self, message: ServerJsonRpcMessage) -> Result<(), ServiceError> {
        match &self.out {
            Outlet::Stream(tx) => tx
                .clone()
                .send(message)
                .await
                .map_err(|_| ServiceError::TransportClosed),
            Outlet::Standalone(s) => {
                if s.send(&message) {
                    Ok(())
                } else {
                    Err(ServiceError::TransportClosed)
                }
            }
        }
    }

    fn is_closed(&self) -> bool {
        match &self.out {
            Outlet::Stream(tx) => tx.is_closed(),
            Outlet::Standalone(s) => s.is_closed(),
        }
    }

    /// The session ended: nothing more goes out, and requests awaiting the
    /// client's answer end without one.
    pub fn close(&self) {
        match &self.out {
            Outlet::Stream(tx) => tx.clone().close_channel(),
            Outlet::Standalone(s) => s.close(),
        }
        self.answers.close();
    }

    async fn ask(&self, request: ServerRequest) -> Result<ClientResult, ServiceError> {
        let (id, pending) = self.answers.expect();
        self.send(ServerJsonRpcMessage::request(request, id))
            .await?;
        match pending.answer().await {
            Some(Ok(result)) => Ok(result),
            Some(Err(error)) => Err(ServiceError::McpError(error)),
            None => Err(ServiceError::TransportClosed),
        }
    }
}
