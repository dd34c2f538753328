//! The stateless 2026-07-28 revision of Streamable HTTP: no initialize, no
//! session; every POST carries `MCP-Protocol-Version`, `Mcp-Method` (and
//! `Mcp-Name`) and the protocol metadata in `_meta`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{MCP, parse_sse, signed_in, stateless_post};

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

/// A stateless POST of `body` with the 2026-07-28 headers (`Mcp-Name`
/// when `name` is given).
fn post(
    app: &TestApp,
    token: &str,
    method: &str,
    name: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    stateless_post(app, token, method, name).json(body)
}

#[tokio::test]
async fn stateless_requests_work_without_a_session_and_know_the_caller() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app, "alice").await;
    let post = |method, name, body: Value| post(&app, &token, method, name, &body).send();
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

/// A stateless `tools/call` (with `Mcp-Name`), its response's content type
/// and body.
async fn stateless_call(app: &TestApp, token: &str, name: &str, params: Value) -> (String, String) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let r = post(app, token, "tools/call", Some(name), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (ct, r.text().await.unwrap())
}

#[tokio::test]
async fn a_stateless_answer_with_nothing_before_it_is_one_json_body() {
    let app = spawn_app().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (ct, body) = stateless_call(
        &app,
        &token,
        "echo",
        json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": meta()}),
    )
    .await;
    assert!(ct.starts_with("application/json"), "{ct}: {body}");
    let m: Value = serde_json::from_str(&body).expect("the body is one JSON-RPC message");
    assert_eq!(m["id"], 7, "{m}");
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_call_that_reports_progress_is_answered_as_an_event_stream_with_every_step() {
    use crate::gateway_support::{fixture, spawn_gateway};
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut m = meta();
    m["progressToken"] = json!("p-1");
    let (ct, body) = stateless_call(
        &app,
        &token,
        "fx_slow",
        json!({"name": "fx_slow", "arguments": {"steps": 3, "step_ms": 10}, "_meta": m}),
    )
    .await;
    assert!(ct.starts_with("text/event-stream"), "{ct}: {body}");
    let messages: Vec<Value> = parse_sse(&body)
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| e.json())
        .collect();
    let mut steps: Vec<f64> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .inspect(|m| assert_eq!(m["params"]["progressToken"], "p-1", "{m}"))
        .filter_map(|m| m["params"]["progress"].as_f64())
        .collect();
    steps.sort_by(f64::total_cmp);
    assert_eq!(steps, vec![1.0, 2.0, 3.0], "{body}");
    let last = messages.last().expect("messages");
    assert_eq!(last["id"], 7, "the result comes last: {body}");
    assert_eq!(last["result"]["content"][0]["text"], "done", "{body}");
}
