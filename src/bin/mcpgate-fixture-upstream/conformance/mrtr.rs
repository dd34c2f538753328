//! The diagnostic tools and prompt of the conformance suite's
//! multi-round-trip scenarios (`input-required-result-*`, SEP-2322) and of
//! the `server-stateless` capability checks (SEP-2575).
//!
//! The suite expects a 2026-07-28 server to answer with an
//! `InputRequiredResult`. This fixture speaks 2025: each tool asks its
//! client (mcpgate) with ordinary `elicitation/create`,
//! `sampling/createMessage` and `roots/list` requests and waits for the
//! answers; mcpgate turns the questions into `InputRequiredResult`s for a
//! 2026-07-28 client and the client's retries into the answers. Where a
//! scenario checks an `inputRequests` key, the request names it in
//! `_meta["mcpgate/inputKey"]` (mcpgate's convention, `gateway::input`).
//!
//! - `test_missing_capability`: needs sampling; fails if it is refused
//!   (mcpgate then answers `-32021`).
//! - `test_streaming_elicitation`: one elicitation.
//! - `test_input_required_result_elicitation` (`user_name`),
//!   `_sampling` (`sample_request`), `_list_roots`, `_request_state`
//!   (`confirm`), `_tampered_state`: one question each.
//! - `_multiple_inputs`: an elicitation, a sampling and a roots request at
//!   once.
//! - `_multi_round`: two elicitations, one after the other (`step1`,
//!   `step2`).
//! - `_capabilities`: an elicitation and a sampling request at once, and
//!   whatever of them is answered.
//! - prompt `test_input_required_result_prompt`: one elicitation
//!   (`user_context`).
//! - `test_upstream_input_required` (for mcpgate's own tests, when the
//!   fixture is connected on 2026-07-28): asks in its own
//!   `InputRequiredResult` (key `q`, state `native-state`) and answers
//!   `native: <answer>`.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult, ContentBlock,
    CreateMessageRequest, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
    ElicitationSchema, GetPromptResult, InputRequest, InputRequiredResult, JsonObject,
    ListRootsRequest, Prompt, PromptMessage, RequestMetaObject, Role, SamplingMessage,
    ServerRequest, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Value, json};

const KEY_META: &str = "mcpgate/inputKey";
const NATIVE: &str = "test_upstream_input_required";
const NATIVE_STATE: &str = "native-state";
pub(super) const PROMPT: &str = "test_input_required_result_prompt";

fn no_arguments() -> Arc<JsonObject> {
    match json!({ "type": "object", "properties": {} }) {
        Value::Object(m) => Arc::new(m),
        _ => Arc::default(),
    }
}

pub(super) fn tools() -> Vec<Tool> {
    [
        (
            "test_missing_capability",
            "Needs sampling: asks the client's model, fails if it cannot.",
        ),
        (
            "test_streaming_elicitation",
            "Asks the user once (elicitation/create) and returns the answer.",
        ),
        (
            "test_input_required_result_elicitation",
            "Asks the user's name (key user_name) and greets them.",
        ),
        (
            "test_input_required_result_sampling",
            "Asks the client's model the capital of France (key sample_request).",
        ),
        (
            "test_input_required_result_list_roots",
            "Asks the client's roots and counts them.",
        ),
        (
            "test_input_required_result_request_state",
            "Asks for a confirmation (key confirm); answers state-ok.",
        ),
        (
            "test_input_required_result_multiple_inputs",
            "Asks an elicitation, a sampling and a roots request at once.",
        ),
        (
            "test_input_required_result_multi_round",
            "Asks two questions, one after the other (step1, step2).",
        ),
        (
            "test_input_required_result_tampered_state",
            "Asks for a confirmation; the gateway signs the state.",
        ),
        (
            "test_input_required_result_capabilities",
            "Asks an elicitation and a sampling request at once; uses what is answered.",
        ),
        (
            NATIVE,
            "2026-07-28 sessions only: asks in its own InputRequiredResult (key q).",
        ),
    ]
    .into_iter()
    .map(|(name, description)| Tool::new(name, description, no_arguments()))
    .collect()
}

pub(super) fn prompts() -> Vec<Prompt> {
    vec![Prompt::new(
        PROMPT,
        Some("A prompt that first asks the user for its context (elicitation)"),
        None,
    )]
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

fn keyed(key: &str) -> RequestMetaObject {
    let mut meta = RequestMetaObject::new();
    meta.insert(KEY_META.to_string(), Value::String(key.to_string()));
    meta
}

/// Asks the client with a form; the accepted content, or an error text.
async fn elicit(
    ctx: &RequestContext<RoleServer>,
    key: Option<&str>,
    message: &str,
    field: &str,
) -> Result<Value, McpError> {
    let schema = json!({
        "type": "object",
        "properties": { field: { "type": "string" } },
        "required": [field]
    });
    let requested_schema: ElicitationSchema = serde_json::from_value(schema)
        .map_err(|e| McpError::internal_error(format!("bad schema: {e}"), None))?;
    let request = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
        meta: key.map(keyed),
        message: message.to_owned(),
        requested_schema,
    });
    match ctx
        .peer
        .send_request(ServerRequest::ElicitRequest(request))
        .await
    {
        Ok(ClientResult::ElicitResult(r)) => Ok(r.content.unwrap_or(Value::Null)),
        Ok(other) => Err(McpError::internal_error(
            format!("elicitation/create: unexpected reply {other:?}"),
            None,
        )),
        Err(rmcp::service::ServiceError::McpError(e)) => Err(e),
        Err(e) => Err(McpError::internal_error(
            format!("elicitation/create failed: {e}"),
            None,
        )),
    }
}

fn field(content: &Value, name: &str) -> String {
    content
        .get(name)
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

async fn sample(
    ctx: &RequestContext<RoleServer>,
    key: Option<&str>,
    prompt: &str,
) -> Result<String, McpError> {
    let mut params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    params.meta = key.map(keyed);
    match ctx
        .peer
        .send_request(ServerRequest::CreateMessageRequest(
            CreateMessageRequest::new(params),
        ))
        .await
    {
        Ok(ClientResult::CreateMessageResult(r)) => Ok(r
            .message
            .content
            .iter()
            .filter_map(|c| c.as_text())
            .map(|t| t.text.as_str())
            .collect()),
        Ok(other) => Err(McpError::internal_error(
            format!("sampling/createMessage: unexpected reply {other:?}"),
            None,
        )),
        Err(rmcp::service::ServiceError::McpError(e)) => Err(e),
        Err(e) => Err(McpError::internal_error(
            format!("sampling/createMessage failed: {e}"),
            None,
        )),
    }
}

async fn roots(ctx: &RequestContext<RoleServer>) -> Result<usize, McpError> {
    match ctx
        .peer
        .send_request(ServerRequest::ListRootsRequest(ListRootsRequest::default()))
        .await
    {
        Ok(ClientResult::ListRootsResult(r)) => Ok(r.roots.len()),
        Ok(other) => Err(McpError::internal_error(
            format!("roots/list: unexpected reply {other:?}"),
            None,
        )),
        Err(rmcp::service::ServiceError::McpError(e)) => Err(e),
        Err(e) => Err(McpError::internal_error(
            format!("roots/list failed: {e}"),
            None,
        )),
    }
}

/// Serves the tools of this module; `None` for any other name.
pub(super) async fn call(
    request: &CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResult, McpError>> {
    let r = match request.name.as_ref() {
        "test_missing_capability" => sample(ctx, None, "Say hello")
            .await
            .map(|_| text("Success")),
        "test_streaming_elicitation" => elicit(ctx, None, "Please provide a value", "value")
            .await
            .map(|c| text(format!("Received: {}", field(&c, "value")))),
        "test_input_required_result_elicitation" => {
            elicit(ctx, Some("user_name"), "What is your name?", "name")
                .await
                .map(|c| text(format!("Hello, {}!", field(&c, "name"))))
        }
        "test_input_required_result_sampling" => sample(
            ctx,
            Some("sample_request"),
            "What is the capital of France?",
        )
        .await
        .map(|t| text(format!("Sampling result: {t}"))),
        "test_input_required_result_list_roots" => {
            roots(ctx).await.map(|n| text(format!("Found {n} root(s)")))
        }
        "test_input_required_result_request_state" => {
            elicit(ctx, Some("confirm"), "Please confirm", "ok")
                .await
                .map(|_| text("state-ok: requestState validated"))
        }
        "test_input_required_result_tampered_state" => {
            elicit(ctx, Some("confirm"), "Please confirm", "ok")
                .await
                .map(|_| text("Confirmed"))
        }
        "test_input_required_result_multiple_inputs" => {
            let (name, greeting, n) = tokio::join!(
                elicit(ctx, Some("user_name"), "What is your name?", "name"),
                sample(ctx, Some("greeting"), "Say a greeting"),
                roots(ctx),
            );
            match (name, greeting, n) {
                (Ok(name), Ok(greeting), Ok(n)) => Ok(text(format!(
                    "name={}, greeting={greeting}, roots={n}",
                    field(&name, "name")
                ))),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        "test_input_required_result_multi_round" => {
            match elicit(ctx, Some("step1"), "What is your name?", "name").await {
                Ok(first) => elicit(ctx, Some("step2"), "What is your favorite color?", "color")
                    .await
                    .map(|second| {
                        text(format!(
                            "Hello {}, your favorite color is {}",
                            field(&first, "name"),
                            field(&second, "color")
                        ))
                    }),
                Err(e) => Err(e),
            }
        }
        "test_input_required_result_capabilities" => {
            let (name, answer) = tokio::join!(
                elicit(ctx, Some("user_name"), "What is your name?", "name"),
                sample(ctx, Some("capital"), "What is the capital of France?"),
            );
            match (name, answer) {
                (Err(e1), Err(e2)) => Err(McpError::internal_error(
                    format!("nothing was answered: {}; {}", e1.message, e2.message),
                    None,
                )),
                (name, answer) => Ok(text(format!(
                    "name={}, answer={}",
                    name.map(|c| field(&c, "name"))
                        .unwrap_or_else(|e| format!("({})", e.message)),
                    answer.unwrap_or_else(|e| format!("({})", e.message)),
                ))),
            }
        }
        _ => return None,
    };
    Some(r)
}

/// The prompt of this module.
pub(super) async fn prompt(ctx: &RequestContext<RoleServer>) -> Result<GetPromptResult, McpError> {
    let content = elicit(
        ctx,
        Some("user_context"),
        "What context should the prompt use?",
        "context",
    )
    .await?;
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        format!("Use this context: {}", field(&content, "context")),
    )]))
}

/// The tool that asks the 2026-07-28 way; `None` for any other name.
pub(super) fn call_native(
    request: &CallToolRequestParams,
) -> Option<Result<CallToolResponse, McpError>> {
    if request.name != NATIVE {
        return None;
    }
    let answer = request.input_responses.as_ref().and_then(|r| r.get("q"));
    Some(match answer {
        Some(a) if request.request_state.as_deref() == Some(NATIVE_STATE) => Ok(
            CallToolResponse::Complete(text(format!("native: {}", field(&a["content"], "answer")))),
        ),
        Some(_) => Err(McpError::invalid_params(
            "requestState missing or wrong",
            None,
        )),
        None => {
            let schema: Result<ElicitationSchema, _> = serde_json::from_value(json!({
                "type": "object",
                "properties": { "answer": { "type": "string" } },
                "required": ["answer"]
            }));
            schema
                .map_err(|e| McpError::internal_error(format!("bad schema: {e}"), None))
                .map(|requested_schema| {
                    let ask = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
                        meta: None,
                        message: "Native question?".into(),
                        requested_schema,
                    });
                    let requests = [("q".to_string(), InputRequest::Elicitation(ask))]
                        .into_iter()
                        .collect();
                    CallToolResponse::InputRequired(InputRequiredResult::new(
                        Some(requests),
                        Some(NATIVE_STATE.into()),
                    ))
                })
        }
    })
}
