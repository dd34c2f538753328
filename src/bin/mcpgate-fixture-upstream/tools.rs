//! The fixture's tools: their argument types and the `#[tool_router]`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ClientResult, ContentBlock, CreateMessageRequestParams, ElicitRequest,
    ElicitRequestParams, ElicitationSchema, LoggingLevel, LoggingMessageNotificationParam,
    ProgressNotificationParam, SamplingMessage, ServerRequest,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, tool, tool_router};
use serde::Deserialize;

use crate::server::Fixture;

#[derive(Debug, Deserialize, JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct AddArgs {
    /// The first addend.
    a: f64,
    /// The second addend.
    b: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct SlowArgs {
    /// How many steps to run; one progress notification is sent after each.
    steps: u32,
    /// How long each step takes, in milliseconds.
    step_ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct SampleArgs {
    /// The user message to ask the client's model.
    prompt: String,
    /// Wait this long (at most 10 s) before asking, so that calls overlap.
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ElicitArgs {
    /// The question to show the user.
    message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct LogArgs {
    /// The text of the log message.
    message: String,
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

fn tool_error(s: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(s)])
}

/// Appends `cancelled` to the file named by `FIXTURE_CANCEL_LOG`, if set.
pub(crate) fn record_cancellation() {
    let Some(path) = std::env::var_os("FIXTURE_CANCEL_LOG") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"cancelled\n"));
    if let Err(e) = written {
        tracing::warn!(error = %e, path = ?path, "cannot write the cancellation log");
    }
}

#[tool_router]
impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
            subscriptions: Arc::default(),
            log_level: Arc::default(),
        }
    }

    #[tool(description = "Returns the given text unchanged.")]
    async fn echo(
        &self,
        Parameters(args): Parameters<EchoArgs>,
    ) -> Result<CallToolResult, McpError> {
        Ok(text(args.text))
    }

    #[tool(
        description = "Reports the W3C trace context the call carried in `_meta` (SEP-414), as \
                       `traceparent=<value or none>`."
    )]
    async fn trace_context(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        Ok(text(format!(
            "traceparent={}",
            ctx.meta.get_traceparent().unwrap_or("none")
        )))
    }

    #[tool(
        description = "Reports the JSON-RPC id this call arrived with and the progress token in its \
                       `_meta`, as `id=<id>;progress=<token or none>`."
    )]
    async fn request_id(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let progress = ctx
            .meta
            .get_progress_token()
            .map(|t| t.0.to_string())
            .unwrap_or_else(|| "none".into());
        Ok(text(format!("id={};progress={progress}", ctx.id)))
    }

    #[tool(
        description = "Adds two numbers and returns the sum as text, e.g. a=2, b=3 gives \"5\"."
    )]
    async fn add(&self, Parameters(args): Parameters<AddArgs>) -> Result<CallToolResult, McpError> {
        Ok(text((args.a + args.b).to_string()))
    }

    #[tool(
        description = "Reports the user this server process runs for and its process id, as \
                       `user=<MCPGATE_USER_NAME>;id=<MCPGATE_USER_ID>;pid=<pid>`."
    )]
    async fn whoami_env(&self) -> Result<CallToolResult, McpError> {
        let var = |name| std::env::var(name).unwrap_or_default();
        Ok(text(format!(
            "user={};id={};pid={}",
            var("MCPGATE_USER_NAME"),
            var("MCPGATE_USER_ID"),
            std::process::id()
        )))
    }

    #[tool(
        description = "Runs `steps` steps of `step_ms` milliseconds each, sending a progress notification \
                       after each step when the call carries a progress token, then returns \"done\". \
                       Stops early when the call is cancelled."
    )]
    async fn slow(
        &self,
        Parameters(args): Parameters<SlowArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let token = ctx.meta.get_progress_token();
        for step in 1..=args.steps {
            tokio::select! {
                () = ctx.ct.cancelled() => {
                    tracing::info!(step, "slow: cancelled");
                    record_cancellation();
                    return Err(McpError::internal_error("the call was cancelled", None));
                }
                () = tokio::time::sleep(Duration::from_millis(args.step_ms)) => {}
            }
            if let Some(token) = &token {
                let progress = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(args.steps))
                    .with_message(format!("step {step} of {}", args.steps));
                if let Err(e) = ctx.peer.notify_progress(progress).await {
                    tracing::warn!(error = %e, "slow: cannot send progress");
                }
            }
        }
        Ok(text("done"))
    }

    #[tool(description = "Makes the server process exit at once with code 3, without answering.")]
    async fn crash(&self) -> Result<CallToolResult, McpError> {
        tracing::warn!("crash: exiting with code 3");
        std::process::exit(3)
    }

    #[tool(description = "Never answers; the call only ends when it is cancelled.")]
    async fn hang(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
        ctx.ct.cancelled().await;
        tracing::info!("hang: cancelled");
        Err(McpError::internal_error("the call was cancelled", None))
    }

    #[tool(
        description = "Asks the client's model (sampling/createMessage) with the prompt as the user message \
                       and returns \"sampled: <reply>\"."
    )]
    async fn sample(
        &self,
        Parameters(args): Parameters<SampleArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        if args.delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(args.delay_ms.min(10_000))).await;
        }
        let params =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(args.prompt)], 100);
        match ctx.peer.create_message(params).await {
            Ok(reply) => {
                let reply_text = reply
                    .message
                    .content
                    .iter()
                    .filter_map(|c| c.as_text())
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join("");
                Ok(text(format!("sampled: {reply_text}")))
            }
            Err(e) => Ok(tool_error(format!("sampling/createMessage failed: {e}"))),
        }
    }

    #[tool(
        description = "Asks the user (elicitation/create) the given question with a form of one string field \
                       `answer` and returns \"elicited: <action> <answer>\"."
    )]
    async fn elicit(
        &self,
        Parameters(args): Parameters<ElicitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let schema = ElicitationSchema::builder()
            .required_string("answer")
            .build()
            .map_err(|e| McpError::internal_error(format!("bad elicitation schema: {e}"), None))?;
        let request = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: args.message,
            requested_schema: schema,
        });
        // `Peer::create_elicitation` needs rmcp's `elicitation` feature; the raw
        // request needs nothing.
        match ctx
            .peer
            .send_request(ServerRequest::ElicitRequest(request))
            .await
        {
            Ok(ClientResult::ElicitResult(result)) => {
                let action = serde_json::to_value(&result.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let answer = result
                    .content
                    .as_ref()
                    .and_then(|c| c.get("answer"))
                    .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned));
                Ok(text(match answer {
                    Some(answer) => format!("elicited: {action} {answer}"),
                    None => format!("elicited: {action}"),
                }))
            }
            Ok(other) => Ok(tool_error(format!(
                "elicitation/create: unexpected reply {other:?}"
            ))),
            Err(e) => Ok(tool_error(format!("elicitation/create failed: {e}"))),
        }
    }

    #[tool(
        description = "Asks the client for its roots (roots/list) and returns their URIs joined by \",\"."
    )]
    async fn roots(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
        match ctx.peer.list_roots().await {
            Ok(result) => {
                let uris: Vec<&str> = result.roots.iter().map(|r| r.uri.as_str()).collect();
                Ok(text(uris.join(",")))
            }
            Err(e) => Ok(tool_error(format!("roots/list failed: {e}"))),
        }
    }

    #[tool(
        description = "Sends the message to the client as a log notification (notifications/message, level \
                       info, logger \"fixture\") and returns \"logged\"."
    )]
    async fn log(
        &self,
        Parameters(args): Parameters<LogArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let param = LoggingMessageNotificationParam::new(
            LoggingLevel::Info,
            serde_json::Value::String(args.message),
        )
        .with_logger("fixture");
        ctx.peer.notify_logging_message(param).await.map_err(|e| {
            McpError::internal_error(format!("cannot send the log message: {e}"), None)
        })?;
        Ok(text("logged"))
    }

    #[tool(
        description = "Tells the client that the tool list changed (notifications/tools/list_changed) and \
                       returns \"changed\". The list itself stays the same."
    )]
    async fn change_tools(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        ctx.peer.notify_tool_list_changed().await.map_err(|e| {
            McpError::internal_error(format!("cannot send the notification: {e}"), None)
        })?;
        Ok(text("changed"))
    }
}
