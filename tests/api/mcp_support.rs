//! Shared helpers for the MCP endpoint tests (`mcp_*` modules): signing a
//! user in, putting hand-made tokens into the store, a small Streamable
//! HTTP client and an incremental reader of `text/event-stream` bodies.

#![allow(dead_code)]

use std::time::Duration;

use mcpgate::clock::Clock;
use mcpgate_core::crypto::{hash_secret, random_hex};
use mcpgate_core::domain::{ClientId, CodeChallenge, RedirectUri, ResourceUri, Scope};
use mcpgate_core::model::{AccessToken, AuthCode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{CHALLENGE, TestApp};

/// The Streamable HTTP endpoint.
pub const MCP: &str = "/v1/ai/mcp";
/// How long any single read from the server may take before a test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Adds `user`, runs the OAuth flow for them; returns (client_id, access token).
pub async fn signed_in(app: &TestApp, user: &str) -> (String, String) {
    app.add_user(user).await;
    let (client_id, t) = app.full_flow(user).await;
    let at = t["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    (client_id, at)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A POST of the stateless 2026-07-28 revision to the MCP endpoint: the
/// bearer token, `Accept` for JSON and event streams, `MCP-Protocol-Version`,
/// `Mcp-Method`, and `Mcp-Name` when `name` is given. The body is the
/// caller's.
pub fn stateless_post(
    app: &TestApp,
    token: &str,
    method: &str,
    name: Option<&str>,
) -> reqwest::RequestBuilder {
    let rb = app
        .http
        .post(app.url(MCP))
        .header("authorization", bearer(token))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    match name {
        Some(n) => rb.header("mcp-name", n),
        None => rb,
    }
}

/// The `WWW-Authenticate` header of a response (panics if absent).
pub fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("a WWW-Authenticate header on {} {}", r.status(), r.url()))
        .to_str()
        .expect("ascii header")
        .to_string()
}

pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_string())
}

/// The challenge for a request without credentials, exactly.
pub fn missing_token_challenge(app: &TestApp) -> String {
    format!(
        "Bearer resource_metadata=\"{}\", scope=\"mcp\"",
        app.urls.resource_metadata
    )
}

/// The protected resource metadata URL a route's challenge names: the
/// legacy `/sse` and `/messages` routes are the SSE resource (RFC 9728
/// §3.3: clients compare the metadata's `resource` with the URL they use).
pub fn metadata_url_for(app: &TestApp, path: &str) -> String {
    if path == "/sse" || path.starts_with("/messages") {
        app.urls.sse_resource_metadata.clone()
    } else {
        app.urls.resource_metadata.clone()
    }
}

/// The no-credentials challenge of a route.
pub fn missing_token_challenge_for(app: &TestApp, path: &str) -> String {
    format!(
        "Bearer resource_metadata=\"{}\", scope=\"mcp\"",
        metadata_url_for(app, path)
    )
}

/// Asserts a 401 `invalid_token` challenge whose description contains `why`.
pub fn assert_invalid_token(app: &TestApp, r: &reqwest::Response, why: &str) {
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.url());
    let h = www_authenticate(r);
    assert!(
        h.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{h}"
    );
    assert!(h.contains(why), "{h} should contain {why:?}");
    assert!(
        h.ends_with(&format!(
            ", resource_metadata=\"{}\", scope=\"mcp\"",
            metadata_url_for(app, r.url().path())
        )),
        "{h}"
    );
}

/// Stores an access token made by hand (through a code redeemed at once) for
/// `username` at `client_id`, with any scope and resource; returns it.
pub async fn insert_token(
    app: &TestApp,
    username: &str,
    client_id: &str,
    scope: &str,
    resource: &str,
) -> String {
    let user = app
        .store
        .user_by_username(username)
        .await
        .expect("store")
        .expect("the user exists");
    let token = format!("mcp_{}", random_hex::<16>());
    let now = app.clock.now();
    let grant_id = random_hex::<16>();
    let client_id = ClientId::parse(client_id).expect("client id");
    let scope = Scope::parse(scope).expect("scope");
    let resource = ResourceUri::parse(resource).expect("resource");
    let code = AuthCode {
        code_hash: hash_secret(&format!("code-for-{token}")),
        grant_id: grant_id.clone(),
        client_id: client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: RedirectUri::parse("http://127.0.0.1:1/callback").expect("redirect"),
        redirect_uri_explicit: true,
        scope: scope.clone(),
        resource: resource.clone(),
        code_challenge: Some(CodeChallenge::parse(CHALLENGE, Some("S256")).expect("challenge")),
        created_at: now,
        expires_at: now + 60,
        used_at: None,
    };
    let access = AccessToken {
        token_hash: hash_secret(&token),
        grant_id,
        client_id,
        user_id: Some(user.id),
        scope,
        resource,
        created_at: now,
        expires_at: now + 3600,
        revoked_at: None,
    };
    app.store.create_code(&code).await.expect("code stored");
    assert!(
        app.store
            .redeem_code(&code.code_hash, now, &access, None)
            .await
            .expect("redeem")
    );
    token
}

/// The JSON body of an `initialize` request.
pub fn initialize_body(id: i64, version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "mcpgate-tests", "version": "1.0.0"},
        },
    })
}

pub fn initialized_notification() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }
}

/// Asserts that `m` is a JSON-RPC error with `code` whose message says `says`.
pub fn assert_rpc_error(m: &Value, code: i64, says: &str) {
    assert_eq!(m["error"]["code"], code, "{m}");
    assert!(
        m["error"]["message"]
            .as_str()
            .is_some_and(|t| t.contains(says)),
        "{m}"
    );
}

/// Parses one event block (the lines between blank lines). Returns `None`
/// for a block of comments only (keep-alives).
fn parse_event(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    let mut any = false;
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        any = true;
        match field {
            "event" => event = Some(value.to_string()),
            "id" => id = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    any.then(|| SseEvent {
        event,
        id,
        data: data.join("\n"),
    })
}

/// Every event of a complete `text/event-stream` body.
pub fn parse_sse(body: &str) -> Vec<SseEvent> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(parse_event)
        .collect()
}

/// The JSON-RPC message with `id` among the events of a complete body.
pub fn message_with_id(body: &str, id: i64) -> Option<Value> {
    parse_sse(body)
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(SseEvent::json)
        .find(|m| m["id"] == json!(id))
}

/// Reads a `text/event-stream` response one event at a time, without
/// waiting for its end.
pub struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` at the end of the stream. Panics if
    /// nothing arrives within [`READ_TIMEOUT`].
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = find_blank_line(&self.buf) {
                let block: Vec<u8> = self.buf.drain(..end.1).collect();
                let text = String::from_utf8(block[..end.0].to_vec()).expect("utf-8 event");
                if let Some(e) = parse_event(&text.replace("\r\n", "\n")) {
                    return Some(e);
                }
                continue;
            }
            let chunk = tokio::time::timeout(READ_TIMEOUT, self.resp.chunk())
                .await
                .expect("the server sent the next event in time")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => {
                    let rest = String::from_utf8(std::mem::take(&mut self.buf)).expect("utf-8");
                    return parse_event(&rest.replace("\r\n", "\n"));
                }
            }
        }
    }

    /// Reads events until the JSON-RPC message with `id`; panics if the
    /// stream ends first.
    pub async fn message_with_id(&mut self, id: i64) -> Value {
        loop {
            let e = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("the stream ended before the message with id {id}"));
            if e.data.is_empty() {
                continue;
            }
            let m = e.json();
            if m["id"] == json!(id) {
                return m;
            }
        }
    }
}

/// The end of the first event block: (end of its content, end including the
/// blank line).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A Streamable HTTP client for one session.
pub struct McpClient {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
    pub session: Option<String>,
    pub version: Option<String>,
    next_id: i64,
}

/// The JSON-RPC response with `id` in a POST's answer, which the server may
/// give as one `application/json` body or in a `text/event-stream`.
pub async fn response_message(r: reqwest::Response, id: i64) -> Value {
    let ct = header(&r, "content-type").unwrap_or_default();
    if ct.starts_with("application/json") {
        let m: Value = r.json().await.expect("json");
        assert_eq!(m["id"], json!(id));
        return m;
    }
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    SseReader::new(r).message_with_id(id).await
}

impl McpClient {
    pub fn new(app: &TestApp, token: &str) -> Self {
        Self {
            http: app.http.clone(),
            url: app.url(MCP),
            token: token.to_string(),
            session: None,
            version: None,
            next_id: 1,
        }
    }

    /// A POST of `body` with this client's token, session and version.
    pub fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .post(&self.url)
            .header("authorization", bearer(&self.token))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = &self.session {
            rb = rb.header("mcp-session-id", s);
        }
        if let Some(v) = &self.version {
            rb = rb.header("mcp-protocol-version", v);
        }
        rb
    }

    /// Initializes a session at `version` and sends `notifications/initialized`;
    /// returns the initialize result.
    pub async fn initialize(&mut self, version: &str) -> Value {
        let id = self.take_id();
        let r = self
            .post(&initialize_body(id, version))
            .send()
            .await
            .expect("initialize");
        assert_eq!(r.status(), StatusCode::OK, "initialize");
        let ct = header(&r, "content-type").expect("content-type");
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let session = header(&r, "mcp-session-id").expect("an mcp-session-id header");
        assert!(!session.is_empty());
        let m = SseReader::new(r).message_with_id(id).await;
        assert_eq!(m["jsonrpc"], "2.0");
        let result = m["result"].clone();
        assert!(result.is_object(), "{m}");
        self.session = Some(session);
        self.version = Some(
            result["protocolVersion"]
                .as_str()
                .expect("protocolVersion")
                .to_string(),
        );
        let r = self
            .post(&initialized_notification())
            .send()
            .await
            .expect("initialized");
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "notifications/initialized"
        );
        result
    }

    pub fn take_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a request; returns the HTTP response and the id used.
    pub async fn send(&mut self, method: &str, params: Value) -> (reqwest::Response, i64) {
        let id = self.take_id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        (self.post(&body).send().await.expect("request"), id)
    }

    /// Sends a request and returns the JSON-RPC response message (asserts 200).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let (r, id) = self.send(method, params).await;
        assert_eq!(r.status(), StatusCode::OK, "{method}");
        response_message(r, id).await
    }

    /// `tools/call` and its JSON-RPC response message.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }
}

#[test]
fn the_sse_parser_reads_events_data_and_ids() {
    let body = "id: 0\nretry: 3000\ndata: \n\n: keep-alive\n\nevent: message\ndata: {\"id\":1,\"a\":2}\n\ndata: {\"id\":2}\r\n\r\n";
    let events = parse_sse(body);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].id.as_deref(), Some("0"));
    assert_eq!(events[0].data, "");
    assert_eq!(events[1].event.as_deref(), Some("message"));
    assert_eq!(message_with_id(body, 1).unwrap()["a"], 2);
    assert_eq!(message_with_id(body, 2).unwrap()["id"], 2);
    assert_eq!(message_with_id(body, 3), None);
}
