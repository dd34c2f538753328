//! The tools of the conformance suite's tasks scenarios (SEP-2663,
//! `tasks-*`), which mcpgate turns into tasks.
//!
//! This upstream speaks a 2025 revision and knows nothing of tasks: it
//! declares each tool's task support in the tool's
//! `_meta["io.modelcontextprotocol/tasks"].taskSupport` (rmcp's `Tool` has
//! no `execution` member to carry the 2025-11-25 `execution.taskSupport`),
//! and mcpgate creates and runs the task around an ordinary call.
//!
//! mcpgate answers a call that ends or asks within a moment (250 ms) as an
//! ordinary call (a result, or a multi-round-trip question to a
//! 2026-07-28 client) and makes one still running a task; the tools that
//! must become tasks before they fail or ask wait [`SETTLE`] first.
//!
//! - `greet` (sync only): `Hello, {name}!`;
//! - `slow_compute` (optional): sleeps `seconds`, then returns a text; a
//!   `notifications/cancelled` ends it early (and is recorded in
//!   `FIXTURE_CANCEL_LOG`);
//! - `failing_job` (required): a tool error after about a second;
//! - `protocol_error_job` (optional): a JSON-RPC error (internal error);
//! - `confirm_delete` (optional): asks for confirmation with one
//!   `elicitation/create`, then returns;
//! - `multi_input` (optional): two `elicitation/create` at once;
//! - `test_tool_with_task` (required): asks for `user_name` at once (a
//!   multi-round-trip round before any task), then works a second (the
//!   task) and greets with the answer.

use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::RoleServer;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, JsonObject, Tool};
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use super::{Conformance, text};

const EXTENSION_ID: &str = "io.modelcontextprotocol/tasks";
/// How long the tools that must become tasks first wait before they fail
/// or ask (longer than mcpgate's 250 ms).
const SETTLE: Duration = Duration::from_millis(600);

fn tool(name: &'static str, description: &'static str, schema: Value, support: &str) -> Tool {
    let Value::Object(schema) = schema else {
        unreachable!("schemas here are objects")
    };
    let mut t = Tool::new(name, description, std::sync::Arc::new(schema));
    if support != "forbidden" {
        let mut meta = JsonObject::new();
        meta.insert(EXTENSION_ID.into(), json!({ "taskSupport": support }));
        t.meta = Some(rmcp::model::MetaObject(meta));
    }
    t
}

pub(super) fn tools() -> Vec<Tool> {
    let none = || json!({ "type": "object", "properties": {} });
    vec![
        tool(
            "greet",
            "Greets by name (synchronous only).",
            json!({ "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] }),
            "forbidden",
        ),
        tool(
            "slow_compute",
            "Sleeps `seconds`, then returns (task support: optional).",
            json!({ "type": "object", "properties": {
                "seconds": { "type": "number" }, "label": { "type": "string" } } }),
            "optional",
        ),
        tool(
            "failing_job",
            "Fails with a tool error after about a second (task support: required).",
            none(),
            "required",
        ),
        tool(
            "protocol_error_job",
            "Fails with a JSON-RPC internal error (task support: optional).",
            none(),
            "optional",
        ),
        tool(
            "confirm_delete",
            "Asks for confirmation (elicitation/create), then deletes (task support: optional).",
            json!({ "type": "object", "properties": { "filename": { "type": "string" } } }),
            "optional",
        ),
        tool(
            "multi_input",
            "Asks two questions at once (two elicitation/create; task support: optional).",
            none(),
            "optional",
        ),
        tool(
            "test_tool_with_task",
            "Asks for user_name (elicitation/create), then greets (task support: required).",
            none(),
            "required",
        ),
    ]
}

fn confirm_schema(field: &str) -> Value {
    json!({
        "type": "object",
        "properties": { field: { "type": if field == "confirm" { "boolean" } else { "string" } } },
        "required": [field]
    })
}

/// Calls a tasks-scenario tool; `None` if `request` names none of them.
pub(super) async fn call(
    request: &CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResult, McpError>> {
    let args = request.arguments.clone().unwrap_or_default();
    Some(match request.name.as_ref() {
        "greet" => {
            let name = args.get("name").and_then(Value::as_str).unwrap_or("World");
            Ok(text(format!("Hello, {name}!")))
        }
        "slow_compute" => Ok(slow_compute(&args, ctx).await),
        "failing_job" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(CallToolResult::error(vec![ContentBlock::text(
                "failing_job failed, as it always does",
            )]))
        }
        "protocol_error_job" => {
            tokio::time::sleep(SETTLE).await;
            Err(McpError::internal_error(
                "protocol_error_job: an internal error, on purpose",
                None,
            ))
        }
        "confirm_delete" => {
            tokio::time::sleep(SETTLE).await;
            let file = args
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or("the file");
            Conformance::elicit(
                &format!("Delete {file}?"),
                confirm_schema("confirm"),
                "confirm_delete",
                ctx,
            )
            .await
        }
        "multi_input" => {
            tokio::time::sleep(SETTLE).await;
            let (a, b) = tokio::join!(
                Conformance::elicit("First question", confirm_schema("name"), "first", ctx),
                Conformance::elicit("Second question", confirm_schema("name"), "second", ctx),
            );
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    let mut content = a.content;
                    content.extend(b.content);
                    Ok(CallToolResult::success(content))
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        "test_tool_with_task" => {
            let answer = Conformance::elicit(
                "What is your name?",
                confirm_schema("user_name"),
                "Hello",
                ctx,
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            answer
        }
        _ => return None,
    })
}

async fn slow_compute(args: &JsonObject, ctx: &RequestContext<RoleServer>) -> CallToolResult {
    let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(1.0);
    let label = args.get("label").and_then(Value::as_str).unwrap_or("");
    let pause = Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
    tokio::select! {
        _ = tokio::time::sleep(pause) => text(format!("slow_compute {label}: done after {seconds} s")),
        _ = ctx.ct.cancelled() => {
            crate::tools::record_cancellation();
            CallToolResult::error(vec![ContentBlock::text("cancelled")])
        }
    }
}
