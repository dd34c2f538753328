//! The admin console's view of a user's open MCP sessions and streams
//! (docs/operations.md "Admin console"): each grant lists the Streamable
//! HTTP sessions and the event streams its tokens opened on this instance,
//! "End" closes one, and revoking a grant ends its sessions. Isolation: the
//! page of one user shows none of another's, and a session handle or stream
//! number of another user's cannot be ended through it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::admin::{act, admin_browser, page};
use crate::helpers::{TestApp, hidden_inputs, spawn_app};
use crate::mcp_support::{MCP, McpClient, bearer};

const VERSION: &str = "2025-06-18";

fn handle(session: &str) -> String {
    hex::encode(Sha256::digest(session.as_bytes()))
}

fn access(t: &serde_json::Value) -> String {
    t["access_token"].as_str().unwrap().to_string()
}

/// A signed-in user's initialized Streamable HTTP session.
async fn session_of(app: &TestApp, user: &str) -> (McpClient, String) {
    let (_, tokens) = app.full_flow(user).await;
    let mut client = McpClient::new(app, &access(&tokens));
    client.initialize(VERSION).await;
    let list = client.request("tools/list", json!({})).await;
    assert!(list["result"]["tools"].is_array(), "{list}");
    (client, access(&tokens))
}

/// The session's standalone GET stream.
async fn get_stream(app: &TestApp, client: &McpClient) -> reqwest::Response {
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&client.token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", client.session.clone().unwrap())
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r
}

/// A legacy SSE stream (its body is kept open by holding the response).
async fn legacy_sse(app: &TestApp, token: &str) -> reqwest::Response {
    let mut r = app
        .http
        .get(app.url("/sse"))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The endpoint event: the stream is registered once its headers left.
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("the endpoint event")
        .unwrap();
    assert!(first.is_some());
    r
}

/// Whether the stream's body ends within `limit`.
async fn ends_within(r: &mut reqwest::Response, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, r.chunk()).await {
            Err(_) => return false,
            Ok(Ok(None)) | Ok(Err(_)) => return true,
            Ok(Ok(Some(_))) => {}
        }
    }
}

/// Whether a request of the session still reaches it.
async fn session_alive(client: &mut McpClient) -> bool {
    let (r, _) = client.send("tools/list", json!({})).await;
    match r.status() {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        s => panic!("unexpected {s}"),
    }
}

/// The values of the page's hidden inputs named `name`.
fn inputs(html: &str, name: &str) -> Vec<String> {
    hidden_inputs(html)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test]
async fn a_users_page_lists_their_open_sessions_and_streams_and_ends_only_the_one_chosen() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    app.add_user("carol").await;
    let (mut bob, _) = session_of(&app, "bob").await;
    let bob_session = bob.session.clone().unwrap();
    let mut bob_get = get_stream(&app, &bob).await;
    let (mut carol, carol_token) = session_of(&app, "carol").await;
    let carol_session = carol.session.clone().unwrap();
    let mut carol_sse = legacy_sse(&app, &carol_token).await;
    let b = admin_browser(&app, "alice").await;

    let html = page(&b, "/admin/user?name=bob").await;
    assert!(html.contains("Open MCP sessions"), "{html}");
    assert!(html.contains(&handle(&bob_session)[..12]), "{html}");
    assert!(html.contains(VERSION), "the protocol version: {html}");
    assert!(html.contains("Streamable HTTP GET stream"), "{html}");
    assert!(
        !html.contains(&bob_session),
        "a session id is a secret: never in the page"
    );
    assert!(!html.contains(&handle(&carol_session)[..12]), "{html}");
    assert!(!html.contains("legacy SSE session"), "carol's: {html}");
    assert_eq!(inputs(&html, "session"), [handle(&bob_session)]);

    let carol_page = page(&b, "/admin/user?name=carol").await;
    assert!(carol_page.contains("legacy SSE session"), "{carol_page}");
    assert!(!carol_page.contains(&bob_session), "{carol_page}");
    let carol_stream = inputs(&carol_page, "stream");
    assert_eq!(carol_stream.len(), 1, "{carol_page}");
    let carol_handle = inputs(&carol_page, "session");
    assert_eq!(carol_handle, [handle(&carol_session)]);

    // carol's session and stream cannot be ended through bob's page.
    let (s, html) = act(
        &b,
        &[
            ("action", "session.end"),
            ("username", "bob"),
            ("session", &carol_handle[0]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("no such open MCP session"), "{html}");
    let (s, _) = act(
        &b,
        &[
            ("action", "stream.end"),
            ("username", "bob"),
            ("stream", &carol_stream[0]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!ends_within(&mut carol_sse, Duration::from_millis(300)).await);
    assert!(session_alive(&mut carol).await);

    // bob's session ends, with its GET stream; carol's stay.
    let (s, html) = act(
        &b,
        &[
            ("action", "session.end"),
            ("username", "bob"),
            ("session", &handle(&bob_session)),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("MCP session ended."), "{html}");
    assert!(!html.contains(&handle(&bob_session)[..12]), "{html}");
    assert!(ends_within(&mut bob_get, Duration::from_secs(5)).await);
    assert!(!session_alive(&mut bob).await, "a request of it gets 404");
    assert!(session_alive(&mut carol).await);
    assert!(!ends_within(&mut carol_sse, Duration::from_millis(300)).await);

    // carol's stream ends through her page.
    let (s, html) = act(
        &b,
        &[
            ("action", "stream.end"),
            ("username", "carol"),
            ("stream", &carol_stream[0]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(ends_within(&mut carol_sse, Duration::from_secs(5)).await);
    assert!(
        session_alive(&mut carol).await,
        "her session is another thing"
    );

    // Both actions are in the audit log, by alice.
    app.auth.audit.flush().await;
    let html = page(&b, "/admin/audit?user=bob").await;
    assert!(
        html.contains("&quot;action&quot;:&quot;session.end&quot;"),
        "{html}"
    );
    let html = page(&b, "/admin/audit?user=carol").await;
    assert!(
        html.contains("&quot;action&quot;:&quot;stream.end&quot;"),
        "{html}"
    );
}

#[tokio::test]
async fn revoking_a_grant_ends_its_sessions_and_no_one_elses() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    app.add_user("carol").await;
    let (bob, _) = session_of(&app, "bob").await;
    let bob_session = bob.session.clone().unwrap();
    let (mut carol, _) = session_of(&app, "carol").await;
    let b = admin_browser(&app, "alice").await;
    let html = page(&b, "/admin/user?name=bob").await;
    let grant_id = inputs(&html, "grant_id").pop().expect("bob's grant");

    let (s, html) = act(
        &b,
        &[
            ("action", "grant.revoke"),
            ("username", "bob"),
            ("grant_id", &grant_id),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    // With a new token of bob's, the old session is gone: 404.
    let (_, tokens) = app.full_flow("bob").await;
    let mut again = McpClient::new(&app, &access(&tokens));
    again.session = Some(bob_session);
    again.version = Some(VERSION.into());
    assert!(!session_alive(&mut again).await);
    assert!(session_alive(&mut carol).await);
}

#[tokio::test]
async fn with_several_instances_a_page_lists_what_its_instance_served_and_ending_closes_it_everywhere()
 {
    let (_db, a, b) = crate::cluster_support::two_instances().await;
    a.add_user("alice").await;
    let (_, bob_token) = crate::mcp_support::signed_in(&a, "bob").await;
    let (_, carol_token) = crate::mcp_support::signed_in(&a, "carol").await;
    let mut bob = McpClient::new(&a, &bob_token);
    bob.initialize(VERSION).await;
    let bob_session = bob.session.clone().unwrap();
    let mut carol = McpClient::new(&a, &carol_token);
    carol.initialize(VERSION).await;
    // bob's session continues on b, which learns its owner from the database.
    bob.url = b.url(MCP);
    assert!(session_alive(&mut bob).await);

    let admin = admin_browser(&b, "alice").await;
    let html = page(&admin, "/admin/user?name=bob").await;
    assert!(
        html.contains("<code>b</code>"),
        "names its instance: {html}"
    );
    assert_eq!(inputs(&html, "session"), [handle(&bob_session)]);
    let html = page(&admin, "/admin/user?name=carol").await;
    assert!(
        inputs(&html, "session").is_empty(),
        "carol's session was only ever on a: {html}"
    );

    let (s, html) = act(
        &admin,
        &[
            ("action", "session.end"),
            ("username", "bob"),
            ("session", &handle(&bob_session)),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    // Gone on b at once, and on a once the bus has told it.
    assert!(!session_alive(&mut bob).await);
    bob.url = a.url(MCP);
    let mut ended_on_a = false;
    for _ in 0..250 {
        if !session_alive(&mut bob).await {
            ended_on_a = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended_on_a, "the session is closed on a too");
    assert!(session_alive(&mut carol).await);
}

#[tokio::test]
async fn a_listen_stream_is_listed_as_one_and_ended_from_the_page() {
    use crate::gateway_support::{fixture, spawn_gateway};
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    app.add_user("alice").await;
    let (_, bob) = crate::mcp_support::signed_in(&app, "bob").await;
    let mut listen =
        crate::mcp_listen::Listen::open(&app, &bob, 5, json!({"toolsListChanged": true})).await;
    let admin = admin_browser(&app, "alice").await;
    let html = page(&admin, "/admin/user?name=bob").await;
    assert!(html.contains("subscriptions/listen stream"), "{html}");
    let stream = inputs(&html, "stream");
    assert_eq!(stream.len(), 1, "{html}");
    let (s, html) = act(
        &admin,
        &[
            ("action", "stream.end"),
            ("username", "bob"),
            ("stream", &stream[0]),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Stream ended."), "{html}");
    assert!(!html.contains("subscriptions/listen stream"), "{html}");
    assert_eq!(listen.next().await, None, "the stream ends");
}
