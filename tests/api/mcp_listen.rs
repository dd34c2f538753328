//! MCP 2026-07-28 through the gateway: `subscriptions/listen` (SEP-2575)
//! with its filter and its isolation, log levels per request, `resultType`
//! and caching hints, and the `Mcp-Param-*` headers (SEP-2243).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{FIXTURE, fixture, spawn_gateway, upstream};
use crate::helpers::TestApp;
use crate::mcp_support::{SseReader, parse_sse, signed_in, stateless_post};

const V: &str = "2026-07-28";
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// How long a stream is watched for a notification that must not come
/// (after one that must has arrived: the relay had its chance).
const QUIET: Duration = Duration::from_millis(700);

pub(crate) fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn post(app: &TestApp, token: &str, method: &str, name: Option<&str>) -> reqwest::RequestBuilder {
    stateless_post(app, token, method, name)
}

/// The JSON-RPC messages of a JSON or SSE body.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    parse_sse(body)
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| e.json())
        .collect()
}

/// A stateless `tools/call`; all messages of its answer.
pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    tool: &str,
    args: Value,
    meta: Value,
) -> Vec<Value> {
    let r = post(app, token, "tools/call", Some(tool))
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": tool, "arguments": args, "_meta": meta}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let all = messages(&r.text().await.unwrap());
    let last = all.last().expect("an answer");
    assert!(last.get("result").is_some(), "{tool} failed: {all:?}");
    all
}

/// An open listen stream.
pub(crate) struct Listen {
    reader: SseReader,
    id: i64,
}

impl Listen {
    /// Opens a stream with the filter `notifications` and checks its
    /// acknowledgement.
    pub(crate) async fn open(app: &TestApp, token: &str, id: i64, notifications: Value) -> Self {
        let r = post(app, token, "subscriptions/listen", None)
            .json(
                &json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
                          "params": {"_meta": meta(), "notifications": notifications}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut l = Self {
            reader: SseReader::new(r),
            id,
        };
        let ack = l.next().await.expect("an acknowledgement");
        assert_eq!(
            ack["method"], "notifications/subscriptions/acknowledged",
            "{ack}"
        );
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], json!(id), "{ack}");
        l
    }

    /// The next message (`None` at the end of the stream).
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            let e = self.reader.next_event().await?;
            if !e.data.is_empty() {
                return Some(e.json());
            }
        }
    }

    /// The next message carrying `method`, tagged with this subscription.
    pub(crate) async fn expect(&mut self, method: &str) -> Value {
        let m = self.next().await.expect("the stream stays open");
        assert_eq!(m["method"], method, "{m}");
        assert_eq!(m["params"]["_meta"][SUBSCRIPTION_ID], json!(self.id), "{m}");
        m
    }

    /// Fails if a message arrives within [`QUIET`].
    pub(crate) async fn expect_nothing(&mut self, why: &str) {
        if let Ok(m) = tokio::time::timeout(QUIET, self.next()).await {
            panic!("{why}: got {m:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_hears_an_upstreams_tool_list_change_and_only_what_it_asked_for() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut tools = Listen::open(&app, &token, 1, json!({"toolsListChanged": true})).await;
    let mut prompts = Listen::open(&app, &token, 2, json!({"promptsListChanged": true})).await;

    call(&app, &token, "fx_change_tools", json!({}), meta()).await;
    tools.expect("notifications/tools/list_changed").await;
    prompts
        .expect_nothing("a stream filtered to prompts got a tools notification")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_updated_reaches_only_the_streams_that_subscribed_the_uri() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    // The fixture reports a change of a resource right after it is subscribed.
    let mut a = Listen::open(
        &app,
        &token,
        1,
        json!({"resourceSubscriptions": ["fixture://static"]}),
    )
    .await;
    let m = a.expect("notifications/resources/updated").await;
    assert_eq!(m["params"]["uri"], "fixture://static", "{m}");

    let mut b = Listen::open(
        &app,
        &token,
        2,
        json!({"resourceSubscriptions": ["fixture://item/7"], "toolsListChanged": true}),
    )
    .await;
    let m = b.expect("notifications/resources/updated").await;
    assert_eq!(m["params"]["uri"], "fixture://item/7", "{m}");
    a.expect_nothing("a stream got the update of a URI it did not subscribe")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_hears_nothing_of_another_users_connection_or_of_upstreams_it_may_not_use()
{
    let app = spawn_gateway(vec![
        fixture("mine", "isolation = \"per_user\""),
        fixture("alices", "allowed_users = [\"alice\"]"),
    ])
    .await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let filter = json!({"toolsListChanged": true});
    let mut alice_listens = Listen::open(&app, &alice, 1, filter.clone()).await;
    let mut bob_listens = Listen::open(&app, &bob, 1, filter).await;

    call(&app, &alice, "mine_change_tools", json!({}), meta()).await;
    alice_listens
        .expect("notifications/tools/list_changed")
        .await;
    call(&app, &alice, "alices_change_tools", json!({}), meta()).await;
    alice_listens
        .expect("notifications/tools/list_changed")
        .await;
    bob_listens
        .expect_nothing("bob heard alice's per-user connection or an upstream closed to him")
        .await;
}

fn conformance_fixture() -> mcpgate::gateway::config::UpstreamConfig {
    upstream(&format!(
        "name = \"conf\"\ncommand = {FIXTURE:?}\nargs = [\"--conformance\"]\nprefix = \"\""
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_request_gets_log_messages_only_at_the_level_it_names() {
    let app = spawn_gateway(vec![conformance_fixture()]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let logs = |all: &[Value]| {
        all.iter()
            .filter(|m| m["method"] == "notifications/message")
            .count()
    };
    let silent = call(&app, &token, "test_logging_tool", json!({}), meta()).await;
    assert_eq!(logs(&silent), 0, "no logLevel, no log messages: {silent:?}");
    let mut with_level = meta();
    with_level["io.modelcontextprotocol/logLevel"] = json!("info");
    let heard = call(&app, &token, "test_logging_tool", json!({}), with_level).await;
    assert_eq!(logs(&heard), 1, "{heard:?}");
    let mut above = meta();
    above["io.modelcontextprotocol/logLevel"] = json!("error");
    let filtered = call(&app, &token, "test_logging_tool", json!({}), above).await;
    assert_eq!(
        logs(&filtered),
        0,
        "an info message is below error: {filtered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_relayed_from_a_2025_upstream_carry_result_type_and_private_caching_hints() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let r = post(&app, &token, "resources/read", Some("fixture://static"))
        .json(
            &json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                      "params": {"uri": "fixture://static", "_meta": meta()}}),
        )
        .send()
        .await
        .unwrap();
    let m = messages(&r.text().await.unwrap()).pop().unwrap();
    assert_eq!(m["result"]["resultType"], "complete", "{m}");
    assert_eq!(m["result"]["cacheScope"], "private", "{m}");
    assert!(m["result"]["ttlMs"].is_u64(), "{m}");

    let all = call(&app, &token, "fx_echo", json!({"text": "hi"}), meta()).await;
    assert_eq!(all.last().unwrap()["result"]["resultType"], "complete");

    let r = post(&app, &token, "tools/list", None)
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list",
                      "params": {"_meta": meta()}}))
        .send()
        .await
        .unwrap();
    let m = messages(&r.text().await.unwrap()).pop().unwrap();
    assert_eq!(
        m["result"]["cacheScope"], "private",
        "the list depends on the user: {m}"
    );
}

/// A stateless `tools/call` of `test_custom_header` with `region` in the
/// body and the given `Mcp-Param-Region` header.
async fn custom_header_call(app: &TestApp, token: &str, header: Option<&str>) -> reqwest::Response {
    let mut rb = post(app, token, "tools/call", Some("test_custom_header")).json(&json!({
        "jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": {"name": "test_custom_header", "arguments": {"region": "Hello"}, "_meta": meta()}
    }));
    if let Some(h) = header {
        rb = rb.header("mcp-param-region", h);
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_param_headers_that_do_not_match_the_body_are_rejected() {
    let app = spawn_gateway(vec![conformance_fixture()]).await;
    let (_, token) = signed_in(&app, "alice").await;
    // The gateway passes the annotation through.
    let r = post(&app, &token, "tools/list", None)
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list",
                      "params": {"_meta": meta()}}))
        .send()
        .await
        .unwrap();
    let m = messages(&r.text().await.unwrap()).pop().unwrap();
    let tool = m["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "test_custom_header")
        .cloned()
        .expect("the annotated tool is listed");
    assert_eq!(
        tool["inputSchema"]["properties"]["region"]["x-mcp-header"],
        "Region"
    );

    for ok in ["Hello", "=?base64?SGVsbG8=?="] {
        let r = custom_header_call(&app, &token, Some(ok)).await;
        assert_eq!(r.status(), StatusCode::OK, "{ok}");
    }
    for (bad, why) in [
        (Some("Goodbye"), "a different value"),
        (Some("=?base64?SGVsbG8?="), "Base64 without its padding"),
        (Some("=?base64?SGVs!!!bG8=?="), "not Base64"),
        (None, "no header although the body has the value"),
    ] {
        let r = custom_header_call(&app, &token, bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["error"]["code"], -32020, "{why}: {m}");
        assert_eq!(m["id"], 41, "{why}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_hears_when_an_upstream_goes_away_and_comes_back() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut tools = Listen::open(&app, &token, 1, json!({"toolsListChanged": true})).await;
    // The call fails (the process exits without answering).
    let _ = post(&app, &token, "tools/call", Some("fx_crash"))
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "fx_crash", "arguments": {}, "_meta": meta()}}))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    tools.expect("notifications/tools/list_changed").await;
    // Restarted after the backoff (0.5 s): its tools are back.
    tools.expect("notifications/tools/list_changed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_subscription_is_released_with_its_stream_and_renewed_after_a_restart() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let filter = json!({"resourceSubscriptions": ["fixture://static"]});
    // The fixture reports an update right after each resources/subscribe.
    let mut first = Listen::open(&app, &token, 1, filter.clone()).await;
    first.expect("notifications/resources/updated").await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Released: the next stream subscribes at the upstream again.
    let mut second = Listen::open(&app, &token, 2, filter).await;
    second.expect("notifications/resources/updated").await;

    let _ = post(&app, &token, "tools/call", Some("fx_crash"))
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "fx_crash", "arguments": {}, "_meta": meta()}}))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    // The new process is subscribed again for the open stream.
    let m = second.expect("notifications/resources/updated").await;
    assert_eq!(m["params"]["uri"], "fixture://static", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_param_header_values_outside_visible_ascii_are_rejected() {
    let app = spawn_gateway(vec![conformance_fixture()]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let r = post(&app, &token, "tools/call", Some("test_custom_header"))
        .json(&json!({
            "jsonrpc": "2.0", "id": 42, "method": "tools/call",
            "params": {"name": "test_custom_header", "arguments": {"region": "H\u{e9}llo"}, "_meta": meta()}
        }))
        .header(
            "mcp-param-region",
            reqwest::header::HeaderValue::from_bytes(b"H\xe9llo").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["error"]["code"], -32020, "{m}");
    // The same value sent as the revision says: Base64 of its UTF-8.
    let r = post(&app, &token, "tools/call", Some("test_custom_header"))
        .json(&json!({
            "jsonrpc": "2.0", "id": 43, "method": "tools/call",
            "params": {"name": "test_custom_header", "arguments": {"region": "H\u{e9}llo"}, "_meta": meta()}
        }))
        .header("mcp-param-region", "=?base64?SMOpbGxv?=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // An `Mcp-Name` naming a tool without annotations (the built-in echo)
    // does not spare the annotated tool the body calls its check: the
    // request is refused (its `Mcp-Name` differs from its body).
    for name in ["echo", "no_such_tool"] {
        let r = post(&app, &token, "tools/call", Some(name))
            .json(&json!({
                "jsonrpc": "2.0", "id": 44, "method": "tools/call",
                "params": {"name": "test_custom_header", "arguments": {"region": "Hello"}, "_meta": meta()}
            }))
            .header("mcp-param-region", "Elsewhere")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["error"]["code"], -32020, "{name}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_an_open_listen_stream_gracefully() {
    let mut app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut l = Listen::open(&app, &token, 5, json!({"toolsListChanged": true})).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "an open listen stream held shutdown open");
    // The final subscriptions/listen result ends the stream.
    let last = l.next().await.expect("the final result");
    assert_eq!(last["id"], 5, "{last}");
    assert!(last.get("result").is_some(), "{last}");
    assert!(l.next().await.is_none(), "the stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_takes_at_most_100_resource_uris_and_says_which() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let uris: Vec<String> = (0..150).map(|i| format!("fixture://item/{i}")).collect();
    let r = post(&app, &token, "subscriptions/listen", None)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
                      "params": {"_meta": meta(), "notifications": {"resourceSubscriptions": uris}}}))
        .send()
        .await
        .unwrap();
    let mut reader = SseReader::new(r);
    let ack = loop {
        let e = reader.next_event().await.expect("an acknowledgement");
        if !e.data.is_empty() {
            break e.json();
        }
    };
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    let taken = ack["params"]["notifications"]["resourceSubscriptions"]
        .as_array()
        .expect("the URIs taken");
    assert_eq!(taken.len(), 100, "{ack}");
    assert_eq!(taken[0], "fixture://item/0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_never_hears_of_a_resource_the_policy_denies() {
    // bob may not use fixture://item/* (tests/api/policy_matrix.rs).
    let (app, [_, bob, _]) =
        crate::policy_matrix::matrix_app(crate::policy_matrix::matrix_policy).await;
    let mut l = Listen::open(
        &app,
        &bob,
        1,
        json!({"resourceSubscriptions": ["fixture://item/7", "fixture://static"]}),
    )
    .await;
    let m = l.expect("notifications/resources/updated").await;
    assert_eq!(m["params"]["uri"], "fixture://static", "{m}");
    l.expect_nothing("a denied resource was subscribed upstream")
        .await;
}
