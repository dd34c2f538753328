//! `subscriptions/listen` (SEP-2575, MCP 2026-07-28) on the stateless
//! endpoint.
//!
//! rmcp acknowledges the stream (`notifications/subscriptions/acknowledged`
//! with the subscription id: the listen request's id) with the filter
//! [`accepted`] returns, narrowed to the capabilities mcpgate advertises,
//! and then calls [`serve`], which registers the stream with the gateway
//! (`crate::gateway::listen` holds the isolation rules) and forwards what it
//! is told through rmcp's `SubscriptionSink`, which tags each notification
//! with the subscription id and refuses kinds outside the filter. The
//! stream ends when the client goes away (its request is cancelled), when
//! its token is revoked or expires (`super::streams`), or at shutdown,
//! which ends it gracefully with the final `SubscriptionsListenResult`.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    PromptListChangedNotification, ResourceListChangedNotification, ResourceUpdatedNotification,
    ResourceUpdatedNotificationParam, ServerNotification, SubscriptionFilter,
    ToolListChangedNotification,
};
use rmcp::service::{SubscriptionContext, SubscriptionSendError};

use super::handler::caller_of;
use crate::gateway::Gateway;
use crate::gateway::listen::{Change, Event};

/// Resource URIs one stream may subscribe (each may cost a request to
/// every upstream of the caller); the acknowledgement names those taken.
pub const MAX_RESOURCE_SUBSCRIPTIONS: usize = 100;

/// The filter mcpgate accepts: everything requested (rmcp narrows it to the
/// advertised capabilities), with at most [`MAX_RESOURCE_SUBSCRIPTIONS`]
/// distinct resource URIs. URIs nobody serves are accepted too; they never
/// get an update. `None` (no upstreams, nothing can change):
/// `subscriptions/listen` is not offered.
pub fn accepted(gateway: &Gateway, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
    if gateway.is_empty() {
        return None;
    }
    let mut accepted = requested.clone();
    if let Some(uris) = &mut accepted.resource_subscriptions {
        let mut seen = std::collections::HashSet::new();
        uris.retain(|u| seen.insert(u.clone()));
        uris.truncate(MAX_RESOURCE_SUBSCRIPTIONS);
    }
    Some(accepted)
}

/// Serves one listen stream until it ends (see the module documentation).
pub async fn serve(gateway: &Gateway, context: SubscriptionContext) -> Result<(), McpError> {
    let caller = caller_of(&context.request_context().extensions).ok_or_else(|| {
        McpError::invalid_request("the request carries no authenticated caller", None)
    })?;
    let mut listening = gateway.listen(&caller, context.accepted()).await;
    let [closing, stopped] = gateway.listen_ends();
    loop {
        let event = tokio::select! {
            _ = context.cancelled() => return Ok(()),
            _ = closing.cancelled() => return Ok(()),
            _ = stopped.cancelled() => return Ok(()),
            e = listening.events.recv() => e,
        };
        let Some(event) = event else { return Ok(()) };
        match context.sink().send(notification(event)).await {
            Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "a listen stream ended");
                return Ok(());
            }
        }
    }
}

fn notification(event: Event) -> ServerNotification {
    match event {
        Event::ListChanged(Change::Tools) => {
            ServerNotification::ToolListChangedNotification(ToolListChangedNotification::default())
        }
        Event::ListChanged(Change::Prompts) => ServerNotification::PromptListChangedNotification(
            PromptListChangedNotification::default(),
        ),
        Event::ListChanged(Change::Resources) => {
            ServerNotification::ResourceListChangedNotification(
                ResourceListChangedNotification::default(),
            )
        }
        Event::ResourceUpdated(uri) => ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification::new(ResourceUpdatedNotificationParam::new(uri)),
        ),
    }
}
