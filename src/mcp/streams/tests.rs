//! Unit tests of the stream registry.

use super::*;
use axum::response::IntoResponse;
use futures::StreamExt;
use std::convert::Infallible;
use std::time::Duration;

pub(super) fn info(kind: OpenKind, owner: &str) -> StreamInfo {
    StreamInfo {
        kind,
        owner: owner.into(),
        client_id: "c".into(),
        session: None,
        opened_at: 1,
    }
}

fn event_stream(body: Body) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    r
}

/// An event stream that never ends by itself.
pub(super) fn endless() -> Response {
    event_stream(Body::from_stream(futures::stream::pending::<
        Result<Bytes, Infallible>,
    >()))
}

#[tokio::test]
async fn other_responses_are_neither_registered_nor_wrapped() {
    let streams = Arc::new(OpenStreams::default());
    let json = axum::Json(serde_json::json!({"ok": true})).into_response();
    let r = watch(
        &streams,
        "h".into(),
        100,
        json,
        info(OpenKind::StreamablePost, "alice"),
    );
    assert!(streams.is_empty());
    let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"{\"ok\":true}");
}

#[tokio::test]
async fn a_stream_is_registered_while_its_body_lives_and_ends_when_ended() {
    let streams = Arc::new(OpenStreams::default());
    let r = watch(
        &streams,
        "h1".into(),
        100,
        endless(),
        info(OpenKind::StreamableGet, "alice"),
    );
    let other = watch(
        &streams,
        "h2".into(),
        100,
        event_stream(Body::from("data: x\n\n")),
        info(OpenKind::StreamableGet, "alice"),
    );
    assert_eq!(streams.len(), 2);
    drop(other);
    assert_eq!(streams.len(), 1, "a dropped body leaves the registry");
    assert_eq!(streams.tokens(), ["h1"]);

    let mut data = r.into_body().into_data_stream();
    let next = tokio::time::timeout(Duration::from_millis(50), data.next()).await;
    assert!(next.is_err(), "the stream is open");
    let ender = tokio::spawn({
        let streams = streams.clone();
        async move { streams.end_tokens(&["h1"]) }
    });
    assert_eq!(ender.await.unwrap(), 1);
    let next = tokio::time::timeout(Duration::from_secs(5), data.next()).await;
    assert!(
        matches!(next, Ok(None)),
        "the body ends cleanly once its stream is ended"
    );
    assert!(streams.is_empty());
}

#[tokio::test]
async fn a_stream_ended_for_expiry_ends_at_its_expires_at_and_not_before() {
    let streams = Arc::new(OpenStreams::default());
    let r = watch(
        &streams,
        "h".into(),
        100,
        endless(),
        info(OpenKind::StreamableGet, "alice"),
    );
    assert_eq!(streams.end_expired(99), 0);
    assert_eq!(streams.end_expired(100), 1);
    let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
    assert!(body.is_empty());
}

#[tokio::test]
async fn streams_are_checked_once_per_token_and_leave_its_index_when_gone() {
    let streams = Arc::new(OpenStreams::default());
    let mut alice: Vec<Response> = (0..3)
        .map(|_| {
            watch(
                &streams,
                "ha".into(),
                100,
                endless(),
                info(OpenKind::StreamableGet, "alice"),
            )
        })
        .collect();
    let bob = watch(
        &streams,
        "hb".into(),
        200,
        endless(),
        info(OpenKind::StreamableGet, "bob"),
    );
    let mut tokens = streams.tokens();
    tokens.sort();
    assert_eq!(tokens, ["ha", "hb"], "one entry per token");
    drop(alice.pop());
    assert_eq!(streams.tokens().len(), 2, "ha still has two streams");
    assert_eq!(
        streams.end_expired(150),
        2,
        "alice's token expired: both of its streams end, bob's does not"
    );
    assert_eq!(streams.tokens(), ["hb"]);
    assert_eq!(streams.len(), 1);
    for r in alice {
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        assert!(body.is_empty(), "an ended stream's body finishes");
    }
    assert_eq!(streams.end_tokens(&["ha"]), 0);
    drop(bob);
    assert!(streams.is_empty());
    assert!(streams.tokens().is_empty(), "no stream, no token");
}

#[tokio::test]
async fn a_stream_is_listed_and_ended_only_for_its_owner() {
    let streams = Arc::new(OpenStreams::default());
    let mut session = info(OpenKind::StreamableGet, "alice");
    session.session = Some("sid-a".into());
    let _a = watch(&streams, "ha".into(), 100, endless(), session);
    let _b = watch(
        &streams,
        "hb".into(),
        100,
        endless(),
        info(OpenKind::Listen, "bob"),
    );
    let alice = streams.of_owner("alice");
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].kind, OpenKind::StreamableGet);
    assert_eq!(
        alice[0].session_handle.as_deref(),
        Some(super::super::sessions::handle("sid-a").as_str())
    );
    let bob = streams.of_owner("bob");
    assert_eq!(bob.len(), 1);
    assert!(
        !streams.end_one("alice", bob[0].id),
        "alice's page cannot end bob's stream"
    );
    assert_eq!(streams.len(), 2);
    assert!(streams.end_one("bob", bob[0].id));
    assert_eq!(streams.end_of_session("sid-a"), 1);
    assert!(streams.is_empty());
}
