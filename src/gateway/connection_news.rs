//! Every instance's side of a connection to an `auth = "oauth"` upstream
//! made or ended, on whichever instance (`crate::upstream_oauth::news`,
//! [`Event::UpstreamConnection`] on the cluster bus).
//!
//! - Connected: the user's sessions waiting here for it are told
//!   `notifications/elicitation/complete` (their URL-mode elicitation);
//!   then all of the user's sessions here, and their listen streams,
//!   `tools/list_changed`.
//! - Disconnected: the user's live connection to the upstream here is
//!   stopped, and the user's sessions and listen streams here are told
//!   `tools/list_changed` (the `<prefix>_connect` tool is back).
//!
//! Only the sessions of the user named in the event are told.

use std::sync::{Arc, Weak};

use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::listen::{Change, Event as ListenEvent, Source};
use crate::cluster::bus::{self as cluster_bus, Bus, Event};

impl Gateway {
    /// Announces connections on `bus` and handles those of every instance,
    /// until `cancel`.
    pub fn attach_connection_news(self: &Arc<Self>, bus: Arc<dyn Bus>, cancel: CancellationToken) {
        if let Some(o) = self.oauth.get() {
            o.set_bus(bus.clone());
        }
        let me: Weak<Gateway> = Arc::downgrade(self);
        let mut rx = bus.subscribe();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = cluster_bus::next(&mut rx) => e,
                    _ = cancel.cancelled() => break,
                };
                let Some(event) = event else { break };
                let Event::UpstreamConnection {
                    user_id,
                    upstream,
                    connected,
                } = event
                else {
                    continue;
                };
                let Some(gateway) = me.upgrade() else { break };
                tokio::spawn(async move {
                    gateway
                        .connection_news(&user_id, &upstream, connected)
                        .await;
                });
            }
        });
    }

    /// Tells this instance's sessions of `user_id` (see the module
    /// documentation).
    pub async fn connection_news(&self, user_id: &str, upstream: &str, connected: bool) {
        let Some(oauth) = self.oauth.get() else {
            return;
        };
        if connected {
            // The elicitations end first, then every session of the user
            // (those that asked included) hears of the new tools.
            oauth.tell_connected(user_id, upstream, false).await;
            self.sessions
                .notify(&[Change::Tools], |c| {
                    c.user().is_some_and(|(id, _)| id == user_id)
                })
                .await;
            return;
        }
        if let Some(up) = self.upstreams().iter().find(|u| u.cfg.name == upstream) {
            up.stop_owner(user_id);
        }
        self.listen.publish(
            &Source {
                upstream: upstream.to_string(),
                owner: Some(user_id.to_string()),
            },
            ListenEvent::ListChanged(Change::Tools),
        );
        self.sessions
            .notify(&[Change::Tools], |c| {
                c.user().is_some_and(|(id, _)| id == user_id)
            })
            .await;
    }
}
