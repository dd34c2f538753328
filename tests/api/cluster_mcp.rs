//! Several instances on one PostgreSQL database (docs/scaling.md): a
//! client's consecutive requests reach different instances, as behind a
//! round-robin load balancer. Each test starts two servers, `a` and `b`,
//! on a fresh database with the same public URL, and talks to each directly.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster_support::{two_instances, within};
use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{
    MCP, McpClient, SseReader, bearer, header, initialize_body, initialized_notification, signed_in,
};

const VERSION: &str = "2025-06-18";

fn whoami_user(m: &Value) -> String {
    m["result"]["structuredContent"]["user"]
        .as_str()
        .unwrap_or_else(|| panic!("{m}"))
        .to_string()
}

async fn tools_status(app: &TestApp, token: &str) -> StatusCode {
    app.http
        .get(app.url("/tools"))
        .header("authorization", bearer(token))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_streamable_http_session_initialised_on_one_instance_continues_on_another() {
    let (_db, a, b) = two_instances().await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;

    let mut client = McpClient::new(&a, &alice);
    client.initialize(VERSION).await;
    let session = client.session.clone().unwrap();

    // Another user's token with that session id on b, which has never seen
    // it: 404, exactly like an unknown session.
    let mut thief = McpClient::new(&b, &bob);
    thief.session = Some(session.clone());
    thief.version = Some(VERSION.into());
    let (r, _) = thief.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), "Not Found: Session not found");

    // The owner continues the session on b, then on a again.
    client.url = b.url(MCP);
    let who = client.call_tool("whoami", json!({})).await;
    assert_eq!(whoami_user(&who), "alice");
    let tools = client.request("tools/list", json!({})).await;
    assert!(
        tools["result"]["tools"].as_array().unwrap().len() >= 3,
        "{tools}"
    );
    client.url = a.url(MCP);
    let echo = client.call_tool("echo", json!({"text": "back on a"})).await;
    assert!(echo.to_string().contains("back on a"), "{echo}");
    assert_eq!(client.session.as_deref(), Some(session.as_str()));

    // b now holds the session in memory, and still refuses bob.
    let (r, _) = thief.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // An id no instance issued is unknown on both.
    let mut stranger = McpClient::new(&b, &alice);
    stranger.session = Some("not-a-session".into());
    stranger.version = Some(VERSION.into());
    let (r, _) = stranger.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_deleted_on_one_instance_is_gone_on_every_instance() {
    let (_db, a, b) = two_instances().await;
    let (_, alice) = signed_in(&a, "alice").await;
    let mut client = McpClient::new(&a, &alice);
    client.initialize(VERSION).await;
    client.url = b.url(MCP);
    client.call_tool("whoami", json!({})).await; // now in memory on both

    let r = client
        .http
        .delete(b.url(MCP))
        .header("authorization", bearer(&alice))
        .header("mcp-session-id", client.session.clone().unwrap())
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    for app in [&b, &a] {
        client.url = app.url(MCP);
        let gone = within(Duration::from_secs(1), || {
            let (http, url, token, session) = (
                client.http.clone(),
                client.url.clone(),
                alice.clone(),
                client.session.clone().unwrap(),
            );
            async move {
                let r = http
                    .post(url)
                    .header("authorization", bearer(&token))
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", VERSION)
                    .body(json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}).to_string())
                    .send()
                    .await
                    .unwrap();
                r.status() == StatusCode::NOT_FOUND
            }
        })
        .await;
        assert!(gone, "the deleted session is unknown on {}", app.base);
    }
}

async fn open_sse(app: &TestApp, token: &str) -> (SseReader, String) {
    let r = app
        .http
        .get(app.url("/sse"))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut events = SseReader::new(r);
    let first = events.next_event().await.expect("endpoint event");
    assert_eq!(first.event.as_deref(), Some("endpoint"));
    (events, first.data)
}

async fn post_message(app: &TestApp, path: &str, token: &str, body: &Value) -> StatusCode {
    app.http
        .post(app.url(path))
        .header("authorization", bearer(token))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

async fn reply(events: &mut SseReader, id: i64) -> Value {
    loop {
        let e = events.next_event().await.expect("the stream is open");
        if e.data.is_empty() {
            continue;
        }
        let m = e.json();
        if m["id"] == json!(id) {
            return m;
        }
    }
}

#[tokio::test]
async fn a_legacy_sse_message_posted_to_another_instance_is_answered_on_the_stream() {
    let (_db, a, b) = two_instances().await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;
    let (mut events, path) = open_sse(&a, &alice).await;

    // The handshake through b, a tool call through a, then through b.
    let init = initialize_body(1, "2024-11-05");
    assert_eq!(
        post_message(&b, &path, &alice, &init).await,
        StatusCode::ACCEPTED
    );
    let m = reply(&mut events, 1).await;
    assert_eq!(m["result"]["protocolVersion"], "2024-11-05", "{m}");
    assert_eq!(
        post_message(&b, &path, &alice, &initialized_notification()).await,
        StatusCode::ACCEPTED
    );
    for (id, app) in [(2, &a), (3, &b), (4, &b), (5, &a)] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}});
        assert_eq!(
            post_message(app, &path, &alice, &call).await,
            StatusCode::ACCEPTED
        );
        // whoami sees the caller the POST's instance authenticated.
        assert_eq!(whoami_user(&reply(&mut events, id).await), "alice");
    }

    // Another user's token, and an unknown session, get 404 on b.
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    assert_eq!(
        post_message(&b, &path, &bob, &call).await,
        StatusCode::NOT_FOUND
    );
    let unknown = format!("/messages/?session_id={}", "0".repeat(32));
    assert_eq!(
        post_message(&b, &unknown, &alice, &call).await,
        StatusCode::NOT_FOUND
    );

    // Once the stream closes, the session is gone everywhere.
    drop(events);
    let gone = within(Duration::from_secs(2), || async {
        post_message(&b, &path, &alice, &call).await == StatusCode::NOT_FOUND
    })
    .await;
    assert!(gone, "the closed session is unknown on b");
}

#[tokio::test]
async fn a_token_revoked_on_one_instance_is_refused_by_the_other_within_a_second() {
    let (_db, a, b) = two_instances().await;
    let (client_id, token) = signed_in(&a, "alice").await;
    for app in [&a, &b, &a, &b] {
        assert_eq!(tools_status(app, &token).await, StatusCode::OK); // cached on both
    }
    let r = a
        .http
        .post(a.url("/v1/oauth/revoke"))
        .form(&[("token", token.as_str()), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(tools_status(&a, &token).await, StatusCode::UNAUTHORIZED);
    let refused = within(Duration::from_secs(1), || async {
        tools_status(&b, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "b refuses the revoked token within a second");
}

#[tokio::test]
async fn a_single_sqlite_instance_keeps_its_sessions_in_memory_only() {
    let app = spawn_app().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let mut client = McpClient::new(&app, &alice);
    client.initialize(VERSION).await;
    let session = client.session.clone().unwrap();
    let (_events, path) = open_sse(&app, &alice).await;
    let sse_id = path.rsplit('=').next().unwrap().to_string();
    assert_eq!(app.store.mcp_session(&session).await.unwrap(), None);
    assert_eq!(app.store.sse_session(&sse_id).await.unwrap(), None);
    let r = client
        .post(&initialized_notification())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(
        header(&r, "mcp-session-id").is_none() || header(&r, "mcp-session-id") == Some(session)
    );
}
