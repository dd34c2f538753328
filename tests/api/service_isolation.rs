//! Sessions opened with a service token (client credentials) belong to that
//! client: never served to a user's token nor to another client's service
//! token, and a user's session is never served to a service token.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};
use crate::machine_support::service_token;
use crate::mcp_support::{McpClient, signed_in};

async fn refused(app: &TestApp, owner: &McpClient, token: &str) {
    let mut thief = McpClient::new(app, token);
    thief.session = owner.session.clone();
    thief.version = owner.version.clone();
    let (r, _) = thief
        .send("tools/call", json!({"name": "whoami", "arguments": {}}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn service_and_user_sessions_are_never_served_across_subjects() {
    let app = spawn_app().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, job) = service_token(&app, "alice").await; // named like the user on purpose
    let (_, other) = service_token(&app, "Other job").await;

    let mut service_session = McpClient::new(&app, &job);
    service_session.initialize("2025-06-18").await;
    let mut user_session = McpClient::new(&app, &alice);
    user_session.initialize("2025-06-18").await;

    refused(&app, &service_session, &alice).await;
    refused(&app, &service_session, &other).await;
    refused(&app, &user_session, &job).await;

    // The owners still reach their own sessions.
    let m = service_session.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["structuredContent"]["subject_type"], "service");
    let m = user_session.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["structuredContent"]["user"], "alice");
}

#[tokio::test]
async fn a_legacy_sse_session_of_a_service_refuses_other_tokens() {
    let app = spawn_app().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, job) = service_token(&app, "Job").await;
    let (_, other) = service_token(&app, "Other").await;
    let r = app
        .http
        .get(app.url("/sse"))
        .header("authorization", format!("Bearer {job}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut reader = crate::mcp_support::SseReader::new(r);
    let endpoint = reader.next_event().await.expect("endpoint event");
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    let url = app.url(&endpoint.data);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for token in [&alice, &other] {
        let r = app
            .http
            .post(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{url}");
    }
    let r = app
        .http
        .post(&url)
        .header("authorization", format!("Bearer {job}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}
