//! `event_stream_keep_alive`: an open event stream with nothing to send
//! carries an SSE comment (a line that starts with `:`) that often, for
//! the legacy SSE stream (mcpgate's own transport) and the Streamable HTTP
//! GET stream (rmcp's, configured by mcpgate). The default is 15 s; these
//! tests set 1 s and allow 4 s for the first comment, so that a loaded CI
//! machine does not make them flaky while the default would fail them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{MCP, McpClient, bearer, insert_token};

const EVERY: Duration = Duration::from_secs(1);
const WITHIN: Duration = Duration::from_secs(4);
const VERSION: &str = "2025-06-18";

async fn app_and_token() -> (TestApp, String) {
    let app = spawn_app_with(|s| s.event_stream_keep_alive = EVERY).await;
    app.add_user("alice").await;
    let client = app.register_public("https://app.example/cb").await;
    let resource = app.resource();
    let token = insert_token(&app, "alice", &client, "mcp", &resource).await;
    (app, token)
}

/// Reads `resp` until a comment line arrives (how long it took), or
/// `WITHIN` passes (`None`); events before it (the legacy `endpoint`
/// event, a priming event) are skipped.
async fn first_comment(resp: &mut reqwest::Response) -> Option<Duration> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + WITHIN;
    let mut text = String::new();
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return None,
            Ok(Ok(Some(chunk))) => {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if text.lines().any(|l| l.starts_with(':')) {
                    return Some(start.elapsed());
                }
            }
            Ok(Ok(None)) => panic!("the stream ended; read {text:?}"),
            Ok(Err(e)) => panic!("the stream broke: {e}; read {text:?}"),
        }
    }
}

#[tokio::test]
async fn a_legacy_sse_stream_carries_a_keep_alive_comment_as_often_as_configured() {
    let (app, token) = app_and_token().await;
    let mut resp = app
        .http
        .get(app.url("/sse"))
        .header("authorization", bearer(&token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let took = first_comment(&mut resp).await;
    assert!(took.is_some(), "no keep-alive comment within {WITHIN:?}");
    // And again: it is periodic, not a one-off.
    assert!(first_comment(&mut resp).await.is_some(), "no second one");
}

#[tokio::test]
async fn a_streamable_http_get_stream_carries_a_keep_alive_comment_as_often_as_configured() {
    let (app, token) = app_and_token().await;
    let mut client = McpClient::new(&app, &token);
    client.initialize(VERSION).await;
    let session = client.session.clone().unwrap();
    let mut resp = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        first_comment(&mut resp).await.is_some(),
        "no keep-alive comment within {WITHIN:?}"
    );
    assert!(first_comment(&mut resp).await.is_some(), "no second one");
}
