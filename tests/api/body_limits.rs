//! Request bodies on every route and transport (issue #15, items 7 and 8):
//! a body past the limit gets `413` whether it announces its length or not
//! (chunked), never a `500` logged at ERROR; a body that is not JSON on the
//! MCP transports gets HTTP `400` with the JSON-RPC parse error `-32700`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::federation_support::Logs;
use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{
    MCP, McpClient, SseReader, bearer, initialize_body, initialized_notification, signed_in,
};

const MCP_LIMIT: usize = mcpgate::mcp::MAX_MCP_BODY_BYTES;
const FORM_LIMIT: usize = mcpgate::http::MAX_BODY_BYTES;

type Headers = Vec<(&'static str, String)>;

/// One POST route: its path, headers and body limit.
struct Route {
    path: String,
    headers: Vec<(&'static str, String)>,
    limit: usize,
}

/// A legacy SSE stream with its session initialized; returns the reader
/// (keep it: the session lives as long as the stream) and the message path.
async fn legacy_session(app: &TestApp, token: &str) -> (SseReader, String) {
    let r = app
        .http
        .get(app.url("/sse"))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(r);
    let endpoint = sse.next_event().await.expect("endpoint event").data;
    for body in [initialize_body(1, "2024-11-05"), initialized_notification()] {
        let r = app
            .http
            .post(app.url(&endpoint))
            .header("authorization", bearer(token))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    (sse, endpoint)
}

fn mcp_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", bearer(token)),
        ("accept", "application/json, text/event-stream".into()),
        ("content-type", "application/json".into()),
    ]
}

fn stateless_headers(token: &str) -> Vec<(&'static str, String)> {
    let mut h = mcp_headers(token);
    h.push(("mcp-protocol-version", "2026-07-28".into()));
    h.push(("mcp-method", "tools/list".into()));
    h
}

/// Every POST route that takes a body.
async fn routes(app: &TestApp, token: &str, session: &str, legacy: &str) -> Vec<Route> {
    let mcp = |path: &str, headers| Route {
        path: path.into(),
        headers,
        limit: MCP_LIMIT,
    };
    let form = |path: &str, ct: &str| Route {
        path: path.into(),
        headers: vec![("content-type", ct.into())],
        limit: FORM_LIMIT,
    };
    let mut in_session = mcp_headers(token);
    in_session.push(("mcp-session-id", session.into()));
    in_session.push(("mcp-protocol-version", "2025-06-18".into()));
    let legacy_below = legacy.replace("/messages/", "/v1/ai/mcp/messages/");
    let _ = app;
    vec![
        mcp(MCP, mcp_headers(token)),
        mcp(MCP, stateless_headers(token)),
        mcp(MCP, in_session),
        mcp(legacy, mcp_headers(token)),
        mcp(&legacy_below, mcp_headers(token)),
        mcp("/tools/echo", mcp_headers(token)),
        form("/v1/oauth/token", "application/x-www-form-urlencoded"),
        form("/token", "application/x-www-form-urlencoded"),
        form("/v1/oauth/revoke", "application/x-www-form-urlencoded"),
        form("/revoke", "application/x-www-form-urlencoded"),
        form("/v1/oauth/register", "application/json"),
        form("/register", "application/json"),
        form("/v1/oauth/authorize", "application/x-www-form-urlencoded"),
        form("/authorize", "application/x-www-form-urlencoded"),
    ]
}

/// Sends a head announcing `length` bytes and no body; returns the status.
async fn announce(app: &TestApp, route: &Route, length: usize) -> u16 {
    let mut tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut head = format!("POST {} HTTP/1.1\r\nHost: localhost\r\n", route.path);
    for (k, v) in &route.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("an answer without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// Sends `length` bytes of body in chunks, without Content-Length.
async fn chunked(app: &TestApp, route: &Route, length: usize) -> StatusCode {
    let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
    let chunks =
        (0..length.div_ceil(chunk.len())).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let mut rb = app.http.post(app.url(&route.path));
    for (k, v) in &route.headers {
        rb = rb.header(*k, v);
    }
    rb.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", route.path))
        .status()
}

#[tokio::test]
async fn oversized_bodies_get_413_on_every_route_chunked_or_not_and_nothing_is_logged_at_error() {
    let logs = Logs::capture();
    let app = spawn_app().await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;
    let (_sse, legacy) = legacy_session(&app, &token).await;
    let session = c.session.clone().unwrap();

    for route in routes(&app, &token, &session, &legacy).await {
        let over = route.limit + 128 * 1024;
        assert_eq!(
            chunked(&app, &route, over).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunked to {} {:?}",
            route.path,
            route.headers.get(3)
        );
        assert_eq!(
            announce(&app, &route, route.limit + 1).await,
            413,
            "Content-Length to {}",
            route.path
        );
    }

    // The sessions are unharmed.
    let m = c.call_tool("echo", json!({"text": "after"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "after", "{m}");
    let text = logs.text();
    assert!(!text.contains("ERROR"), "{text}");
}

/// Asserts the JSON-RPC error answer with `code`.
async fn assert_jsonrpc_error(r: reqwest::Response, code: i64, what: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{what}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{what}: {body}");
    assert_eq!(body["id"], Value::Null, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    let prefix = if code == -32700 {
        "Parse error"
    } else {
        "Invalid Request"
    };
    assert!(message.starts_with(prefix), "{what}: {body}");
}

#[tokio::test]
async fn invalid_json_on_every_mcp_transport_gets_the_json_rpc_parse_error() {
    let logs = Logs::capture();
    let app = spawn_app().await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;
    let (_sse, legacy) = legacy_session(&app, &token).await;
    let session = c.session.clone().unwrap();

    let send = |path: &str, headers: Vec<(&'static str, String)>, body: &'static str| {
        let mut rb = app.http.post(app.url(path));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        rb.body(body).send()
    };
    let mut in_session = mcp_headers(&token);
    in_session.push(("mcp-session-id", session.clone()));
    in_session.push(("mcp-protocol-version", "2025-06-18".into()));

    let cases: Vec<(&str, &str, Headers)> = vec![
        ("without a session", MCP, mcp_headers(&token)),
        ("in a session", MCP, in_session.clone()),
        ("stateless", MCP, stateless_headers(&token)),
        ("legacy", legacy.as_str(), mcp_headers(&token)),
    ];
    for (what, path, headers) in &cases {
        let r = send(path, headers.clone(), "{\"jsonrpc\": \"2.0\", \"id\": 1,")
            .await
            .unwrap();
        assert_jsonrpc_error(r, -32700, what).await;
        let r = send(path, headers.clone(), "\u{0}\u{1}not json at all")
            .await
            .unwrap();
        assert_jsonrpc_error(r, -32700, what).await;
        // JSON, but not a JSON-RPC message.
        let r = send(path, headers.clone(), "{\"hello\": [1, 2]}")
            .await
            .unwrap();
        assert_jsonrpc_error(r, -32600, what).await;
    }

    // rmcp's answers to valid JSON with the wrong Accept or Content-Type stay.
    let ping = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}";
    let mut json_only = in_session.clone();
    json_only[1].1 = "application/json".into();
    let r = send(MCP, json_only, ping).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    let mut text = in_session.clone();
    text[2].1 = "text/plain".into();
    let r = send(MCP, text.clone(), ping).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = send(MCP, text, "{not json").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The session is unharmed.
    let m = c.call_tool("echo", json!({"text": "after"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "after", "{m}");
    let text = logs.text();
    assert!(!text.contains("ERROR"), "{text}");
}
