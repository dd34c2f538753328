//! Requests of established Streamable HTTP sessions served inline
//! (`src/mcp/inline`): the answer is one JSON body unless something is sent
//! before the result; progress and the upstream's requests to the client
//! travel on the request's own response; cancellation, by notification or
//! by going away, reaches the upstream; the session's idle clock still runs;
//! whatever rmcp would refuse still gets rmcp's answer.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{
    WAIT, fixture, spawn_gateway, spawn_gateway_logging_cancellations, wait_for_cancellation,
};
use crate::helpers::spawn_app_with;
use crate::mcp_support::{McpClient, SseReader, header, signed_in};

fn call(id: i64, name: &str, arguments: Value, progress: Option<&str>) -> Value {
    let mut params = json!({"name": name, "arguments": arguments});
    if let Some(token) = progress {
        params["_meta"] = json!({"progressToken": token});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

fn content_type(r: &reqwest::Response) -> String {
    header(r, "content-type").unwrap_or_default()
}

#[tokio::test]
async fn a_request_in_a_session_is_answered_as_one_json_body() {
    let app = spawn_app_with(|_| {}).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;

    let r = c
        .post(&call(7, "echo", json!({"text": "inline"}), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        content_type(&r).starts_with("application/json"),
        "{}",
        content_type(&r)
    );
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["jsonrpc"], "2.0");
    assert_eq!(m["id"], 7);
    assert_eq!(m["result"]["content"][0]["text"], "inline", "{m}");

    // An error of the handler is a JSON-RPC error in the same form.
    let r = c
        .post(&call(8, "no_such_tool", json!({}), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["id"], 8);
    assert_eq!(m["error"]["code"], -32602, "{m}");
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_tool"),
        "{m}"
    );

    // ping, the smallest request.
    let r = c
        .post(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
        .send()
        .await
        .unwrap();
    let m: Value = r.json().await.unwrap();
    assert_eq!(m, json!({"jsonrpc": "2.0", "id": 9, "result": {}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_before_the_result_turns_the_answer_into_an_event_stream_of_that_request() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-11-25").await;

    let r = c
        .post(&call(
            3,
            "fx_slow",
            json!({"steps": 3, "step_ms": 10}),
            Some("tok-3"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        content_type(&r).starts_with("text/event-stream"),
        "{}",
        content_type(&r)
    );
    let mut events = SseReader::new(r);
    let mut progress = Vec::new();
    let result = loop {
        let e = tokio::time::timeout(WAIT, events.next_event())
            .await
            .expect("an event in time")
            .expect("the stream ends only after the result");
        // Inline streams are not resumable: no event ids, no priming event.
        assert_eq!(e.id, None, "{e:?}");
        let m = e.json();
        if m["method"] == "notifications/progress" {
            assert_eq!(m["params"]["progressToken"], "tok-3", "{m}");
            progress.push(m["params"]["progress"].as_f64().unwrap());
        } else {
            break m;
        }
    };
    assert_eq!(result["id"], 3);
    assert_eq!(result["result"]["content"][0]["text"], "done", "{result}");
    progress.sort_by(f64::total_cmp);
    assert_eq!(progress, vec![1.0, 2.0, 3.0]);
    assert!(
        events.next_event().await.is_none(),
        "the stream ends with the result"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstreams_request_to_the_client_comes_on_the_response_and_its_answer_is_posted() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;

    let r = c
        .post(&call(4, "fx_sample", json!({"prompt": "hi"}), None))
        .send()
        .await
        .unwrap();
    assert!(content_type(&r).starts_with("text/event-stream"));
    let mut events = SseReader::new(r);
    let asked = tokio::time::timeout(WAIT, events.next_event())
        .await
        .expect("the sampling request in time")
        .expect("a sampling request")
        .json();
    assert_eq!(asked["method"], "sampling/createMessage", "{asked}");
    assert_eq!(asked["params"]["messages"][0]["content"]["text"], "hi");
    let asked_id = asked["id"].clone();
    assert!(asked_id.is_string(), "mcpgate's own ids: {asked_id}");

    // A stray answer is not taken for it (rmcp gets it, and drops it).
    let stray = c
        .post(&json!({"jsonrpc": "2.0", "id": "mcpgate-999", "result": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), StatusCode::ACCEPTED);

    let answer = json!({"jsonrpc": "2.0", "id": asked_id, "result": {
        "role": "assistant",
        "content": {"type": "text", "text": "hello back"},
        "model": "test-model",
        "stopReason": "endTurn",
    }});
    let r = c.post(&answer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let result = tokio::time::timeout(WAIT, events.next_event())
        .await
        .expect("the result in time")
        .expect("the result")
        .json();
    assert_eq!(result["id"], 4);
    assert_eq!(
        result["result"]["content"][0]["text"], "sampled: hello back",
        "{result}"
    );

    // The same answer again is for nobody.
    let again = c.post(&answer).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
}

/// A long `fx_slow` call (request id `id`) of a fixture upstream that logs
/// its cancellations, running once its first progress notification came;
/// with the app, the client, the call's event stream and the log's path.
struct LongCall {
    _app: crate::helpers::TestApp,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    client: McpClient,
    events: SseReader,
}

async fn long_call(id: i64) -> LongCall {
    let (app, dir, log) = spawn_gateway_logging_cancellations().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut client = McpClient::new(&app, &at);
    client.initialize("2025-06-18").await;
    let r = client
        .post(&call(
            id,
            "fx_slow",
            json!({"steps": 400, "step_ms": 50}),
            Some("p"),
        ))
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(r);
    let first = events.next_event().await.expect("progress").json();
    assert_eq!(first["method"], "notifications/progress");
    assert!(!log.exists(), "nothing cancelled yet");
    LongCall {
        _app: app,
        _dir: dir,
        log,
        client,
        events,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_notification_for_an_inline_request_cancels_it_at_the_upstream() {
    let call = long_call(5).await;
    let r = call
        .client
        .post(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": 5, "reason": "the test cancels"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_for_cancellation(&call.log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_goes_away_mid_call_cancels_it_at_the_upstream() {
    let LongCall {
        _app,
        _dir,
        log,
        mut client,
        events,
    } = long_call(6).await;
    drop(events);
    wait_for_cancellation(&log).await;

    // The session and the upstream go on serving.
    let m = client
        .call_tool("fx_echo", json!({"text": "still here"}))
        .await;
    assert_eq!(m["result"]["content"][0]["text"], "still here", "{m}");
}

#[tokio::test]
async fn inline_requests_keep_the_session_alive_and_an_idle_session_still_closes() {
    let app = spawn_app_with(|s| s.mcp_session_idle_timeout = Duration::from_millis(1200)).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;

    // Busy for three times the idle timeout, through inline requests only.
    for _ in 0..12 {
        let m = c.request("tools/list", json!({})).await;
        assert!(m["result"]["tools"].is_array(), "{m}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (r, _) = c.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the idle session closed");
}

#[tokio::test]
async fn a_request_rmcp_would_refuse_gets_rmcps_answer() {
    let app = spawn_app_with(|_| {}).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let body = call(2, "echo", json!({"text": "x"}), None);

    // JSON only: rmcp's 406.
    let r = app
        .http
        .post(app.url(crate::mcp_support::MCP))
        .header("authorization", crate::mcp_support::bearer(&at))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("mcp-session-id", c.session.clone().unwrap())
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);

    let r = app
        .http
        .post(app.url(crate::mcp_support::MCP))
        .header("authorization", crate::mcp_support::bearer(&at))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("mcp-protocol-version", "1999-01-01")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    // An unknown revision: rmcp's 400.
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Unsupported MCP-Protocol-Version"),
    );

    // Not JSON-RPC at all.
    let r = c.post(&json!({"hello": "world"})).send().await.unwrap();
    assert!(
        r.status().is_client_error(),
        "rmcp refuses it: {}",
        r.status()
    );
}

#[tokio::test]
async fn a_deleted_session_takes_no_more_inline_requests() {
    let app = spawn_app_with(|_| {}).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("echo", json!({"text": "before"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "before");

    let r = app
        .http
        .delete(app.url(crate::mcp_support::MCP))
        .header("authorization", crate::mcp_support::bearer(&at))
        .header("mcp-session-id", c.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (r, _) = c
        .send(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "after"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), "Not Found: Session not found");
}

#[tokio::test]
async fn an_oversized_chunked_message_in_a_session_is_refused_as_too_large() {
    let app = spawn_app_with(|_| {}).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    // No Content-Length: the limit is only found while reading.
    let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = (0..(mcpgate::mcp::MAX_MCP_BODY_BYTES / chunk.len() + 2))
        .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let r = c
        .post(&json!({}))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("at most 4194304 bytes"));

    // The session is unharmed.
    let m = c.call_tool("echo", json!({"text": "after"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "after", "{m}");
}
