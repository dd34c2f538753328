//! The stateless 2026-07-28 revision of Streamable HTTP: no initialize, no
//! session; every POST carries `MCP-Protocol-Version`, `Mcp-Method` (and
//! `Mcp-Name`) and the protocol metadata in `_meta`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::mcp_support::{MCP, bearer, signed_in};

const V: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// The JSON-RPC message in a JSON or SSE response body.
fn message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .find_map(|d| serde_json::from_str::<Value>(d).ok())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {body:?}"))
}

#[tokio::test]
async fn stateless_requests_work_without_a_session_and_know_the_caller() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app, "alice").await;
    let post = |method: &'static str, name: Option<&'static str>, body: Value| {
        let mut rb = app
            .http
            .post(app.url(MCP))
            .header("authorization", bearer(&token))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", V)
            .header("mcp-method", method)
            .json(&body);
        if let Some(n) = name {
            rb = rb.header("mcp-name", n);
        }
        rb.send()
    };
    let r = post(
        "server/discover",
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get("mcp-session-id").is_none(),
        "no session in 2026-07-28"
    );
    let m = message(&r.text().await.unwrap());
    let versions = m["result"]["supportedVersions"].as_array().unwrap();
    assert!(versions.iter().any(|v| v == V), "{m}");

    let r = post(
        "tools/call",
        Some("whoami"),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "whoami", "arguments": {}, "_meta": meta()}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m = message(&r.text().await.unwrap());
    assert_eq!(m["result"]["structuredContent"]["user"], "alice", "{m}");
}

#[tokio::test]
async fn stateless_requests_still_need_a_token() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url(MCP))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V)
        .header("mcp-method", "server/discover")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
