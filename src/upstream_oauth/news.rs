//! A connection made or ended, told to every instance.
//!
//! The browser's callback may land on another instance than the user's MCP
//! session (several instances on one PostgreSQL, docs/scaling.md). So the
//! instance that stores or deletes the tokens publishes
//! [`Event::UpstreamConnection`] on the cluster bus (user id and upstream
//! name; never a token), and every instance, this one included, handles it
//! (`Gateway::attach_connection_news`): the sessions of that user waiting
//! there are told `notifications/elicitation/complete`
//! ([`UpstreamOAuth::tell_connected`]), and all of that user's sessions
//! there `tools/list_changed`. Without a bus, or when publishing fails,
//! this instance's waiting sessions are told directly.

use std::sync::Arc;

use super::UpstreamOAuth;
use crate::cluster::{Bus, Event};

impl UpstreamOAuth {
    /// The bus connections are announced on (once).
    pub fn set_bus(&self, bus: Arc<dyn Bus>) {
        let _ = self.bus.set(bus);
    }

    /// Announces that `user_id` connected (`connected`) or ended their
    /// connection to `upstream`.
    pub(super) async fn announce(&self, user_id: &str, upstream: &str, connected: bool) {
        let event = Event::UpstreamConnection {
            user_id: user_id.to_string(),
            upstream: upstream.to_string(),
            connected,
        };
        let published = match self.bus.get() {
            Some(bus) => match bus.publish(event).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(event = "upstream_oauth.announce_failed", upstream = %upstream, error = %e, "the connection could not be announced to the other instances; only this one is told");
                    false
                }
            },
            None => false,
        };
        if !published && connected {
            self.tell_connected(user_id, upstream, true).await;
        }
    }
}
