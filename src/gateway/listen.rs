//! `subscriptions/listen` (SEP-2575, MCP 2026-07-28): the listen streams
//! open on this instance, and which upstream notifications reach them.
//!
//! In 2026-07-28 there are no sessions: a client that wants
//! `notifications/{tools,prompts,resources}/list_changed` or
//! `notifications/resources/updated` opens a `subscriptions/listen` request
//! whose response stream stays open, with a filter naming the kinds and the
//! resource URIs it wants. A listen stream is not tied to any request it
//! made through a connection (unlike the session-era relay), so it must
//! hear every upstream connection its caller may use, and nothing else:
//!
//! - an upstream the caller may not use (`allowed_users`) never reaches it;
//! - a per-user connection (`isolation = "per_user"`) reaches only the
//!   streams of its own user (the connection's owner, [`Source::owner`]);
//! - `resources/updated` reaches a stream only for a URI in its filter,
//!   subscribed at the upstream that serves it on the stream's behalf
//!   ([`Subscriptions`]); the upstream subscription is held while any
//!   stream (or a session-era `resources/subscribe`) needs it and released
//!   after the last.
//!
//! Kinds outside the accepted filter are not queued here, and rmcp's
//! `SubscriptionSink` refuses them again on the way out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::SubscriptionFilter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events queued per stream before new ones are dropped (a stream that
/// does not read is not allowed to hold memory).
const QUEUE: usize = 64;

/// The kind of a list that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Tools,
    Prompts,
    Resources,
}

/// What a listen stream is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ListChanged(Change),
    ResourceUpdated(String),
}

/// Where a notification comes from: an upstream connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The upstream's configured name.
    pub upstream: String,
    /// The connection's user (`Caller::owner`) for a per-user connection;
    /// `None` for a shared one.
    pub owner: Option<String>,
}

impl Source {
    /// The key of the connection among the upstream's connections.
    fn connection(&self) -> &str {
        self.owner.as_deref().unwrap_or("")
    }
}

/// The kinds a stream accepted.
#[derive(Debug, Clone, Default)]
struct Kinds {
    tools: bool,
    prompts: bool,
    resources: bool,
}

impl Kinds {
    fn from_filter(f: &SubscriptionFilter) -> Self {
        Self {
            tools: f.tools_list_changed == Some(true),
            prompts: f.prompts_list_changed == Some(true),
            resources: f.resources_list_changed == Some(true),
        }
    }

    fn wants(&self, c: Change) -> bool {
        match c {
            Change::Tools => self.tools,
            Change::Prompts => self.prompts,
            Change::Resources => self.resources,
        }
    }
}

struct Listener {
    /// `Caller::owner` of the stream's caller.
    owner: String,
    /// The caller, to decide again which upstreams it may use after a
    /// reload ([`ListenHub::reassess`]); `None` in unit tests.
    caller: Option<Caller>,
    /// The upstreams the caller may use.
    upstreams: HashSet<String>,
    kinds: Kinds,
    /// (upstream, URI) of the resources subscribed for this stream.
    resources: HashSet<(String, String)>,
    tx: mpsc::Sender<Event>,
}

/// The listen streams of this instance.
#[derive(Default)]
pub struct ListenHub {
    next: AtomicU64,
    listeners: Mutex<HashMap<u64, Listener>>,
    /// Upstream resource subscriptions held for streams, by (upstream,
    /// connection key, URI): how many streams need each.
    held: Mutex<HashMap<(String, String, String), usize>>,
    /// Cancelled at shutdown, before the transports close ([`Self::close_all`]).
    closing: CancellationToken,
}

/// A registered stream; unregisters when dropped.
pub struct Registration {
    hub: Arc<ListenHub>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut l) = self.hub.listeners.lock() {
            l.remove(&self.id);
        }
    }
}

impl Registration {
    /// Adds a resource URI (served by `upstream`) to the stream's filter.
    pub fn add_resource(&self, upstream: &str, uri: &str) {
        if let Ok(mut l) = self.hub.listeners.lock()
            && let Some(l) = l.get_mut(&self.id)
        {
            l.resources.insert((upstream.to_string(), uri.to_string()));
        }
    }
}

impl ListenHub {
    /// Registers a stream of the caller `owner`, who may use `upstreams`,
    /// accepting the list kinds of `filter`.
    pub fn register(
        self: &Arc<Self>,
        owner: String,
        upstreams: HashSet<String>,
        filter: &SubscriptionFilter,
    ) -> (Registration, mpsc::Receiver<Event>) {
        self.insert(owner, None, upstreams, filter)
    }

    /// [`Self::register`] for `caller`, kept so that a reload can decide
    /// again which upstreams the stream hears ([`Self::reassess`]).
    pub fn register_caller(
        self: &Arc<Self>,
        caller: &Caller,
        upstreams: HashSet<String>,
        filter: &SubscriptionFilter,
    ) -> (Registration, mpsc::Receiver<Event>) {
        self.insert(caller.owner(), Some(caller.clone()), upstreams, filter)
    }

    fn insert(
        self: &Arc<Self>,
        owner: String,
        caller: Option<Caller>,
        upstreams: HashSet<String>,
        filter: &SubscriptionFilter,
    ) -> (Registration, mpsc::Receiver<Event>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(mut l) = self.listeners.lock() {
            l.insert(
                id,
                Listener {
                    owner,
                    caller,
                    upstreams,
                    kinds: Kinds::from_filter(filter),
                    resources: HashSet::new(),
                    tx,
                },
            );
        }
        (
            Registration {
                hub: self.clone(),
                id,
            },
            rx,
        )
    }

    /// Cancelled when the streams are to end ([`Self::close_all`]).
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Ends every stream at shutdown, before the transports close, so that
    /// each ends gracefully with its final result (SEP-2575) rather than
    /// by a dropped connection: tells them to end, waits (at most
    /// `within`) until all have unregistered, and a moment more for their
    /// final results to be written out.
    pub async fn close_all(&self, within: Duration) {
        self.closing.cancel();
        if self.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + within;
        while !self.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Number of registered streams.
    pub fn len(&self) -> usize {
        self.listeners.lock().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells every stream allowed to hear `source` of `event`.
    pub fn publish(&self, source: &Source, event: Event) {
        let Ok(listeners) = self.listeners.lock() else {
            return;
        };
        for l in listeners.values() {
            if !may_hear(l, source, &event) {
                continue;
            }
            if l.tx.try_send(event.clone()).is_err() {
                tracing::debug!(upstream = %source.upstream, "a listen stream's queue is full; a notification was dropped");
            }
        }
    }

    /// After a reload: each stream's upstreams decided again by `visible`
    /// (the upstreams its caller may use now), and the streams whose
    /// caller is `concerned` told that the lists of `kinds` changed (those
    /// they asked for). Streams registered without a caller are left as
    /// they are.
    pub fn reassess(
        &self,
        visible: impl Fn(&Caller) -> HashSet<String>,
        concerned: impl Fn(&Caller) -> bool,
        kinds: &[Change],
    ) {
        let Ok(mut listeners) = self.listeners.lock() else {
            return;
        };
        for l in listeners.values_mut() {
            let Some(c) = &l.caller else {
                continue;
            };
            l.upstreams = visible(c);
            if !concerned(c) {
                continue;
            }
            for k in kinds {
                if l.kinds.wants(*k) && l.tx.try_send(Event::ListChanged(*k)).is_err() {
                    tracing::debug!("a listen stream's queue is full; a notification was dropped");
                }
            }
        }
    }

    /// Counts one more stream needing the upstream subscription of `uri`
    /// on `source`'s connection; true if it is the first (so the caller
    /// subscribes at the upstream).
    pub fn hold(&self, source: &Source, uri: &str) -> bool {
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let n = held
            .entry(key(source, uri))
            .and_modify(|n| *n += 1)
            .or_insert(1);
        *n == 1
    }

    /// Counts one stream less; true if it was the last (so the caller
    /// unsubscribes at the upstream, unless a session still needs it).
    pub fn release(&self, source: &Source, uri: &str) -> bool {
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let k = key(source, uri);
        match held.get_mut(&k) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                held.remove(&k);
                true
            }
            None => false,
        }
    }

    /// Whether a stream holds the upstream subscription of `uri`.
    pub fn holds(&self, source: &Source, uri: &str) -> bool {
        self.held
            .lock()
            .map(|h| h.contains_key(&key(source, uri)))
            .unwrap_or(false)
    }

    /// The URIs held on `source`'s connection (to subscribe again when the
    /// connection is replaced).
    pub fn held_uris(&self, source: &Source) -> Vec<String> {
        self.held
            .lock()
            .map(|h| {
                h.keys()
                    .filter(|(u, c, _)| *u == source.upstream && c == source.connection())
                    .map(|(_, _, uri)| uri.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn key(source: &Source, uri: &str) -> (String, String, String) {
    (
        source.upstream.clone(),
        source.connection().to_string(),
        uri.to_string(),
    )
}

/// The isolation rule: see the module documentation.
fn may_hear(l: &Listener, source: &Source, event: &Event) -> bool {
    if !l.upstreams.contains(&source.upstream) {
        return false;
    }
    if source.owner.as_ref().is_some_and(|o| *o != l.owner) {
        return false;
    }
    match event {
        Event::ListChanged(c) => l.kinds.wants(*c),
        Event::ResourceUpdated(uri) => l
            .resources
            .contains(&(source.upstream.clone(), uri.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(up: &str) -> Source {
        Source {
            upstream: up.into(),
            owner: None,
        }
    }

    fn per_user(up: &str, owner: &str) -> Source {
        Source {
            upstream: up.into(),
            owner: Some(owner.into()),
        }
    }

    fn all_lists() -> SubscriptionFilter {
        SubscriptionFilter::builder()
            .tools_list_changed()
            .prompts_list_changed()
            .resources_list_changed()
            .build()
    }

    fn ups(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn a_stream_hears_only_its_kinds_its_upstreams_and_its_own_connections() {
        let hub = Arc::new(ListenHub::default());
        let tools_only = SubscriptionFilter::builder().tools_list_changed().build();
        let (_a, mut a) = hub.register("alice".into(), ups(&["s", "mine"]), &tools_only);
        let (_b, mut b) = hub.register("bob".into(), ups(&["mine"]), &all_lists());

        hub.publish(&shared("s"), Event::ListChanged(Change::Prompts));
        hub.publish(&shared("s"), Event::ListChanged(Change::Tools));
        hub.publish(
            &per_user("mine", "alice"),
            Event::ListChanged(Change::Tools),
        );

        assert_eq!(a.try_recv().ok(), Some(Event::ListChanged(Change::Tools)));
        assert_eq!(a.try_recv().ok(), Some(Event::ListChanged(Change::Tools)));
        assert!(a.try_recv().is_err(), "prompts were not asked for");
        assert!(
            b.try_recv().is_err(),
            "bob may not use s, and alice's connection is not his"
        );
    }

    #[tokio::test]
    async fn resource_updates_reach_only_streams_that_subscribed_the_uri() {
        let hub = Arc::new(ListenHub::default());
        let (ra, mut a) = hub.register("alice".into(), ups(&["s"]), &SubscriptionFilter::new());
        let (_rb, mut b) = hub.register("bob".into(), ups(&["s"]), &all_lists());
        ra.add_resource("s", "test://x");
        hub.publish(&shared("s"), Event::ResourceUpdated("test://x".into()));
        hub.publish(&shared("s"), Event::ResourceUpdated("test://y".into()));
        assert_eq!(
            a.try_recv().ok(),
            Some(Event::ResourceUpdated("test://x".into()))
        );
        assert!(a.try_recv().is_err());
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn the_upstream_subscription_is_held_until_the_last_stream_releases_it() {
        let hub = ListenHub::default();
        let s = per_user("mine", "alice");
        assert!(hub.hold(&s, "u"));
        assert!(!hub.hold(&s, "u"));
        assert!(
            hub.hold(&per_user("mine", "bob"), "u"),
            "another user's connection holds its own"
        );
        assert_eq!(hub.held_uris(&s), vec!["u".to_string()]);
        assert!(!hub.release(&s, "u"));
        assert!(hub.holds(&s, "u"));
        assert!(hub.release(&s, "u"));
        assert!(!hub.holds(&s, "u"));
        assert!(!hub.release(&s, "u"), "nothing left to release");
    }

    #[tokio::test]
    async fn reassess_tells_each_stream_the_kinds_it_asked_for_and_recomputes_its_upstreams() {
        let hub = Arc::new(ListenHub::default());
        let tools_only = SubscriptionFilter::builder().tools_list_changed().build();
        let alice = Caller {
            subject: mcpgate_core::mcp::bearer::Subject::User {
                id: "alice".into(),
                username: "alice".into(),
            },
            client_id: mcpgate_core::domain::ClientId::parse("c").unwrap(),
            scope: mcpgate_core::domain::Scope::parse("mcp").unwrap(),
            expires_at: 0,
            token_hash: "h".into(),
            groups: Default::default(),
        };
        let (_a, mut a) = hub.register_caller(&alice, ups(&["s"]), &tools_only);
        let mut bob = alice.clone();
        bob.subject = mcpgate_core::mcp::bearer::Subject::User {
            id: "bob".into(),
            username: "bob".into(),
        };
        let (_b, mut b) = hub.register_caller(&bob, ups(&["s"]), &all_lists());
        hub.reassess(
            |_| ups(&["t"]),
            |c| c.owner() == "alice",
            &[Change::Tools, Change::Prompts],
        );
        assert_eq!(a.try_recv().ok(), Some(Event::ListChanged(Change::Tools)));
        assert!(a.try_recv().is_err(), "prompts were not asked for");
        assert!(b.try_recv().is_err(), "bob is not concerned");
        hub.publish(&shared("s"), Event::ListChanged(Change::Tools));
        assert!(a.try_recv().is_err(), "s is no longer alice's upstream");
        hub.publish(&shared("t"), Event::ListChanged(Change::Tools));
        assert_eq!(a.try_recv().ok(), Some(Event::ListChanged(Change::Tools)));
    }

    #[test]
    fn a_dropped_registration_is_forgotten() {
        let hub = Arc::new(ListenHub::default());
        let (r, _rx) = hub.register("alice".into(), ups(&["s"]), &all_lists());
        assert_eq!(hub.len(), 1);
        drop(r);
        assert!(hub.is_empty());
    }
}
