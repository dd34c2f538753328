//! The way to one downstream client outside the answer to one of its
//! requests: the notifications mcpgate sends a session on its own (list
//! changes, resource updates), the progress and log messages and the
//! relayed requests of a request rmcp serves, and what the client said of
//! itself at `initialize` (its capabilities: whether it takes URL-mode
//! elicitation).
//!
//! The gateway, the relay, tasks and upstream OAuth hold a session's
//! [`ClientLink`], never its rmcp `Peer`. Today every link is the session's
//! rmcp peer: rmcp runs a service per session, and its peer carries these
//! messages to the session's transport. The link is the seam for a session
//! layer of mcpgate's own, in which an idle session has no rmcp service,
//! task or peer (docs/benchmarks.md, "Workload 5 at scale": rmcp's service
//! is most of the 76 KB an idle Streamable HTTP session costs).
//!
//! Logging is deprecated by the 2026-07-28 revision (SEP-2577) but part of
//! the earlier ones the gateway serves, hence `allow(deprecated)`.

#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    ClientResult, InitializeRequestParams, LoggingMessageNotificationParam,
    ProgressNotificationParam, ResourceUpdatedNotificationParam, ServerNotification, ServerRequest,
};
use rmcp::service::ServiceError;
use rmcp::{Peer, RoleServer};

/// See the module documentation.
#[derive(Clone)]
pub struct ClientLink {
    peer: Peer<RoleServer>,
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
        Self { peer }
    }
}

impl ClientLink {
    /// Whether the session ended: nothing sent reaches it any more.
    pub fn is_closed(&self) -> bool {
        self.peer.is_transport_closed()
    }

    /// What the client sent at `initialize` (`None` before it).
    pub fn client_info(&self) -> Option<Arc<InitializeRequestParams>> {
        self.peer.peer_info()
    }

    pub async fn notify(&self, notification: ServerNotification) -> Result<(), ServiceError> {
        self.peer.send_notification(notification).await
    }

    pub async fn notify_tool_list_changed(&self) -> Result<(), ServiceError> {
        self.peer.notify_tool_list_changed().await
    }

    pub async fn notify_prompt_list_changed(&self) -> Result<(), ServiceError> {
        self.peer.notify_prompt_list_changed().await
    }

    pub async fn notify_resource_list_changed(&self) -> Result<(), ServiceError> {
        self.peer.notify_resource_list_changed().await
    }

    pub async fn notify_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
    ) -> Result<(), ServiceError> {
        self.peer.notify_resource_updated(params).await
    }

    pub async fn notify_progress(
        &self,
        params: ProgressNotificationParam,
    ) -> Result<(), ServiceError> {
        self.peer.notify_progress(params).await
    }

    pub async fn notify_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
    ) -> Result<(), ServiceError> {
        self.peer.notify_logging_message(params).await
    }

    /// Sends the client a request and waits for its answer.
    pub async fn send_request(&self, request: ServerRequest) -> Result<ClientResult, ServiceError> {
        self.peer.send_request(request).await
    }
}
