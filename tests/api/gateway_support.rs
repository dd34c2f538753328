//! Helpers for the gateway tests (`gateway` module): upstream configs of the
//! fixture upstream, a real rmcp client over Streamable HTTP whose handler
//! answers the server's requests and records its notifications, `/healthz?details`,
//! polling, and the legacy SSE transport.

// Sampling, roots, logging and resources/subscribe are deprecated by SEP-2577
// in rmcp 3.x, but the gateway relays them on initialize-based sessions.
#![allow(dead_code, deprecated)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcpgate::gateway::config::UpstreamConfig;
use reqwest::StatusCode;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientInfo,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation, ListRootsResult, LoggingMessageNotificationParam,
    ProgressNotificationParam, ProtocolVersion, ResourceUpdatedNotificationParam, Root,
    SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{
    MCP, SseReader, bearer, header, initialize_body, initialized_notification,
};

/// The fixture upstream binary.
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_mcpgate-fixture-upstream");

/// The fixture's tools, in its own names.
pub const FIXTURE_TOOLS: [&str; 13] = [
    "echo",
    "add",
    "whoami_env",
    "slow",
    "crash",
    "hang",
    "sample",
    "elicit",
    "roots",
    "log",
    "change_tools",
    "trace_context",
    "request_id",
];

/// mcpgate's built-in tools.
pub const BUILTIN_TOOLS: [&str; 3] = ["whoami", "echo", "current_time"];

/// How long a test waits for a notification or a state change.
pub const WAIT: Duration = Duration::from_secs(10);

/// An upstream running the fixture, named `name`, with extra TOML lines
/// (`prefix = ""`, `isolation = "per_user"`, …).
pub fn fixture(name: &str, extra: &str) -> UpstreamConfig {
    upstream(&format!("name = {name:?}\ncommand = {FIXTURE:?}\n{extra}"))
}

/// A gateway whose fixture upstream `fx` appends `cancelled` to a log file
/// whenever a call is cancelled; with the directory holding the log (keep
/// it) and the log's path.
pub async fn spawn_gateway_logging_cancellations() -> (TestApp, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("cancel.log");
    let app = spawn_gateway(vec![fixture(
        "fx",
        &format!(
            "env = {{ FIXTURE_CANCEL_LOG = {:?} }}",
            log.display().to_string()
        ),
    )])
    .await;
    (app, dir, log)
}

/// Waits until the fixture of [`spawn_gateway_logging_cancellations`] has
/// logged one cancellation.
pub async fn wait_for_cancellation(log: &Path) {
    poll("the upstream's cancellation log", WAIT, || async {
        (std::fs::read_to_string(log).unwrap_or_default() == "cancelled\n").then_some(())
    })
    .await;
}

/// An upstream config from TOML, as in an `[[upstream]]` table.
pub fn upstream(toml_text: &str) -> UpstreamConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("upstream config {toml_text:?}: {e}"))
}

/// Starts a server with these upstreams.
pub async fn spawn_gateway(upstreams: Vec<UpstreamConfig>) -> TestApp {
    spawn_app_with(|s| s.upstream = upstreams).await
}

/// The id of a user in the store.
pub async fn user_id(app: &TestApp, username: &str) -> String {
    app.store
        .user_by_username(username)
        .await
        .expect("store")
        .expect("the user exists")
        .id
}

// ---- the downstream client ----

/// What the server sent the client, in order of arrival.
pub struct Events {
    pub progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
    pub logs: mpsc::UnboundedReceiver<LoggingMessageNotificationParam>,
    pub tools_changed: mpsc::UnboundedReceiver<()>,
    pub updated: mpsc::UnboundedReceiver<String>,
    /// The messages of elicitation requests the client answered.
    pub elicitations: mpsc::UnboundedReceiver<String>,
}

/// The next item of a channel, or a panic naming `what` after [`WAIT`].
pub async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("the {what} channel closed"))
}

/// A client handler that answers sampling, elicitation and roots requests
/// and forwards every notification it gets to [`Events`].
#[derive(Clone)]
pub struct Recorder {
    progress: mpsc::UnboundedSender<ProgressNotificationParam>,
    logs: mpsc::UnboundedSender<LoggingMessageNotificationParam>,
    tools_changed: mpsc::UnboundedSender<()>,
    updated: mpsc::UnboundedSender<String>,
    elicitations: mpsc::UnboundedSender<String>,
}

impl Recorder {
    pub fn new() -> (Self, Events) {
        let (progress, progress_rx) = mpsc::unbounded_channel();
        let (logs, logs_rx) = mpsc::unbounded_channel();
        let (tools_changed, tools_changed_rx) = mpsc::unbounded_channel();
        let (updated, updated_rx) = mpsc::unbounded_channel();
        let (elicitations, elicitations_rx) = mpsc::unbounded_channel();
        (
            Self {
                progress,
                logs,
                tools_changed,
                updated,
                elicitations,
            },
            Events {
                progress: progress_rx,
                logs: logs_rx,
                tools_changed: tools_changed_rx,
                updated: updated_rx,
                elicitations: elicitations_rx,
            },
        )
    }
}

/// The text of a sampling request's messages, joined.
pub fn prompt_text(params: &CreateMessageRequestParams) -> String {
    params
        .messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect()
}

/// The roots the test client reports.
pub const ROOTS: [&str; 2] = ["file:///work/a", "file:///work/b"];
/// The elicitation answer of the test client.
pub const ELICIT_ANSWER: &str = "42";

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientInfo {
        let capabilities = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        // 2026-07-28 sessions carry no server-to-client requests.
        ClientInfo::new(
            capabilities,
            Implementation::new("mcpgate-gateway-tests", "1.0.0"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let prompt = prompt_text(&params);
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("reply to {prompt}")),
            "test-model".to_owned(),
        ))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let _ = self.elicitations.send(message);
        Ok(ElicitResult::new(ElicitationAction::Accept)
            .with_content(json!({ "answer": ELICIT_ANSWER })))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(
            ROOTS.iter().map(|r| Root::new(*r)).collect(),
        ))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.logs.send(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.updated.send(params.uri);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.tools_changed.send(());
    }
}

pub type Client = RunningService<RoleClient, Recorder>;

/// Connects a real MCP client to the gateway's Streamable HTTP endpoint
/// with `token`.
pub async fn connect(app: &TestApp, token: &str) -> (Client, Events) {
    let (recorder, events) = Recorder::new();
    let config = StreamableHttpClientTransportConfig::with_uri(app.url(MCP)).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    let client = tokio::time::timeout(WAIT, recorder.serve(transport))
        .await
        .expect("initialize in time")
        .expect("the client initializes");
    assert_eq!(
        client.peer_info().map(|i| i.protocol_version.clone()),
        Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
        "the session speaks a revision with server-to-client requests"
    );
    (client, events)
}

/// The parameters of a `tools/call`.
pub fn tool_call(name: &str, args: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    params
}

/// Calls a tool (bounded by [`WAIT`]).
pub async fn call<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    name: &str,
    args: Value,
) -> Result<CallToolResult, ServiceError> {
    tokio::time::timeout(WAIT, client.call_tool(tool_call(name, args)))
        .await
        .unwrap_or_else(|_| panic!("tools/call {name} did not end within {WAIT:?}"))
}

/// The text of a tool result.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect()
}

/// The text of a successful tool call.
pub async fn call_text(client: &Client, name: &str, args: Value) -> String {
    let result = call(client, name, args)
        .await
        .unwrap_or_else(|e| panic!("tools/call {name}: {e}"));
    assert_ne!(result.is_error, Some(true), "{name} failed: {result:?}");
    text_of(&result)
}

/// The JSON-RPC error of a failed call (panics on success or another failure).
pub fn mcp_error<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> McpError {
    match r {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// Every tool name the client sees, sorted.
pub async fn tool_names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

/// The built-in tools plus the fixture's under each prefix, sorted.
pub fn expected_tools(prefixes: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN_TOOLS.iter().map(|s| (*s).to_owned()).collect();
    for p in prefixes {
        names.extend(FIXTURE_TOOLS.iter().map(|t| format!("{p}_{t}")));
    }
    names.sort();
    names
}

/// Parses the text of `whoami_env`: (user, id, pid).
pub fn whoami_env(text: &str) -> (String, String, u32) {
    let field = |name: &str| {
        text.split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
            .to_owned()
    };
    let pid = field("pid")
        .parse()
        .unwrap_or_else(|e| panic!("pid in {text:?}: {e}"));
    (field("user"), field("id"), pid)
}

// ---- health ----

/// `GET /healthz?details` as an operator: status code and body.
pub async fn healthz(app: &TestApp) -> (StatusCode, Value) {
    let r = app
        .http
        .get(app.url("/healthz?details"))
        .bearer_auth(app.auth.operator_token())
        .send()
        .await
        .expect("GET /healthz");
    let status = r.status();
    (status, r.json().await.expect("healthz JSON"))
}

/// The `/healthz` entry of one upstream.
pub async fn upstream_health(app: &TestApp, name: &str) -> Value {
    let (_, body) = healthz(app).await;
    body["upstreams"]
        .as_array()
        .expect("upstreams array")
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no upstream {name} in {body}"))
        .clone()
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn poll<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `/healthz` shows the upstream `name` matching `pred`; returns its entry.
pub async fn wait_for_upstream(
    app: &TestApp,
    name: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    poll(&format!("upstream {name} in /healthz"), limit, || async {
        let u = upstream_health(app, name).await;
        pred(&u).then_some(u)
    })
    .await
}

// ---- the environment of a process ----

/// The environment of a running process (Linux `/proc`).
pub fn process_environ(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_else(|e| panic!("environ of {pid}: {e}"));
    String::from_utf8_lossy(&raw).replace('\0', "\n")
}

/// The command line of a running process (Linux `/proc`).
pub fn process_cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_else(|e| panic!("cmdline of {pid}: {e}"));
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

// ---- the legacy HTTP+SSE transport ----

/// Opens `GET /sse`; returns the reader (after the endpoint event) and the
/// message path it named.
pub async fn open_legacy_sse(app: &TestApp, token: &str) -> (SseReader, String) {
    let r = app
        .http
        .get(app.url("/sse"))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(r.status(), StatusCode::OK, "GET /sse");
    let ct = header(&r, "content-type").unwrap_or_default();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut events = SseReader::new(r);
    let first = events.next_event().await.expect("an endpoint event");
    assert_eq!(first.event.as_deref(), Some("endpoint"), "{first:?}");
    assert!(
        first.data.starts_with("/messages/?session_id="),
        "{first:?}"
    );
    (events, first.data)
}

/// Posts a JSON-RPC message to the legacy message endpoint; asserts 202.
pub async fn legacy_post(app: &TestApp, endpoint: &str, token: &str, body: &Value) {
    let r = app
        .http
        .post(app.url(endpoint))
        .header("authorization", bearer(token))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /messages/");
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{body}");
}

/// Reads legacy `message` events until the one with JSON-RPC id `id`.
pub async fn legacy_reply(events: &mut SseReader, id: i64) -> Value {
    loop {
        let e = events.next_event().await.expect("the stream is open");
        if e.data.is_empty() {
            continue;
        }
        let m = e.json();
        if m["id"] == json!(id) {
            return m;
        }
    }
}

/// Opens a legacy session and initializes it; returns the reader and the
/// message path.
pub async fn legacy_session(app: &TestApp, token: &str) -> (SseReader, String) {
    let (mut events, endpoint) = open_legacy_sse(app, token).await;
    legacy_post(app, &endpoint, token, &initialize_body(1, "2024-11-05")).await;
    let m = legacy_reply(&mut events, 1).await;
    assert_eq!(m["result"]["protocolVersion"], "2024-11-05", "{m}");
    legacy_post(app, &endpoint, token, &initialized_notification()).await;
    (events, endpoint)
}
