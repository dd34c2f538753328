//! Legacy SSE sessions serve their clients without an rmcp service
//! (`src/mcp/sse/session.rs`): the lifecycle, the gateway's relayed
//! requests, progress and cancellation over the one event stream, and the
//! isolation that rests on each session keeping its own client's
//! `initialize` (a session's handler contexts get an ended rmcp peer other
//! sessions may share), and the tasks extension its client declared.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gateway_support::{spawn_gateway_logging_cancellations, wait_for_cancellation};
use crate::helpers::{TestApp, spawn_app};
use crate::mcp_sse::{accepted, open, reply};
use crate::mcp_support::{SseReader, initialized_notification, signed_in};
use crate::upstream_oauth::{connect_with_link, gateway, upstream};
use crate::upstream_oauth_elicitation::{
    any_message_within, completed_then_tools_changed, read_until, url_capable,
};

/// Opens a legacy session of `token` whose client declares `capabilities`
/// and initializes it; returns the stream and the message path.
async fn session(app: &TestApp, token: &str, capabilities: Value) -> (SseReader, String) {
    let (mut events, endpoint) = open(app, "/sse", token).await;
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": capabilities,
            "clientInfo": {"name": "legacy-tests", "version": "1.0.0"},
        },
    });
    accepted(app, &endpoint, token, &init).await;
    let m = reply(&mut events, 1).await;
    assert_eq!(m["result"]["protocolVersion"], "2025-06-18", "{m}");
    accepted(app, &endpoint, token, &initialized_notification()).await;
    (events, endpoint)
}

fn call(id: i64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
}

#[tokio::test]
async fn only_ping_comes_before_initialize_which_comes_once() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let (mut events, endpoint) = open(&app, "/sse", &at).await;

    accepted(
        &app,
        &endpoint,
        &at,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    let m = reply(&mut events, 1).await;
    assert_eq!(m["result"], json!({}), "{m}");
    accepted(&app, &endpoint, &at, &call(2, "whoami", json!({}))).await;
    crate::mcp_support::assert_rpc_error(
        &reply(&mut events, 2).await,
        -32600,
        "send initialize first",
    );

    let init = crate::mcp_support::initialize_body(3, "2024-11-05");
    accepted(&app, &endpoint, &at, &init).await;
    assert_eq!(
        reply(&mut events, 3).await["result"]["protocolVersion"],
        "2024-11-05"
    );
    let again = crate::mcp_support::initialize_body(4, "2024-11-05");
    accepted(&app, &endpoint, &at, &again).await;
    crate::mcp_support::assert_rpc_error(
        &reply(&mut events, 4).await,
        -32600,
        "already initialized",
    );

    // The session is unharmed, and answers the call it refused before.
    accepted(&app, &endpoint, &at, &call(5, "whoami", json!({}))).await;
    let m = reply(&mut events, 5).await;
    assert_eq!(m["result"]["structuredContent"]["user"], "alice", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relayed_requests_progress_and_cancellation_stay_in_their_own_legacy_session() {
    let (app, _dir, log) = spawn_gateway_logging_cancellations().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let sampling = json!({"sampling": {}});
    let (mut a, a_end) = session(&app, &alice, sampling.clone()).await;
    let (mut b, b_end) = session(&app, &bob, sampling).await;

    // The upstream asks alice's client to sample, on alice's stream, with
    // an id of mcpgate's own; her answer, POSTed, completes the call.
    accepted(
        &app,
        &a_end,
        &alice,
        &call(2, "fx_sample", json!({"prompt": "hi"})),
    )
    .await;
    let seen = read_until(&mut a, |m| m["method"] == "sampling/createMessage").await;
    let ask = seen.last().unwrap().clone();
    assert_eq!(
        ask["params"]["messages"][0]["content"]["text"], "hi",
        "{ask}"
    );
    assert!(ask["id"].is_string(), "{ask}");
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {
        "role": "assistant", "model": "alices-model",
        "content": {"type": "text", "text": "from alice"},
    }});
    accepted(&app, &a_end, &alice, &answer).await;
    let m = reply(&mut a, 2).await;
    assert_eq!(
        m["result"]["content"][0]["text"], "sampled: from alice",
        "{m}"
    );

    // Bob's answer to alice's request id is no answer to anything.
    accepted(&app, &b_end, &bob, &answer).await;

    // Progress of a call goes on its own session's stream; the client's
    // notifications/cancelled ends it at the upstream.
    let slow = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "fx_slow", "arguments": {"steps": 400, "step_ms": 50},
        "_meta": {"progressToken": "alices-call"},
    }});
    accepted(&app, &a_end, &alice, &slow).await;
    let seen = read_until(&mut a, |m| m["method"] == "notifications/progress").await;
    let progress = seen.last().unwrap();
    assert_eq!(
        progress["params"]["progressToken"], "alices-call",
        "{progress}"
    );
    assert!(!log.exists(), "nothing cancelled yet");
    // Bob cancelling request 3 in his own session touches nothing of alice's.
    let bobs = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": 3, "reason": "bob's"}});
    accepted(&app, &b_end, &bob, &bobs).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!log.exists(), "bob's cancellation reached alice's call");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 3, "reason": "the test cancels"}});
    accepted(&app, &a_end, &alice, &cancel).await;
    wait_for_cancellation(&log).await;

    // Bob's session heard none of it, and works.
    let heard = any_message_within(&mut b, Duration::from_millis(500)).await;
    assert_eq!(heard, None, "bob's stream carried alice's messages");
    accepted(
        &app,
        &b_end,
        &bob,
        &call(2, "fx_echo", json!({"text": "bob's"})),
    )
    .await;
    assert_eq!(
        reply(&mut b, 2).await["result"]["content"][0]["text"],
        "bob's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_legacy_session_goes_by_what_its_own_client_declared() {
    let upstream_b = upstream().await;
    let app = gateway(&upstream_b).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    // Alice's client takes URL-mode elicitation; bob's, initialized after
    // hers, does not. Were the clients' `initialize` kept on the peer all
    // legacy sessions share, the last one (bob's) would speak for both.
    let (mut a, a_end) = session(&app, &alice, url_capable()).await;
    let (mut b, b_end) = session(&app, &bob, json!({})).await;

    accepted(&app, &b_end, &bob, &call(2, "b_connect", json!({}))).await;
    let m = reply(&mut b, 2).await;
    let text = m["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("/connect/b?ticket="),
        "bob gets the link: {text}"
    );

    accepted(&app, &a_end, &alice, &call(2, "b_connect", json!({}))).await;
    let seen = read_until(&mut a, |m| m["method"] == "elicitation/create").await;
    let ask = seen.last().unwrap().clone();
    assert_eq!(ask["params"]["mode"], "url", "{ask}");
    let link = ask["params"]["url"].as_str().unwrap().to_string();
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept"}});
    accepted(&app, &a_end, &alice, &answer).await;
    let m = reply(&mut a, 2).await;
    let text = m["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        !text.contains("ticket="),
        "alice's link went by elicitation: {text}"
    );

    // Alice connects in the browser: her stream is told, bob's is not.
    let (_, page) = connect_with_link(&app, &upstream_b, &link, "alice", "alice-at-b").await;
    assert!(page.contains("Connected to b"), "{page}");
    completed_then_tools_changed(&mut a, &ask["params"]["elicitationId"]).await;
    let heard = any_message_within(&mut b, Duration::from_millis(1500)).await;
    assert_eq!(heard, None, "bob's stream heard of alice's connection");
}

#[tokio::test]
async fn the_tasks_extension_declared_at_initialize_holds_for_that_legacy_session_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = crate::tasks::gateway(&dir.path().join("cancel.log")).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let tasks = json!({ "extensions": { crate::tasks::EXT: {} } });
    let (mut a_events, a_endpoint) = session(&app, &alice, tasks).await;
    let (mut b_events, b_endpoint) = session(&app, &bob, json!({})).await;

    let slow = |id, label| call(id, "slow_compute", json!({ "seconds": 1, "label": label }));
    accepted(&app, &a_endpoint, &alice, &slow(2, "a")).await;
    let created = reply(&mut a_events, 2).await;
    let task = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("alice's call made no task: {created}"))
        .to_string();
    let get = |id, task: &str| json!({"jsonrpc": "2.0", "id": id, "method": "tasks/get", "params": {"taskId": task}});
    accepted(&app, &a_endpoint, &alice, &get(3, &task)).await;
    assert_eq!(reply(&mut a_events, 3).await["result"]["taskId"], task);

    // Bob's client declared nothing: his call runs to its result, and
    // tasks/* need the extension.
    accepted(&app, &b_endpoint, &bob, &slow(2, "b")).await;
    let done = reply(&mut b_events, 2).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "slow_compute b: done after 1 s",
        "{done}"
    );
    accepted(&app, &b_endpoint, &bob, &get(3, &task)).await;
    assert_eq!(reply(&mut b_events, 3).await["error"]["code"], -32021);
}
