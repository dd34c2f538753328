//! Drives the `mcpgate-fixture-upstream` binary over stdio with rmcp's client:
//! its tools, the requests it sends back to the client, its notifications,
//! resources, prompt and completion, and a crash.

// Sampling, roots, logging and resources/subscribe are deprecated by SEP-2577
// in rmcp 3.x; the fixture exists to exercise them.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientInfo,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    ElicitationAction, GetPromptRequestParams, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotificationParam, Root,
    SamplingMessage, SubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, ServiceExt};
use serde_json::json;

const ALL_TOOLS: [&str; 13] = [
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

/// A client that answers the fixture's requests and records its notifications.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    updated: Arc<Mutex<Vec<String>>>,
    elicit_messages: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientInfo {
        let capabilities = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        ClientInfo::new(
            capabilities,
            Implementation::new("fixture-upstream-test", "0"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        assert_eq!(params.max_tokens, 100);
        let prompt: String = params
            .messages
            .iter()
            .flat_map(|m| m.content.iter())
            .filter_map(|c| c.as_text())
            .map(|t| t.text.as_str())
            .collect();
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
        let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        assert!(requested_schema.properties.contains_key("answer"));
        self.elicit_messages.lock().unwrap().push(message);
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "answer": "42" })))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(vec![
            Root::new("file:///work/a"),
            Root::new("file:///work/b"),
        ]))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }
}

type Client = RunningService<RoleClient, Recorder>;

async fn call(
    client: &Client,
    name: &'static str,
    args: serde_json::Value,
) -> Result<CallToolResult, ServiceError> {
    let mut params = CallToolRequestParams::new(name);
    if let serde_json::Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    client.call_tool(params).await
}

/// The text of a successful tool result.
async fn call_text(client: &Client, name: &'static str, args: serde_json::Value) -> String {
    let result = call(client, name, args)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_ne!(result.is_error, Some(true), "{name} failed: {result:?}");
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect()
}

/// Waits (up to 2 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn resource_text(contents: &[ResourceContents]) -> String {
    contents
        .iter()
        .map(|c| match c {
            ResourceContents::TextResourceContents { text, .. } => text.clone(),
            other => panic!("expected text contents, got {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn fixture_upstream_speaks_the_whole_protocol() {
    let cancel_log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate-fixture-upstream"));
    cmd.env("MCPGATE_USER_NAME", "alice")
        .env("MCPGATE_USER_ID", "u-1")
        .env("FIXTURE_CANCEL_LOG", cancel_log.path());
    let transport = TokioChildProcess::new(cmd).unwrap();
    let pid = transport.id().expect("the child has a pid");
    let recorder = Recorder::default();
    let client = recorder.clone().serve(transport).await.expect("initialize");

    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("fixture-upstream")
    );
    assert_eq!(
        info.protocol_version,
        ProtocolVersion::LATEST_WITH_INITIALIZE
    );
    let caps = &info.capabilities;
    assert_eq!(caps.tools.as_ref().and_then(|t| t.list_changed), Some(true));
    let resources = caps.resources.as_ref().expect("resources capability");
    assert_eq!(
        (resources.subscribe, resources.list_changed),
        (Some(true), Some(true))
    );
    assert_eq!(
        caps.prompts.as_ref().and_then(|p| p.list_changed),
        Some(true)
    );
    assert!(caps.completions.is_some() && caps.logging.is_some());

    // Tools.
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = ALL_TOOLS.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected);

    assert_eq!(
        call_text(&client, "echo", json!({ "text": "hi there" })).await,
        "hi there"
    );
    assert_eq!(
        call_text(&client, "add", json!({ "a": 2, "b": 3 })).await,
        "5"
    );
    assert_eq!(
        call_text(&client, "whoami_env", json!({})).await,
        format!("user=alice;id=u-1;pid={pid}")
    );

    // Progress. rmcp's client puts its own progress token on every request.
    assert_eq!(
        call_text(&client, "slow", json!({ "steps": 3, "step_ms": 10 })).await,
        "done"
    );
    eventually("3 progress notifications", || {
        recorder.progress.lock().unwrap().len() >= 3
    })
    .await;
    {
        let progress = recorder.progress.lock().unwrap();
        let steps: Vec<(f64, Option<f64>)> =
            progress.iter().map(|p| (p.progress, p.total)).collect();
        assert_eq!(
            steps,
            vec![(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]
        );
        assert!(
            progress
                .iter()
                .all(|p| p.progress_token == progress[0].progress_token)
        );
    }

    // Cancellation: dropping the call sends notifications/cancelled.
    recorder.progress.lock().unwrap().clear();
    let slow = call(&client, "slow", json!({ "steps": 100, "step_ms": 20 }));
    let abandoned = tokio::time::timeout(Duration::from_millis(150), slow).await;
    assert!(abandoned.is_err(), "slow should still be running");
    eventually("the cancellation log", || {
        std::fs::read_to_string(cancel_log.path()).unwrap_or_default() == "cancelled\n"
    })
    .await;
    let hang = call(&client, "hang", json!({}));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), hang)
            .await
            .is_err()
    );

    // Requests back to the client.
    assert_eq!(
        call_text(&client, "sample", json!({ "prompt": "hello" })).await,
        "sampled: reply to hello"
    );
    assert_eq!(
        call_text(
            &client,
            "elicit",
            json!({ "message": "What is the answer?" })
        )
        .await,
        "elicited: accept 42"
    );
    assert_eq!(
        *recorder.elicit_messages.lock().unwrap(),
        vec!["What is the answer?".to_owned()]
    );
    assert_eq!(
        call_text(&client, "roots", json!({})).await,
        "file:///work/a,file:///work/b"
    );

    // Notifications.
    assert_eq!(
        call_text(&client, "log", json!({ "message": "note this" })).await,
        "logged"
    );
    eventually("the log message", || {
        !recorder.logs.lock().unwrap().is_empty()
    })
    .await;
    {
        let logs = recorder.logs.lock().unwrap();
        assert_eq!(logs[0].logger.as_deref(), Some("fixture"));
        assert_eq!(logs[0].data, json!("note this"));
    }
    assert_eq!(
        call_text(&client, "change_tools", json!({})).await,
        "changed"
    );

    // Resources.
    let listed = client.list_all_resources().await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        ["fixture://static"]
    );
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].uri_template, "fixture://item/{id}");
    let read = client
        .read_resource(ReadResourceRequestParams::new("fixture://static"))
        .await
        .unwrap();
    assert_eq!(resource_text(&read.contents), "static text");
    let read = client
        .read_resource(ReadResourceRequestParams::new("fixture://item/7"))
        .await
        .unwrap();
    assert_eq!(resource_text(&read.contents), "item 7");
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new("fixture://nope"))
            .await
            .is_err()
    );
    client
        .subscribe(SubscribeRequestParams::new("fixture://static"))
        .await
        .unwrap();
    eventually("resources/updated", || {
        recorder
            .updated
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == "fixture://static")
    })
    .await;

    // Prompt and completion.
    let prompt = client
        .get_prompt(
            GetPromptRequestParams::new("greet")
                .with_arguments(json!({ "name": "Bob" }).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(prompt.messages.len(), 1);
    assert_eq!(
        serde_json::to_value(&prompt.messages[0]).unwrap(),
        json!({ "role": "user", "content": { "type": "text", "text": "Hello, Bob!" } })
    );
    assert_eq!(
        client
            .complete_prompt_simple("greet", "name", "b")
            .await
            .unwrap(),
        ["bob"]
    );
    assert_eq!(
        client
            .complete_prompt_simple("greet", "name", "")
            .await
            .unwrap(),
        ["alice", "bob", "carol"]
    );

    // A crash fails the pending call instead of leaving it hanging.
    let crashed = tokio::time::timeout(Duration::from_secs(3), call(&client, "crash", json!({})))
        .await
        .expect("the crash call should end, not hang");
    assert!(crashed.is_err(), "crash answered: {crashed:?}");
}

/// `--fail-start` makes the process exit with code 2 before speaking MCP.
#[tokio::test]
async fn fail_start_exits_with_code_2() {
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate-fixture-upstream"))
        .arg("--fail-start")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
