//! [`RelayHandler`]: the rmcp `ClientHandler` of an upstream connection,
//! what mcpgate does with each request and notification an upstream sends
//! (the rules are in the parent module's documentation).

#![allow(deprecated)]

use rmcp::model::{
    ClientCapabilities, ClientInfo, ClientResult, CreateMessageRequest, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequest, ElicitRequestParams, ElicitResult, Implementation,
    ListRootsRequest, ListRootsResult, LoggingMessageNotificationParam, ProgressNotificationParam,
    ResourceUpdatedNotificationParam, ServerRequest,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient};

use crate::mcp::client_link::ClientLink;

use super::{Downstream, RelayState, Relayed, ask_downstream, input_key, unexpected};
use crate::gateway::listen::{Change, Event};

#[derive(Clone)]
pub struct RelayHandler {
    pub state: std::sync::Arc<RelayState>,
}

impl RelayHandler {
    /// The origin of a request of the upstream, once requests being sent
    /// are recorded (see [`RelayState::hold_sending`]).
    async fn origin(&self, what: &str) -> Result<Downstream, McpError> {
        drop(self.state.hold_sending().await);
        self.state.origin_for(what)
    }
}

impl ClientHandler for RelayHandler {
    fn get_info(&self) -> ClientInfo {
        let caps = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        let mut info = ClientInfo::new(
            caps,
            Implementation::new("mcpgate", env!("CARGO_PKG_VERSION")),
        );
        // The newest revision with an initialize handshake: on 2026-07-28
        // sessions servers may not send sampling, elicitation or roots
        // requests, which the gateway relays.
        info.protocol_version = rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE;
        info
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let d = self.origin("sampling/createMessage").await?;
        let hint = input_key(Some(&params), &context);
        match ask_downstream(
            &d,
            ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params)),
            hint,
        )
        .await?
        {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            other => Err(unexpected("sampling/createMessage", other)),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let d = self.origin("elicitation/create").await?;
        let hint = input_key(Some(&params), &context);
        match ask_downstream(
            &d,
            ServerRequest::ElicitRequest(ElicitRequest::new(params)),
            hint,
        )
        .await?
        {
            ClientResult::ElicitResult(r) => Ok(r),
            other => Err(unexpected("elicitation/create", other)),
        }
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        let d = self.origin("roots/list").await?;
        let hint = input_key(None::<&()>, &context);
        match ask_downstream(
            &d,
            ServerRequest::ListRootsRequest(ListRootsRequest::default()),
            hint,
        )
        .await?
        {
            ClientResult::ListRootsResult(r) => Ok(r),
            other => Err(unexpected("roots/list", other)),
        }
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _relayed = Relayed(&self.state);
        // Wait until a request being sent has its token mapped.
        drop(self.state.hold_sending().await);
        let target = self
            .state
            .progress
            .lock()
            .ok()
            .and_then(|m| m.get(&params.progress_token).cloned());
        if let Some((d, token)) = target {
            let mut p = params;
            p.progress_token = token;
            d.notify_progress(p).await;
        }
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _relayed = Relayed(&self.state);
        drop(self.state.hold_sending().await);
        if let Ok(d) = self.state.origin(true) {
            d.notify_logging_message(params).await;
        } else if self.state.per_user {
            for (session, link) in self.state.listeners() {
                if link.notify_logging_message(params.clone()).await.is_err() {
                    self.state.forget_listener(session);
                }
            }
        } else {
            tracing::debug!(upstream = %self.state.upstream, "a log message of unknown origin on a shared connection was dropped");
        }
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.state
            .publish(Event::ResourceUpdated(params.uri.clone()));
        let links: Vec<ClientLink> = self
            .state
            .subscriptions
            .lock()
            .map(|m| {
                m.select(|(uri, _)| *uri == params.uri)
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect()
            })
            .unwrap_or_default();
        for l in links {
            let _ = l.notify_resource_updated(params.clone()).await;
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        if let Some(cache) = &self.state.tools_cache
            && let Ok(mut c) = cache.lock()
        {
            *c = None;
        }
        self.state.publish(Event::ListChanged(Change::Tools));
        for (session, link) in self.state.listeners() {
            if link.notify_tool_list_changed().await.is_err() {
                self.state.forget_listener(session);
            }
        }
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.state.publish(Event::ListChanged(Change::Prompts));
        for (session, link) in self.state.listeners() {
            if link.notify_prompt_list_changed().await.is_err() {
                self.state.forget_listener(session);
            }
        }
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.state.publish(Event::ListChanged(Change::Resources));
        for (session, link) in self.state.listeners() {
            if link.notify_resource_list_changed().await.is_err() {
                self.state.forget_listener(session);
            }
        }
    }
}
