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

/// A stateless request's answer: status, content type (without
/// parameters) and the JSON-RPC messages of its body.
async fn answer(r: reqwest::Response) -> (StatusCode, String, Vec<Value>) {
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = r.text().await.unwrap();
    let messages = if ct == "text/event-stream" {
        parse_sse(&body)
            .iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| e.json())
            .collect()
    } else {
        vec![serde_json::from_str(&body).unwrap_or_else(|_| json!({ "text": body }))]
    };
    (status, ct, messages)
}

/// mcpgate serves the usual stateless requests itself
/// (`src/mcp/inline/stateless.rs`) and leaves the rest to rmcp. A request
/// with its `MCP-Protocol-Version` header sent twice (the same value) is
/// one it leaves to rmcp, which reads the first; so each request here is
/// sent both ways, and the answers must be the same: status, content type
/// and messages, results and errors alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_requests_get_the_same_answers_served_inline_as_through_rmcp() {
    use crate::gateway_support::{fixture, spawn_gateway};
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let request = |method: &str, params: Value| {
        let mut params = params;
        params["_meta"] = meta();
        json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params})
    };
    let cases: Vec<(&str, Option<&str>, Value)> = vec![
        ("ping", None, request("ping", json!({}))),
        ("tools/list", None, request("tools/list", json!({}))),
        (
            "tools/call",
            Some("echo"),
            request(
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "hi"}}),
            ),
        ),
        (
            "tools/call",
            Some("whoami"),
            request("tools/call", json!({"name": "whoami", "arguments": {}})),
        ),
        (
            "tools/call",
            Some("fx_add"),
            request(
                "tools/call",
                json!({"name": "fx_add", "arguments": {"a": 2, "b": 3}}),
            ),
        ),
        // Not a tool of this caller: an error in band.
        (
            "tools/call",
            Some("nope"),
            request("tools/call", json!({"name": "nope", "arguments": {}})),
        ),
        // Arguments its schema refuses.
        (
            "tools/call",
            Some("fx_add"),
            request(
                "tools/call",
                json!({"name": "fx_add", "arguments": {"a": "two"}}),
            ),
        ),
        ("prompts/list", None, request("prompts/list", json!({}))),
        ("resources/list", None, request("resources/list", json!({}))),
        (
            "resources/templates/list",
            None,
            request("resources/templates/list", json!({})),
        ),
        (
            "resources/read",
            Some("fixture://none"),
            request("resources/read", json!({"uri": "fixture://none"})),
        ),
        // An upstream that asks the client something it did not declare
        // it can answer (no elicitation capability).
        (
            "tools/call",
            Some("fx_elicit"),
            request(
                "tools/call",
                json!({"name": "fx_elicit", "arguments": {"message": "?"}}),
            ),
        ),
        (
            "prompts/get",
            Some("fx_greet"),
            request(
                "prompts/get",
                json!({"name": "fx_greet", "arguments": {"name": "Ann"}}),
            ),
        ),
        (
            "prompts/get",
            Some("nope"),
            request("prompts/get", json!({"name": "nope"})),
        ),
        (
            "completion/complete",
            None,
            request(
                "completion/complete",
                json!({
            "ref": {"type": "ref/prompt", "name": "fx_greet"},
            "argument": {"name": "name", "value": "A"}}),
            ),
        ),
        // A cursor that is not one of ours.
        (
            "tools/list",
            None,
            request("tools/list", json!({"cursor": "not-a-cursor"})),
        ),
    ];
    let mut statuses = Vec::new();
    for (method, name, body) in &cases {
        let inline = stateless_post(&app, &token, method, *name)
            .json(body)
            .send()
            .await
            .unwrap();
        let through_rmcp = stateless_post(&app, &token, method, *name)
            .header("mcp-protocol-version", V)
            .json(body)
            .send()
            .await
            .unwrap();
        let (a, b) = (answer(inline).await, answer(through_rmcp).await);
        assert_eq!(a, b, "{method} {name:?}: inline and through rmcp");
        assert!(!a.2.is_empty(), "{method}: an answer");
        statuses.push(a.0);
    }
    assert_eq!(statuses.len(), cases.len());
    // Results and in-band errors are 200; an undeclared capability is 400
    // (MCP 2026-07-28), on both paths.
    assert!(statuses.contains(&StatusCode::OK));
    assert!(statuses.contains(&StatusCode::BAD_REQUEST), "{statuses:?}");
    // The lists hold what they should (so that the comparison above
    // compared something).
    let list = stateless_post(&app, &token, "tools/list", None)
        .json(&request("tools/list", json!({})))
        .send()
        .await
        .unwrap();
    let (status, ct, messages) = answer(list).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    let names: Vec<&str> = messages[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"fx_add"),
        "{names:?}"
    );
}

/// Stateless requests of two users served at once share the handler's
/// template and a peer that reaches no client: each answer and each
/// progress notification still reaches only the user whose request it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stateless_requests_of_two_users_each_get_only_their_own_answers() {
    use crate::gateway_support::{fixture, spawn_gateway};
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let slow = |token: String, progress: &'static str| {
        let app = &app;
        async move {
            let mut m = meta();
            m["progressToken"] = json!(progress);
            let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                              "params": {"name": "fx_slow", "arguments": {"steps": 3, "step_ms": 20}, "_meta": m}});
            let r = post(app, &token, "tools/call", Some("fx_slow"), &body)
                .send()
                .await
                .unwrap();
            answer(r).await
        }
    };
    let who = |token: String| {
        let app = &app;
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                              "params": {"name": "whoami", "arguments": {}, "_meta": meta()}});
            let r = post(app, &token, "tools/call", Some("whoami"), &body)
                .send()
                .await
                .unwrap();
            answer(r).await.2[0]["result"]["structuredContent"]["user"].clone()
        }
    };
    for _ in 0..3 {
        let (a, b, wa, wb) = tokio::join!(
            slow(alice.clone(), "alice-p"),
            slow(bob.clone(), "bob-p"),
            who(alice.clone()),
            who(bob.clone())
        );
        assert_eq!((wa, wb), (json!("alice"), json!("bob")));
        for ((_, ct, messages), mine) in [(a, "alice-p"), (b, "bob-p")] {
            assert_eq!(ct, "text/event-stream");
            let tokens: Vec<&Value> = messages
                .iter()
                .filter(|m| m["method"] == "notifications/progress")
                .map(|m| &m["params"]["progressToken"])
                .collect();
            assert_eq!(tokens.len(), 3, "{messages:?}");
            assert!(tokens.iter().all(|t| *t == mine), "{mine}: {messages:?}");
            assert_eq!(
                messages.last().unwrap()["result"]["content"][0]["text"],
                "done"
            );
        }
    }
}
