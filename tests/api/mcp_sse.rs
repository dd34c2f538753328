//! The legacy HTTP+SSE transport (MCP 2024-11-05): `GET /sse` opens a
//! stream whose first event names the message endpoint; replies to
//! `POST /messages/?session_id=…` arrive on the stream.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{
    SseReader, bearer, header, initialize_body, initialized_notification, signed_in,
};

/// Opens a legacy stream at `path`; returns the reader (positioned after
/// the endpoint event) and the message URL path it named.
pub(crate) async fn open(app: &TestApp, path: &str, token: &str) -> (SseReader, String) {
    let r = app
        .http
        .get(app.url(path))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let ct = header(&r, "content-type").unwrap();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut events = SseReader::new(r);
    let first = events.next_event().await.expect("an endpoint event");
    assert_eq!(first.event.as_deref(), Some("endpoint"), "{first:?}");
    // The message path lies below the same resource as the stream.
    let prefix = if path == "/v1/ai/mcp/sse" {
        "/v1/ai/mcp/messages/?session_id="
    } else {
        "/messages/?session_id="
    };
    let id = first
        .data
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("endpoint data {:?}", first.data));
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    (events, first.data)
}

async fn post(
    app: &TestApp,
    path: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("authorization", bearer(token))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Posts a message and asserts `202 Accepted`.
pub(crate) async fn accepted(app: &TestApp, path: &str, token: &str, body: &Value) {
    let r = post(app, path, token, body.to_string()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{body}");
    assert_eq!(r.text().await.unwrap(), "Accepted");
}

/// Reads the next `message` event with JSON-RPC id `id`.
pub(crate) async fn reply(events: &mut SseReader, id: i64) -> Value {
    loop {
        let e = events.next_event().await.expect("the stream is open");
        if e.data.is_empty() {
            continue;
        }
        assert_eq!(e.event.as_deref(), Some("message"), "{e:?}");
        let m = e.json();
        if m["id"] == json!(id) {
            return m;
        }
    }
}

#[tokio::test]
async fn get_sse_opens_a_stream_that_starts_with_the_endpoint_event() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let (_a, first) = open(&app, "/sse", &at).await;
    let (_b, second) = open(&app, "/v1/ai/mcp/sse", &at).await;
    assert_ne!(first, second, "each stream is its own session");
}

#[tokio::test]
async fn messages_are_accepted_and_answered_on_the_stream() {
    let app = spawn_app().await;
    let (client_id, at) = signed_in(&app, "alice").await;
    let (mut events, endpoint) = open(&app, "/sse", &at).await;

    accepted(&app, &endpoint, &at, &initialize_body(1, "2024-11-05")).await;
    let m = reply(&mut events, 1).await;
    assert_eq!(m["jsonrpc"], "2.0");
    assert_eq!(m["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(m["result"]["serverInfo"]["name"], "mcpgate");
    accepted(&app, &endpoint, &at, &initialized_notification()).await;

    accepted(
        &app,
        &endpoint,
        &at,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
    )
    .await;
    let m = reply(&mut events, 2).await;
    assert_eq!(m["result"]["tools"].as_array().unwrap().len(), 3, "{m}");

    accepted(
        &app,
        &endpoint,
        &at,
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    let m = reply(&mut events, 3).await;
    assert_eq!(m["result"]["structuredContent"]["user"], "alice", "{m}");
    assert_eq!(
        m["result"]["structuredContent"]["client_id"],
        json!(client_id)
    );

    // The same message path below the MCP base works too.
    let below = endpoint.replace("/messages/", "/v1/ai/mcp/messages/");
    accepted(
        &app,
        &below,
        &at,
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}),
    )
    .await;
    let m = reply(&mut events, 4).await;
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
}

#[tokio::test]
async fn a_stream_opened_at_the_mcp_path_works_the_same() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let (mut events, endpoint) = open(&app, "/v1/ai/mcp/sse", &at).await;
    accepted(&app, &endpoint, &at, &initialize_body(1, "2024-11-05")).await;
    assert_eq!(
        reply(&mut events, 1).await["result"]["protocolVersion"],
        "2024-11-05"
    );
}

#[tokio::test]
async fn bad_message_posts_are_refused() {
    let app = spawn_app().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let (mut events, endpoint) = open(&app, "/sse", &alice).await;
    let body = initialize_body(1, "2024-11-05").to_string();

    let r = post(&app, "/messages/", &alice, body.clone()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("session_id is missing"));

    let r = post(&app, "/messages/?session_id=not-hex", &alice, body.clone()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("session_id is malformed"));

    let r = post(
        &app,
        "/messages/?session_id=0123456789abcdef0123456789abcdef",
        &alice,
        body.clone(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Another user's token on alice's session: as if it did not exist.
    let r = post(&app, &endpoint, &bob, body.clone()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = post(&app, &endpoint, &alice, "{not json").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("not a JSON-RPC message"));

    // None of that disturbed the session.
    accepted(&app, &endpoint, &alice, &initialize_body(1, "2024-11-05")).await;
    assert_eq!(
        reply(&mut events, 1).await["result"]["protocolVersion"],
        "2024-11-05"
    );
}

#[tokio::test]
async fn closing_the_stream_ends_the_session() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let (mut events, endpoint) = open(&app, "/sse", &at).await;
    accepted(&app, &endpoint, &at, &initialize_body(1, "2024-11-05")).await;
    reply(&mut events, 1).await;
    drop(events);

    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = post(&app, &endpoint, &at, ping.clone()).await.status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(
            Instant::now() < deadline,
            "the session is still open 5 s after its stream closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
