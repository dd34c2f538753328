//! The `<prefix>_connect` tool and URL-mode elicitation (MCP 2025-11-25):
//! a session whose client declared `elicitation.url` is sent an
//! `elicitation/create` with `mode: "url"`, a fresh `elicitationId` and the
//! one-time connect link, on the tool call's own response stream; when the
//! browser flow completes, that session (and no other user's) is told
//! `notifications/elicitation/complete` with the id, then
//! `notifications/tools/list_changed`, and the upstream's tools appear.
//! A client without the capability gets the link in the tool's result, and
//! no elicitation. The upstream is a second mcpgate with its own
//! authorization server (`crate::upstream_oauth`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::mcp_support::{McpClient, SseReader, bearer, header, parse_sse, signed_in};
use crate::upstream_oauth::{connect_with_link, gateway, upstream};

const VERSION: &str = "2025-11-25";

/// A session of `token` at `a` whose client declares `capabilities`, with
/// its standalone GET stream open (where notifications unrelated to a
/// request arrive).
pub(crate) async fn session(
    a: &TestApp,
    token: &str,
    capabilities: Value,
) -> (McpClient, SseReader) {
    let mut c = McpClient::new(a, token);
    let id = c.take_id();
    let r = c
        .post(&json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {
                "protocolVersion": VERSION,
                "capabilities": capabilities,
                "clientInfo": {"name": "elicitation-tests", "version": "1.0.0"},
            },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    c.session = Some(header(&r, "mcp-session-id").expect("a session id"));
    let init = SseReader::new(r).message_with_id(id).await;
    assert_eq!(init["result"]["protocolVersion"], VERSION, "{init}");
    c.version = Some(VERSION.into());
    let r = c
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = a
        .http
        .get(a.url("/v1/ai/mcp"))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    (c, SseReader::new(r))
}

pub(crate) fn url_capable() -> Value {
    json!({"elicitation": {"form": {}, "url": {}}})
}

/// The JSON-RPC messages of `reader` (comments and empty events skipped)
/// until `until` is true of one, which is returned with those before it.
pub(crate) async fn read_until(
    reader: &mut SseReader,
    until: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(e) = reader.next_event().await {
        if e.data.is_empty() {
            continue;
        }
        let m = e.json();
        let done = until(&m);
        seen.push(m);
        if done {
            return seen;
        }
    }
    panic!("the stream ended first: {seen:?}");
}

/// Reads `reader` until the tools change after a connection: asserts that
/// exactly one `notifications/elicitation/complete` came first, and that it
/// names `elicitation_id`.
pub(crate) async fn completed_then_tools_changed(reader: &mut SseReader, elicitation_id: &Value) {
    let seen = read_until(reader, |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
    let complete: Vec<_> = seen
        .iter()
        .filter(|m| m["method"] == "notifications/elicitation/complete")
        .collect();
    assert_eq!(complete.len(), 1, "{seen:?}");
    assert_eq!(
        &complete[0]["params"]["elicitationId"], elicitation_id,
        "{seen:?}"
    );
}

/// Whether `reader` yields a JSON-RPC message within `limit`.
pub(crate) async fn any_message_within(reader: &mut SseReader, limit: Duration) -> Option<Value> {
    tokio::time::timeout(limit, async {
        loop {
            match reader.next_event().await {
                Some(e) if e.data.is_empty() => continue,
                Some(e) => return Some(e.json()),
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Calls `b_connect` in the session, answers its URL elicitation with
/// `action`; returns the elicitation's params and the tool's result.
pub(crate) async fn connect_by_elicitation(c: &mut McpClient, action: &str) -> (Value, Value) {
    let (r, call_id) = c
        .send("tools/call", json!({"name": "b_connect", "arguments": {}}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = SseReader::new(r);
    let seen = read_until(&mut stream, |m| m["method"] == "elicitation/create").await;
    let ask = seen.last().unwrap().clone();
    let r = c
        .post(&json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": action}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let result = stream.message_with_id(call_id).await;
    (ask["params"].clone(), result["result"].clone())
}

pub(crate) async fn tools(c: &mut McpClient) -> Vec<String> {
    let r = c.request("tools/list", json!({})).await;
    r["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_capable_client_is_sent_the_link_as_an_elicitation_and_told_when_it_completes() {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;
    let (mut alice_c, mut alice_get) = session(&a, &alice, url_capable()).await;
    let (mut bob_c, mut bob_get) = session(&a, &bob, url_capable()).await;
    let before = tools(&mut alice_c).await;
    assert!(before.contains(&"b_connect".to_string()), "{before:?}");
    assert!(!before.contains(&"b_whoami".to_string()), "{before:?}");

    let (ask, result) = connect_by_elicitation(&mut alice_c, "accept").await;
    assert_eq!(ask["mode"], "url", "{ask}");
    let link = ask["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/connect/b?ticket=", a.urls.issuer)),
        "{link}"
    );
    let alice_id = ask["elicitationId"].as_str().unwrap().to_string();
    assert!(alice_id.len() >= 16, "{ask}");
    assert!(ask["message"].as_str().unwrap().contains("b"), "{ask}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(
        !text.contains("ticket="),
        "the link stays out of the result: {text}"
    );
    assert!(text.contains("browser"), "{text}");

    // Bob asks too, and is sent his own elicitation with another id.
    let (bob_ask, _) = connect_by_elicitation(&mut bob_c, "accept").await;
    assert_ne!(bob_ask["elicitationId"], ask["elicitationId"]);
    assert_ne!(bob_ask["url"], ask["url"]);

    let (_, page) = connect_with_link(&a, &b, &link, "alice", "alice-at-b").await;
    assert!(page.contains("Connected to b"), "{page}");

    // Alice's session: the elicitation completes, then the tools change.
    completed_then_tools_changed(&mut alice_get, &json!(alice_id)).await;
    assert!(tools(&mut alice_c).await.contains(&"b_whoami".to_string()));

    // Bob's session hears nothing of it, and still sees only b_connect.
    let heard = any_message_within(&mut bob_get, Duration::from_millis(1500)).await;
    assert_eq!(heard, None, "bob's session received alice's notification");
    let bob_tools = tools(&mut bob_c).await;
    assert!(
        bob_tools.contains(&"b_connect".to_string()),
        "{bob_tools:?}"
    );
    assert!(
        !bob_tools.contains(&"b_whoami".to_string()),
        "{bob_tools:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_url_elicitation_gets_the_link_in_the_result_and_no_elicitation() {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    // No elicitation at all, and form mode only.
    for capabilities in [
        json!({}),
        json!({"elicitation": {}}),
        json!({"elicitation": {"form": {}}}),
    ] {
        let (mut c, mut get) = session(&a, &alice, capabilities.clone()).await;
        let (r, id) = c
            .send("tools/call", json!({"name": "b_connect", "arguments": {}}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        // The whole answer: one JSON body, or an event stream that ends
        // after the result.
        let is_json = header(&r, "content-type").is_some_and(|t| t.starts_with("application/json"));
        let body = r.text().await.unwrap();
        let seen: Vec<Value> = if is_json {
            vec![serde_json::from_str(&body).unwrap()]
        } else {
            parse_sse(&body)
                .iter()
                .filter(|e| !e.data.is_empty())
                .map(|e| e.json())
                .collect()
        };
        assert_eq!(seen.last().unwrap()["id"], json!(id), "{seen:?}");
        assert!(
            seen.iter().all(|m| m["method"] != "elicitation/create"),
            "{capabilities}: {seen:?}"
        );
        let text = seen.last().unwrap()["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.contains("/connect/b?ticket="),
            "{capabilities}: {text}"
        );
        assert_eq!(
            any_message_within(&mut get, Duration::from_millis(300)).await,
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_the_elicitation_says_so_and_connects_nothing() {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (mut c, _get) = session(&a, &alice, url_capable()).await;
    let (ask, result) = connect_by_elicitation(&mut c, "decline").await;
    assert_eq!(ask["mode"], "url");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("declined"), "{text}");
    assert!(!text.contains("ticket="), "{text}");
    let names = tools(&mut c).await;
    assert!(names.contains(&"b_connect".to_string()), "{names:?}");
    assert!(!names.contains(&"b_whoami".to_string()), "{names:?}");
}
