//! The relay holds the peers of live downstream sessions only: those of
//! ended sessions are dropped as new ones arrive (docs/benchmarks.md, "Soak":
//! they used to pile up, a few KiB each, for as long as the process ran).

use std::time::Duration;

use rmcp::service::{RunningService, serve_directly};
use rmcp::{RoleServer, ServerHandler};

use rmcp::model::RequestId;

use super::{Downstream, NoOrigin, RelayState};

struct Nothing;

impl ServerHandler for Nothing {}

/// A running downstream session, its [`Downstream`], and the client's end
/// of its pipe (the session lives until cancelled or until that is dropped).
type Session = (
    RunningService<RoleServer, Nothing>,
    Downstream,
    tokio::io::DuplexStream,
);

/// A downstream session served on an in-memory pipe.
fn session(id: u64) -> Session {
    let (ours, theirs) = tokio::io::duplex(4096);
    let running = serve_directly::<RoleServer, _, _, _, _>(Nothing, ours, None);
    let d = Downstream {
        session: id,
        owner: None,
        link: running.peer().clone().into(),
        request: None,
        inline: None,
        per_request: false,
        logs: super::LogFilter::Session,
        input: None,
    };
    (running, d, theirs)
}

/// Runs one call of session `id` through the relay (and a subscription),
/// then ends the session.
async fn call_and_end(relay: &RelayState, id: u64) {
    let (running, d, _pipe) = session(id);
    let ticket = relay.begin(Some(&d));
    relay.subscribe("file:///x", &d);
    relay.end(ticket);
    running.cancel().await.ok();
    assert!(d.link.is_closed());
}

#[tokio::test]
async fn ended_sessions_do_not_pile_up() {
    let relay = RelayState::new("up", false, Duration::from_secs(60));
    for id in 0..1_000 {
        call_and_end(&relay, id).await;
    }
    assert!(
        relay.listener_count() <= 64,
        "{} listeners held after 1,000 ended sessions",
        relay.listener_count()
    );
    assert!(
        relay.subscription_count() <= 64,
        "{} subscriptions held after 1,000 ended sessions",
        relay.subscription_count()
    );
}

#[tokio::test]
async fn live_sessions_stay() {
    let relay = RelayState::new("up", true, Duration::from_secs(60));
    let live: Vec<_> = (0..100).map(session).collect();
    for (_, d, _) in &live {
        relay.subscribe("file:///live", d);
        let ticket = relay.begin(Some(d));
        relay.end(ticket);
    }
    for id in 1_000..1_500 {
        call_and_end(&relay, id).await;
    }
    let held: Vec<u64> = relay.listeners().into_iter().map(|(s, _)| s).collect();
    for id in 0..100 {
        assert!(held.contains(&id), "live session {id} was dropped");
    }
    // Live ones, plus at most as many ended ones again.
    assert!(relay.listener_count() <= 200, "{}", relay.listener_count());
    assert!(
        relay.subscription_count() <= 200,
        "{}",
        relay.subscription_count()
    );
    let subscribed = relay
        .subscriptions
        .lock()
        .map(|m| m.select(|(uri, _)| uri == "file:///live").len())
        .unwrap_or(0);
    assert_eq!(subscribed, 100);
    drop(live);
}

/// Records a call of `d` in flight (sent as upstream request `id`).
fn in_flight(relay: &RelayState, d: &Downstream, id: i64) {
    let ticket = relay.begin(Some(d));
    relay.sending(&RequestId::Number(id));
    relay.sent(ticket, RequestId::Number(id));
}

#[tokio::test]
async fn on_a_shared_connection_calls_of_one_user_are_not_ambiguous_but_of_two_users_are() {
    let relay = RelayState::new("up", false, Duration::from_secs(60));
    let (_r1, mut a1, _p1) = session(1);
    let (_r2, mut a2, _p2) = session(2);
    let (_r3, mut b, _p3) = session(3);
    a1.owner = Some("alice".into());
    a2.owner = Some("alice".into());
    b.owner = Some("bob".into());
    in_flight(&relay, &a1, 1);
    in_flight(&relay, &a2, 2);
    assert_eq!(
        relay.origin(false).map(|d| d.session).ok(),
        Some(2),
        "the most recent of alice's"
    );
    in_flight(&relay, &b, 3);
    assert_eq!(relay.origin(false).err(), Some(NoOrigin::Ambiguous));
    // Without owners, sessions count: two sessions are ambiguous.
    let relay = RelayState::new("up", false, Duration::from_secs(60));
    let (_r4, s4, _p4) = session(4);
    let (_r5, s5, _p5) = session(5);
    in_flight(&relay, &s4, 4);
    in_flight(&relay, &s5, 5);
    assert_eq!(relay.origin(false).err(), Some(NoOrigin::Ambiguous));
}
