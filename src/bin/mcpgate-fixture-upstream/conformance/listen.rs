//! The diagnostic tools of the 2026-07-28 scenarios the gateway serves
//! itself (conformance 0.2.x, `server-stateless`,
//! `http-custom-header-server-validation`):
//!
//! - `test_logging_tool` sends one info log message and returns. The
//!   fixture speaks a 2025 revision and cannot see the client's `_meta`: it
//!   is the gateway that must not pass the message on to a 2026-07-28
//!   request without `io.modelcontextprotocol/logLevel` (SEP-2575).
//! - `test_trigger_tool_change` and `test_trigger_prompt_change` change the
//!   tool (prompt) list, adding or removing `test_dynamic_tool`
//!   (`test_dynamic_prompt`), and send `notifications/tools/list_changed`
//!   (`prompts/list_changed`), which the gateway delivers to the open
//!   `subscriptions/listen` streams that asked for it.
//! - `test_custom_header` has a string argument annotated with
//!   `x-mcp-header` (SEP-2243), so the client sends it as an
//!   `Mcp-Param-Region` header as well, which the gateway checks against
//!   the body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, JsonObject, LoggingLevel,
    LoggingMessageNotificationParam, Prompt, PromptMessage, Role, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Value, json};

/// The lists the trigger tools change.
#[derive(Default)]
pub(crate) struct Dynamic {
    tool: AtomicBool,
    prompt: AtomicBool,
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn no_arguments() -> Arc<JsonObject> {
    schema(json!({ "type": "object", "properties": {} }))
}

/// The tools of this file, with `test_dynamic_tool` while it is added.
pub(crate) fn tools(dynamic: &Dynamic) -> Vec<Tool> {
    let mut list = vec![
        Tool::new(
            "test_logging_tool",
            "Sends one info log message, then returns \"Logging evaluated\".",
            no_arguments(),
        ),
        Tool::new(
            "test_trigger_tool_change",
            "Adds or removes test_dynamic_tool and sends notifications/tools/list_changed.",
            no_arguments(),
        ),
        Tool::new(
            "test_trigger_prompt_change",
            "Adds or removes test_dynamic_prompt and sends notifications/prompts/list_changed.",
            no_arguments(),
        ),
        Tool::new(
            "test_custom_header",
            "Echoes its region argument, which clients also send as the Mcp-Param-Region header.",
            schema(json!({
                "type": "object",
                "properties": {
                    "region": {
                        "type": "string",
                        "description": "Any text",
                        "x-mcp-header": "Region"
                    }
                },
                "required": ["region"]
            })),
        ),
    ];
    if dynamic.tool.load(Ordering::SeqCst) {
        list.push(Tool::new(
            "test_dynamic_tool",
            "Listed after test_trigger_tool_change; returns \"dynamic\".",
            no_arguments(),
        ));
    }
    list
}

/// `test_dynamic_prompt` while it is added.
pub(crate) fn prompts(dynamic: &Dynamic) -> Vec<Prompt> {
    if dynamic.prompt.load(Ordering::SeqCst) {
        vec![Prompt::new(
            "test_dynamic_prompt",
            Some("Listed after test_trigger_prompt_change"),
            None,
        )]
    } else {
        Vec::new()
    }
}

/// `test_dynamic_prompt`'s messages, if it is listed and named.
pub(crate) fn prompt(dynamic: &Dynamic, name: &str) -> Option<Vec<PromptMessage>> {
    (name == "test_dynamic_prompt" && dynamic.prompt.load(Ordering::SeqCst))
        .then(|| vec![PromptMessage::new_text(Role::User, "A dynamic prompt.")])
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

fn failed(what: &str, e: impl std::fmt::Display) -> McpError {
    McpError::internal_error(format!("cannot send {what}: {e}"), None)
}

/// Calls a tool of this file; `None` if `name` is not one.
pub(crate) async fn call(
    dynamic: &Dynamic,
    request: &CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResult, McpError>> {
    Some(match request.name.as_ref() {
        "test_logging_tool" => {
            let param = LoggingMessageNotificationParam::new(
                LoggingLevel::Info,
                Value::String("Diagnostic trace logging activated".into()),
            )
            .with_logger("conformance");
            match ctx.peer.notify_logging_message(param).await {
                Ok(()) => Ok(text("Logging evaluated")),
                Err(e) => Err(failed("a log message", e)),
            }
        }
        "test_trigger_tool_change" => {
            dynamic.tool.fetch_xor(true, Ordering::SeqCst);
            match ctx.peer.notify_tool_list_changed().await {
                Ok(()) => Ok(text("Mutation triggered")),
                Err(e) => Err(failed("tools/list_changed", e)),
            }
        }
        "test_trigger_prompt_change" => {
            dynamic.prompt.fetch_xor(true, Ordering::SeqCst);
            match ctx.peer.notify_prompt_list_changed().await {
                Ok(()) => Ok(text("Mutation triggered")),
                Err(e) => Err(failed("prompts/list_changed", e)),
            }
        }
        "test_custom_header" => {
            let region = request
                .arguments
                .as_ref()
                .and_then(|a| a.get("region"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(text(format!("region: {region}")))
        }
        "test_dynamic_tool" if dynamic.tool.load(Ordering::SeqCst) => Ok(text("dynamic")),
        _ => return None,
    })
}
