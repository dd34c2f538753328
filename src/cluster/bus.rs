//! The events instances tell each other, and the in-process bus.
//!
//! An [`Event`] travels as a short text (the payload of a PostgreSQL
//! `NOTIFY`, at most 8000 bytes): `revoked`, `mcp-closed:<session id>`,
//! `sse:<session id>`, `mail:<recipient>`, `task-cancel:<task id>`, `task-input:<task id>`,
//! `upstream-connected:<user id>:<upstream>`, `upstream-disconnected:<user id>:<upstream>`. Anything
//! larger (an SSE message) goes through a
//! table and the event only names where to look.

use async_trait::async_trait;
use tokio::sync::broadcast;

/// Events buffered per subscriber before it lags (a lagging subscriber is
/// treated as having missed events: see [`Event::Resync`]).
pub const CAPACITY: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Tokens were revoked, or users or clients removed: forget cached
    /// tokens, and re-check the tokens of open streams (`mcp::streams`).
    TokensRevoked,
    /// A Streamable HTTP session was deleted: close it here too.
    McpSessionClosed(String),
    /// A message was queued for a legacy SSE session: its holder takes it.
    SseMessage(String),
    /// A task was cancelled (`crate::tasks`): the instance running it stops
    /// its upstream call.
    TaskCancelled(String),
    /// Answers to a task's questions were queued in the store
    /// (`crate::tasks`): the instance running it takes them.
    TaskInput(String),
    /// Mail for a recipient was left in the store (`cluster_mail`): a
    /// retried multi-round-trip request for the instance holding its call
    /// (`instance:<id>`), or the answer to one (`answer:<mail id>`).
    Mail(String),
    /// A user connected (`connected`) or ended their connection to an
    /// `auth = "oauth"` upstream (`crate::upstream_oauth::news`): every
    /// instance tells that user's sessions there. No token travels.
    UpstreamConnection {
        user_id: String,
        upstream: String,
        connected: bool,
    },
    /// Events may have been missed (the listener reconnected, or lagged):
    /// forget cached tokens and look for queued messages.
    Resync,
}

impl Event {
    pub fn to_payload(&self) -> String {
        match self {
            Event::TokensRevoked => "revoked".into(),
            Event::McpSessionClosed(id) => format!("mcp-closed:{id}"),
            Event::SseMessage(id) => format!("sse:{id}"),
            Event::TaskCancelled(id) => format!("task-cancel:{id}"),
            Event::TaskInput(id) => format!("task-input:{id}"),
            Event::Mail(to) => format!("mail:{to}"),
            Event::UpstreamConnection {
                user_id,
                upstream,
                connected,
            } => format!(
                "upstream-{}:{user_id}:{upstream}",
                if *connected {
                    "connected"
                } else {
                    "disconnected"
                }
            ),
            Event::Resync => "resync".into(),
        }
    }

    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            None if payload == "revoked" => Some(Event::TokensRevoked),
            None if payload == "resync" => Some(Event::Resync),
            Some(("mcp-closed", id)) if !id.is_empty() => Some(Event::McpSessionClosed(id.into())),
            Some(("sse", id)) if !id.is_empty() => Some(Event::SseMessage(id.into())),
            Some(("task-cancel", id)) if !id.is_empty() => Some(Event::TaskCancelled(id.into())),
            Some(("task-input", id)) if !id.is_empty() => Some(Event::TaskInput(id.into())),
            Some(("mail", to)) if !to.is_empty() => Some(Event::Mail(to.into())),
            Some((kind @ ("upstream-connected" | "upstream-disconnected"), rest)) => {
                // Upstream names have no `:` (letters, digits, `-`, `_`).
                let (user_id, upstream) = rest.rsplit_once(':')?;
                (!user_id.is_empty() && !upstream.is_empty()).then(|| Event::UpstreamConnection {
                    user_id: user_id.into(),
                    upstream: upstream.into(),
                    connected: kind == "upstream-connected",
                })
            }
            _ => None,
        }
    }
}

/// Delivers events to every instance sharing the database.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends `event` to every instance, this one included.
    async fn publish(&self, event: Event) -> anyhow::Result<()>;
    /// Events from now on.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// Whether events from other instances are arriving now. While not,
    /// caches must not be trusted.
    fn connected(&self) -> bool;
    /// Whether other instances can share the database.
    fn shared(&self) -> bool;
}

/// The bus of a single instance: events stay in the process.
pub struct LocalBus {
    tx: broadcast::Sender<Event>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, event: Event) -> anyhow::Result<()> {
        // No subscriber is not an error.
        let _ = self.tx.send(event);
        Ok(())
    }
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
    fn connected(&self) -> bool {
        true
    }
    fn shared(&self) -> bool {
        false
    }
}

/// The next event for a subscriber; a lag becomes [`Event::Resync`];
/// `None` when the bus is gone.
pub async fn next(rx: &mut broadcast::Receiver<Event>) -> Option<Event> {
    match rx.recv().await {
        Ok(e) => Some(e),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(Event::Resync),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_payload() {
        for e in [
            Event::TokensRevoked,
            Event::Resync,
            Event::McpSessionClosed("abc".into()),
            Event::SseMessage("0123".into()),
            Event::TaskCancelled("t1".into()),
            Event::TaskInput("t1".into()),
            Event::Mail("instance:a".into()),
            Event::Mail("answer:x-1".into()),
            Event::UpstreamConnection {
                user_id: "4f1c-aa".into(),
                upstream: "git-hub_2".into(),
                connected: true,
            },
            Event::UpstreamConnection {
                user_id: "u:with:colons".into(),
                upstream: "gh".into(),
                connected: false,
            },
        ] {
            assert_eq!(Event::parse(&e.to_payload()), Some(e));
        }
    }

    #[test]
    fn unknown_payloads_are_ignored() {
        for p in [
            "",
            "sse:",
            "nope",
            "mcp-closed:",
            "task-cancel:",
            "task-input:",
            "upstream-connected:",
            "upstream-connected:u",
            "upstream-connected::gh",
            "upstream-disconnected:u:",
            "other:x",
        ] {
            assert_eq!(Event::parse(p), None, "{p}");
        }
    }

    #[tokio::test]
    async fn the_local_bus_delivers_to_subscribers() {
        let bus = LocalBus::default();
        let mut rx = bus.subscribe();
        bus.publish(Event::TokensRevoked).await.unwrap();
        assert_eq!(next(&mut rx).await, Some(Event::TokensRevoked));
        assert!(!bus.shared());
    }
}
