//! Streamable HTTP at `/v1/ai/mcp` behind the gate: sessions, version
//! negotiation, tools, sessions bound to their user, DELETE and idle expiry.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};
use crate::mcp_support::{MCP, McpClient, SseReader, bearer, header, initialize_body, signed_in};

#[tokio::test]
async fn initialize_opens_a_session_and_negotiates_each_supported_version() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut sessions = BTreeSet::new();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut c = McpClient::new(&app, &at);
        let result = c.initialize(version).await;
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["serverInfo"]["name"], "mcpgate");
        assert!(result["capabilities"]["tools"].is_object(), "{result}");
        assert_eq!(c.version.as_deref(), Some(version));
        sessions.insert(c.session.clone().unwrap());
    }
    assert_eq!(sessions.len(), 3, "each initialize opens its own session");
}

#[tokio::test]
async fn the_initialize_response_is_an_event_stream_with_a_priming_event_and_the_result() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let r = McpClient::new(&app, &at)
        .post(&initialize_body(7, "2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        header(&r, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let session = header(&r, "mcp-session-id").expect("session id");
    assert!(!session.is_empty());
    let mut events = SseReader::new(r);
    let first = events.next_event().await.expect("a priming event");
    assert_eq!(first.data, "", "the priming event has empty data");
    let m = events.message_with_id(7).await;
    assert_eq!(m["jsonrpc"], "2.0");
    assert_eq!(m["result"]["protocolVersion"], "2025-06-18");
}

#[tokio::test]
async fn tools_list_names_the_built_in_tools_with_their_input_schemas() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let m = c.request("tools/list", json!({})).await;
    let tools = m["result"]["tools"].as_array().expect("tools");
    let names: BTreeSet<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["current_time", "echo", "whoami"]));
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{t}"
        );
    }
    let echo = tools.iter().find(|t| t["name"] == "echo").unwrap();
    assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
    assert_eq!(echo["inputSchema"]["properties"]["text"]["type"], "string");
}

#[tokio::test]
async fn whoami_returns_the_token_owner_and_client_to_each_user() {
    let app = spawn_app().await;
    let (alice_client, alice) = signed_in(&app, "alice").await;
    let (bob_client, bob) = signed_in(&app, "bob").await;
    for (user, client_id, token) in [("alice", &alice_client, &alice), ("bob", &bob_client, &bob)] {
        let mut c = McpClient::new(&app, token);
        c.initialize("2025-11-25").await;
        let m = c.call_tool("whoami", json!({})).await;
        let result = &m["result"];
        assert_eq!(result["isError"], json!(false), "{m}");
        assert_eq!(result["structuredContent"]["user"], user);
        assert_eq!(result["structuredContent"]["client_id"], json!(client_id));
        assert_eq!(result["structuredContent"]["scopes"], json!(["mcp"]));
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with(&format!("You are {user} ")), "{text}");
    }
}

#[tokio::test]
async fn echo_and_current_time_answer_over_the_session() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("echo", json!({"text": "hello there"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "hello there");
    let m = c.call_tool("current_time", json!({})).await;
    let t = m["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{t}"
    );
}

#[tokio::test]
async fn a_session_presented_with_another_users_token_is_not_found_and_stays_usable_by_its_owner() {
    let app = spawn_app().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let mut owner = McpClient::new(&app, &alice);
    owner.initialize("2025-06-18").await;

    let mut thief = McpClient::new(&app, &bob);
    thief.session = owner.session.clone();
    thief.version = owner.version.clone();
    let (r, _) = thief
        .send("tools/call", json!({"name": "whoami", "arguments": {}}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let stolen_headers = r.headers().clone();
    let stolen_body = r.text().await.unwrap();
    // Indistinguishable from a session that does not exist.
    let mut nobody = McpClient::new(&app, &bob);
    nobody.session = Some("00000000-0000-0000-0000-000000000000".into());
    nobody.version = owner.version.clone();
    let (r, _) = nobody
        .send("tools/call", json!({"name": "whoami", "arguments": {}}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        stolen_headers.get("content-type"),
        r.headers().get("content-type")
    );
    assert_eq!(stolen_body, r.text().await.unwrap());
    // A GET (standalone stream) and a DELETE with the stolen id fail the same way.
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&bob))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", owner.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .http
        .delete(app.url(MCP))
        .header("authorization", bearer(&bob))
        .header("mcp-session-id", owner.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The owner is unaffected.
    let m = owner.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["structuredContent"]["user"], "alice");
}

#[tokio::test]
async fn delete_ends_the_session_and_later_requests_get_404() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let session = c.session.clone().unwrap();
    let r = app
        .http
        .delete(app.url(MCP))
        .header("authorization", bearer(&at))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let (r, _) = c.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unknown_session_id_gets_404() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.session = Some("no-such-session".into());
    c.version = Some("2025-06-18".into());
    let (r, _) = c.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_invalid_params_error() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("no_such_tool", json!({})).await;
    assert!(m.get("result").is_none(), "{m}");
    assert_eq!(m["error"]["code"], -32602, "{m}");
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_tool"),
        "{m}"
    );
}

#[tokio::test]
async fn bad_arguments_are_a_json_rpc_error_naming_the_field() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;

    let m = c.call_tool("echo", json!({})).await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    let message = m["error"]["message"].as_str().unwrap();
    assert!(message.contains("missing field `text`"), "{message}");

    let m = c.call_tool("echo", json!({"text": 5})).await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{m}"
    );

    let m = c.call_tool("whoami", json!({"surprise": 1})).await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    assert!(
        m["error"]["message"].as_str().unwrap().contains("surprise"),
        "{m}"
    );
}

#[tokio::test]
async fn get_with_the_session_id_opens_the_standalone_event_stream() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&at))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        header(&r, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(r);

    // The session still works after the stream is gone.
    let m = c.request("tools/list", json!({})).await;
    assert!(m["result"]["tools"].is_array(), "{m}");
}

#[tokio::test]
async fn a_session_idle_longer_than_the_timeout_is_closed() {
    let app = spawn_app_with(|s| s.mcp_session_idle_timeout = Duration::from_secs(1)).await;
    let (_, at) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let m = c.request("tools/list", json!({})).await;
    assert!(
        m["result"]["tools"].is_array(),
        "the fresh session works: {m}"
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (r, _) = c.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
