//! The gateway's side of a `subscriptions/listen` stream (SEP-2575): its
//! registration in the [`ListenHub`](super::listen::ListenHub), and the
//! upstream resource subscriptions it holds (see [`super::listen`] for the
//! rules).

use std::sync::Arc;

use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::{SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams};
use tokio::sync::mpsc;

use super::listen::{Event, Registration, Source};
use super::upstream::Upstream;
use super::{Gateway, RESOURCE_NOT_FOUND};

/// An open listen stream of the gateway. Dropping it unregisters the
/// stream and releases its upstream subscriptions (unsubscribing, in a task
/// of its own, those nobody needs any more).
pub struct Listening {
    pub events: mpsc::Receiver<Event>,
    _registration: Registration,
    held: Vec<Held>,
}

struct Held {
    up: Arc<Upstream>,
    caller: Caller,
    source: Source,
    uri: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            for h in held {
                if !h.up.listen.release(&h.source, &h.uri) {
                    continue;
                }
                // No live connection: the subscription ended with it.
                let Some(conn) = h.up.live_conn(&h.caller) else {
                    continue;
                };
                if conn.relay.has_subscribers(&h.uri) {
                    continue;
                }
                let _ = Gateway::bounded(
                    &h.up,
                    conn.peer
                        .unsubscribe(UnsubscribeRequestParams::new(h.uri.as_str())),
                )
                .await;
            }
        });
    }
}

impl Gateway {
    /// Cancelled when listen streams are to end: at shutdown, first the
    /// one [`Self::close_listens`] cancels (gracefully), then the gateway's.
    pub fn listen_ends(&self) -> [tokio_util::sync::CancellationToken; 2] {
        [self.listen.closing(), self.cancel.clone()]
    }

    /// Ends the open listen streams gracefully (shutdown, before the
    /// transports close).
    pub async fn close_listens(&self) {
        self.listen
            .close_all(std::time::Duration::from_millis(500))
            .await;
    }

    /// Opens a listen stream for `caller` with the accepted `filter`:
    /// registers it, then subscribes each of its resource URIs at the
    /// first of the caller's upstreams that serves it (a URI nobody serves
    /// never gets an update).
    pub async fn listen(&self, caller: &Caller, filter: &SubscriptionFilter) -> Listening {
        let upstreams = self
            .visible(caller)
            .iter()
            .map(|u| u.cfg.name.clone())
            .collect();
        let (registration, events) = self.listen.register_caller(caller, upstreams, filter);
        let mut held = Vec::new();
        for uri in filter.resource_subscriptions.iter().flatten() {
            // A denied URI is accepted like one nobody serves: no update.
            if !self
                .access
                .allows(mcpgate_core::policy::Kind::Resource, uri, caller)
            {
                continue;
            }
            if let Some(h) = self.hold_resource(caller, uri).await {
                registration.add_resource(&h.source.upstream, uri);
                held.push(h);
            }
        }
        Listening {
            events,
            _registration: registration,
            held,
        }
    }

    async fn hold_resource(&self, caller: &Caller, uri: &str) -> Option<Held> {
        for (up, conn) in self.conns(caller).await {
            let source = up.source(caller);
            if !self.listen.hold(&source, uri) {
                // Held already for another stream: this upstream serves it.
                return Some(Held {
                    up,
                    caller: caller.clone(),
                    source,
                    uri: uri.to_string(),
                });
            }
            match Self::bounded(&up, conn.peer.subscribe(SubscribeRequestParams::new(uri))).await {
                Ok(()) => {
                    return Some(Held {
                        up,
                        caller: caller.clone(),
                        source,
                        uri: uri.to_string(),
                    });
                }
                Err(e) => {
                    self.listen.release(&source, uri);
                    let not_here =
                        e.code.0 == RESOURCE_NOT_FOUND || e.code.0 == -32602 || e.code.0 == -32601;
                    if !not_here {
                        tracing::warn!(upstream = %up.cfg.name, error = %e.message, "subscribing for a listen stream failed");
                    }
                }
            }
        }
        tracing::debug!(uri = %uri.escape_debug(), "no upstream of the caller serves a subscribed resource");
        None
    }
}

impl Gateway {
    /// The input schema of the upstream tool exposed as `name` to `caller`
    /// (from the tool list last fetched, `None` if no upstream of the
    /// caller serves it): what the `Mcp-Param-*` headers of a call are
    /// checked against (`crate::mcp::param_headers`).
    pub async fn tool_schema(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Option<Arc<rmcp::model::JsonObject>> {
        let (_, conn, own) = self.route_tool(caller, name).await?.ok()?;
        let tools = conn.tools.lock().ok()?;
        tools
            .as_ref()?
            .iter()
            .find(|t| t.name == own)
            .map(|t| t.input_schema.clone())
    }
}
