//! Slow and idle clients (issue #15, item 6): the header, body and
//! keep-alive timeouts close connections that hold the server without
//! using it, the connection cap holds further clients back until a slot
//! frees, and none of that cuts a response in progress (SSE streams).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{
    MCP, McpClient, SseReader, bearer, header, initialize_body, initialized_notification, signed_in,
};

/// Connects to the app's port.
async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (EOF or reset), at most
/// `within`; returns what it sent, or `None` if it was still open.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// Whether the connection is still open (no EOF within `wait`).
async fn still_open(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(wait, tcp.read(&mut buf))
        .await
        .is_err()
}

/// The whole OAuth flow and an MCP tool call, as a real client makes them.
async fn flow_and_call(app: &TestApp, user: &str) {
    let (_, token) = signed_in(app, user).await;
    let mut c = McpClient::new(app, &token);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("echo", json!({"text": "still served"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "still served", "{m}");
}

#[tokio::test]
async fn hundreds_of_half_sent_requests_are_closed_after_the_timeouts_while_a_client_completes_the_flow()
 {
    let app = spawn_app_with(|s| {
        s.header_read_timeout = Duration::from_secs(2);
        s.body_read_timeout = Duration::from_secs(2);
        // Long: the real client's pooled connections are not at stake here.
        s.keep_alive_timeout = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let mut half_open = Vec::new();
    for i in 0..300 {
        let mut tcp = connect(&app).await;
        let sent: &[u8] = match i % 4 {
            // Connected, nothing sent.
            0 => b"",
            // Part of a request head, never finished.
            1 => b"POST /v1/oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Ty",
            // A full head, part of the announced body.
            2 => b"POST /v1/oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
            // A full head, part of a chunked body.
            _ => b"POST /v1/oauth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"cli",
        };
        tcp.write_all(sent).await.unwrap();
        half_open.push(tcp);
    }

    // Meanwhile a real client is served.
    flow_and_call(&app, "alice").await;

    // Each half-open connection is closed by the server within its timeout
    // (and a margin); a stalled body may first get its 408 or 400.
    let deadline = Duration::from_secs(8);
    let answers = futures::future::join_all(half_open.iter_mut().map(|tcp| async {
        let left = deadline.saturating_sub(started.elapsed());
        closed_within(tcp, left).await
    }))
    .await;
    for (i, answer) in answers.iter().enumerate() {
        let Some(text) = answer else {
            panic!("half-open connection {i} (kind {}) is still open", i % 4);
        };
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 400"),
            "connection {i}: {text:?}"
        );
    }

    // And the server still serves.
    flow_and_call(&app, "bob").await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_keep_alive_timeout_and_not_before() {
    let app = spawn_app_with(|s| {
        s.header_read_timeout = Duration::from_millis(500);
        s.keep_alive_timeout = Duration::from_secs(2);
    })
    .await;
    let mut tcp = connect(&app).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut buf = vec![0u8; 8192];

    tcp.write_all(request).await.unwrap();
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Idle longer than the header timeout, shorter than the keep-alive one:
    // the connection is still good for another request.
    assert!(still_open(&mut tcp, Duration::from_millis(1200)).await);
    tcp.write_all(request).await.unwrap();
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // Idle past the keep-alive timeout: closed.
    let started = Instant::now();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn event_streams_outlive_every_timeout() {
    let app = spawn_app_with(|s| {
        s.header_read_timeout = Duration::from_millis(500);
        s.body_read_timeout = Duration::from_millis(500);
        s.keep_alive_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, token) = signed_in(&app, "alice").await;

    // A legacy SSE stream.
    let r = app
        .http
        .get(app.url("/sse"))
        .header("authorization", bearer(&token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut sse = SseReader::new(r);
    let endpoint = sse.next_event().await.expect("endpoint event").data;

    // A Streamable HTTP GET stream.
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;
    let mut get = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(
        header(&get, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );

    let post = |body: serde_json::Value| {
        app.http
            .post(app.url(&endpoint))
            .header("authorization", bearer(&token))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let r = post(initialize_body(1, "2024-11-05")).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        sse.message_with_id(1).await["result"]["protocolVersion"],
        "2024-11-05"
    );
    let r = post(initialized_notification()).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Longer than every timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The legacy stream still carries answers.
    let r = post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "later"}}}))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let m = sse.message_with_id(2).await;
    assert_eq!(m["result"]["content"][0]["text"], "later", "{m}");
    // The GET stream is still open (no end of body).
    let chunk = tokio::time::timeout(Duration::from_millis(500), get.chunk()).await;
    assert!(
        !matches!(chunk, Ok(Ok(None)) | Ok(Err(_))),
        "the GET stream ended: {chunk:?}"
    );
}

#[tokio::test]
async fn a_stalled_mcp_body_gets_408() {
    let app = spawn_app_with(|s| s.body_read_timeout = Duration::from_secs(1)).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut tcp = connect(&app).await;
    let head = format!(
        "POST {MCP} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"jsonrpc\":",
        bearer(&token)
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let text = closed_within(&mut tcp, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes_and_the_server_recovers() {
    let app = spawn_app_with(|s| {
        s.max_connections = 20;
        s.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    // Twenty idle connections fill the cap. (Each is accepted at once.)
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The 21st connects (the kernel's backlog) but is not served.
    let mut extra = connect(&app).await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");

    // One closes: the waiting one is served.
    drop(idle.pop());
    let text = closed_within(&mut extra, Duration::from_secs(5))
        .await
        .expect("served and closed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // All close: the server serves a whole flow again.
    idle.clear();
    flow_and_call(&app, "alice").await;
}
