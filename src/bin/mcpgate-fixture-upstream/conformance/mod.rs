//! `--conformance`: the fixtures the official MCP conformance suite
//! (`@modelcontextprotocol/conformance` 0.1.16, `conformance server`) calls.
//!
//! The end-to-end tests put this process behind mcpgate as an upstream with
//! `prefix = ""`, so the suite's scenarios reach these tools, resources and
//! prompts under their own names, through the gateway. Names, texts and
//! schemas follow what each scenario checks:
//!
//! - tools: `test_simple_text`, `test_image_content`, `test_audio_content`,
//!   `test_embedded_resource`, `test_multiple_content_types`,
//!   `test_tool_with_logging` (three `notifications/message`, 50 ms apart),
//!   `test_tool_with_progress` (progress 0, 50, 100 of 100),
//!   `test_error_handling` (`isError: true`), `test_sampling`
//!   (`sampling/createMessage`), `test_elicitation`,
//!   `test_elicitation_sep1034_defaults`, `test_elicitation_sep1330_enums`
//!   (`elicitation/create`) and `json_schema_2020_12_tool` (a JSON Schema
//!   2020-12 input schema; its scenario is still pending in 0.1.16);
//! - resources: `test://static-text`, `test://static-binary`,
//!   `test://watched-resource` (subscribe/unsubscribe) and the template
//!   `test://template/{id}/data`;
//! - prompts: `test_simple_prompt`, `test_prompt_with_arguments`,
//!   `test_prompt_with_embedded_resource`, `test_prompt_with_image`;
//! - the multi-round-trip and capability diagnostics of the 0.2 suite
//!   ([`mrtr`]);
//! - the 2026-07-28 diagnostics of `listen.rs` (`test_logging_tool`, the
//!   list-change triggers, `test_custom_header` with `x-mcp-header`);
//! - the tools of the tasks scenarios ([`tasks`]);
//! - `completion/complete` for the prompt arguments and the template's `id`;
//!   `logging/setLevel` (log messages below the level are not sent).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult, CompleteRequestParams,
    CompleteResult, CompletionInfo, ContentBlock, CreateMessageRequestParams, ElicitRequest,
    ElicitRequestParams, ElicitationSchema, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, Prompt, PromptArgument, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference, Resource,
    ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam, Role, SamplingMessage,
    ServerCapabilities, ServerConfig, ServerRequest, SetLevelRequestParams, SubscribeRequestParams,
    Tool, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

mod catalog;
mod listen;
mod mrtr;
mod tasks;

use catalog::{sep1034_schema, sep1330_schema, tools};

pub(crate) const SERVER_NAME: &str = "fixture-upstream-conformance";

/// A 1x1 red PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// Two milliseconds of silence: a WAV file, 8 kHz, mono, 8 bit.
const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YRAAAACAgICAgICAgICAgICAgICA";

const STATIC_TEXT_URI: &str = "test://static-text";
const STATIC_BINARY_URI: &str = "test://static-binary";
const WATCHED_URI: &str = "test://watched-resource";
const TEMPLATE: &str = "test://template/{id}/data";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";
/// The pause between the steps of the logging and progress tools.
const STEP: Duration = Duration::from_millis(50);
/// How long after `resources/subscribe` the `notifications/resources/updated` follows.
const UPDATE_DELAY: Duration = Duration::from_millis(50);
/// Completion candidates for the arguments of `test_prompt_with_arguments`.
const WORDS: [&str; 6] = ["paris", "park", "party", "test", "testing", "tested"];

/// The server: one per process (stdio serves a single session).
#[derive(Clone, Default)]
pub(crate) struct Conformance {
    /// URIs the client subscribed to with `resources/subscribe`.
    subscriptions: Arc<Mutex<HashSet<String>>>,
    /// The level set with `logging/setLevel`; `None` sends everything.
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
    /// The tool and prompt the trigger tools add and remove (`listen`).
    dynamic: Arc<listen::Dynamic>,
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// A required string argument of a tool call.
fn string_arg<'a>(request: &'a CallToolRequestParams, name: &str) -> Result<&'a str, McpError> {
    request
        .arguments
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            McpError::invalid_params(
                format!("{} needs the string argument {name}", request.name),
                None,
            )
        })
}

/// A required string argument of a prompt.
fn prompt_arg<'a>(request: &'a GetPromptRequestParams, name: &str) -> Result<&'a str, McpError> {
    request
        .arguments
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            McpError::invalid_params(
                format!("prompt {} needs the argument {name}", request.name),
                None,
            )
        })
}

impl Conformance {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    async fn log(&self, ctx: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        let threshold = *self.log_level.lock().unwrap();
        if threshold.is_some_and(|t| severity(level) < severity(t)) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, Value::String(message.to_owned()))
            .with_logger("conformance");
        if let Err(e) = ctx.peer.notify_logging_message(param).await {
            tracing::warn!(error = %e, "cannot send a log message");
        }
    }

    async fn with_logging(&self, ctx: &RequestContext<RoleServer>) -> CallToolResult {
        self.log(ctx, LoggingLevel::Info, "Tool execution started")
            .await;
        tokio::time::sleep(STEP).await;
        self.log(ctx, LoggingLevel::Info, "Tool processing data")
            .await;
        tokio::time::sleep(STEP).await;
        self.log(ctx, LoggingLevel::Info, "Tool execution completed")
            .await;
        text("Tool with logging executed successfully")
    }

    async fn with_progress(ctx: &RequestContext<RoleServer>) -> CallToolResult {
        let token = ctx.meta.get_progress_token();
        for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(STEP).await;
            }
            if let Some(token) = &token {
                let param = ProgressNotificationParam::new(token.clone(), progress)
                    .with_total(100.0)
                    .with_message(format!("{progress} of 100"));
                if let Err(e) = ctx.peer.notify_progress(param).await {
                    tracing::warn!(error = %e, "cannot send progress");
                }
            }
        }
        text(format!(
            "Tool with progress executed successfully (progress token: {})",
            if token.is_some() { "yes" } else { "none" }
        ))
    }

    async fn sampling(prompt: &str, ctx: &RequestContext<RoleServer>) -> CallToolResult {
        let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
        match ctx.peer.create_message(params).await {
            Ok(reply) => {
                let answer: String = reply
                    .message
                    .content
                    .iter()
                    .filter_map(|c| c.as_text())
                    .map(|t| t.text.as_str())
                    .collect();
                text(format!("LLM response: {answer}"))
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                "sampling/createMessage failed: {e}"
            ))]),
        }
    }

    /// Sends `elicitation/create` with a form built from `schema` and
    /// returns the answer as `<prefix>: action=<action>, content=<json>`.
    async fn elicit(
        message: &str,
        schema: Value,
        prefix: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let requested_schema: ElicitationSchema = serde_json::from_value(schema)
            .map_err(|e| McpError::internal_error(format!("bad elicitation schema: {e}"), None))?;
        let request = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: message.to_owned(),
            requested_schema,
        });
        Ok(
            match ctx
                .peer
                .send_request(ServerRequest::ElicitRequest(request))
                .await
            {
                Ok(ClientResult::ElicitResult(result)) => {
                    let action = serde_json::to_value(&result.action).unwrap_or(Value::Null);
                    let action = action.as_str().unwrap_or("?");
                    let content = result.content.unwrap_or(Value::Null);
                    text(format!("{prefix}: action={action}, content={content}"))
                }
                Ok(other) => CallToolResult::error(vec![ContentBlock::text(format!(
                    "elicitation/create: unexpected reply {other:?}"
                ))]),
                Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                    "elicitation/create failed: {e}"
                ))]),
            },
        )
    }
}

fn template_id(uri: &str) -> Option<&str> {
    uri.strip_prefix(TEMPLATE_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMPLATE_SUFFIX))
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

fn completions(candidates: &[&str], typed: &str) -> Result<CompleteResult, McpError> {
    let values = candidates
        .iter()
        .filter(|c| c.starts_with(typed))
        .map(|c| (*c).to_owned())
        .collect();
    let info =
        CompletionInfo::with_all_values(values).map_err(|e| McpError::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}

impl ServerHandler for Conformance {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "The fixtures of the MCP conformance suite (tools test_*, resources test://..., \
                 prompts test_*).",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut list = tools();
        list.extend(mrtr::tools());
        list.extend(tasks::tools());
        list.extend(listen::tools(&self.dynamic));
        Ok(ListToolsResult::with_all_items(list))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools()
            .into_iter()
            .chain(mrtr::tools())
            .chain(tasks::tools())
            .chain(listen::tools(&self.dynamic))
            .find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if let Some(r) = mrtr::call_native(&request) {
            return r;
        }
        if let Some(r) = mrtr::call(&request, &ctx).await {
            return r.map(CallToolResponse::Complete);
        }
        let result = match request.name.as_ref() {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(PNG_BASE64, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(WAV_BASE64, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                )
                .with_mime_type("text/plain"),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({ "test": "data", "value": 123 }).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => self.with_logging(&ctx).await,
            "test_tool_with_progress" => Self::with_progress(&ctx).await,
            "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )]),
            "test_sampling" => Self::sampling(string_arg(&request, "prompt")?, &ctx).await,
            "test_elicitation" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "description": "User's response" },
                        "email": { "type": "string", "description": "User's email address" }
                    },
                    "required": ["username", "email"]
                });
                let message = string_arg(&request, "message")?;
                Self::elicit(message, schema, "User response", &ctx).await?
            }
            "test_elicitation_sep1034_defaults" => {
                Self::elicit(
                    "Test client default value handling - please accept with defaults",
                    sep1034_schema(),
                    "Elicitation completed",
                    &ctx,
                )
                .await?
            }
            "test_elicitation_sep1330_enums" => {
                Self::elicit(
                    "Test enum schema variants - please pick values",
                    sep1330_schema(),
                    "Elicitation completed",
                    &ctx,
                )
                .await?
            }
            "json_schema_2020_12_tool" => text(format!(
                "json_schema_2020_12_tool called with {}",
                Value::Object(request.arguments.clone().unwrap_or_default())
            )),
            other => match listen::call(&self.dynamic, &request, &ctx).await {
                Some(result) => result?,
                None => match tasks::call(&request, &ctx).await {
                    Some(r) => r?,
                    None => {
                        return Err(McpError::invalid_params(
                            format!("no such tool: {other}"),
                            None,
                        ));
                    }
                },
            },
        };
        Ok(CallToolResponse::Complete(result))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(STATIC_TEXT_URI, "Static Text Resource")
                .with_description("A static text resource for testing")
                .with_mime_type("text/plain"),
            Resource::new(STATIC_BINARY_URI, "Static Binary Resource")
                .with_description("A static binary resource (a 1x1 PNG) for testing")
                .with_mime_type("image/png"),
            Resource::new(WATCHED_URI, "Watched Resource")
                .with_description("A resource to subscribe to")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(TEMPLATE, "Resource Template")
                .with_description(
                    "A resource template: test://template/123/data is the data of id 123",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri;
        let contents = match uri.as_str() {
            STATIC_TEXT_URI => {
                ResourceContents::text("This is the content of the static text resource.", &uri)
                    .with_mime_type("text/plain")
            }
            STATIC_BINARY_URI => {
                ResourceContents::blob(PNG_BASE64, &uri).with_mime_type("image/png")
            }
            WATCHED_URI => ResourceContents::text("Watched resource content", &uri)
                .with_mime_type("text/plain"),
            _ => match template_id(&uri) {
                Some(id) => ResourceContents::text(
                    json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                        .to_string(),
                    &uri,
                )
                .with_mime_type("application/json"),
                None => {
                    return Err(McpError::resource_not_found(
                        format!("no such resource: {uri}"),
                        Some(json!({ "uri": uri })),
                    ));
                }
            },
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let uri = request.uri;
        if uri != WATCHED_URI {
            return Err(McpError::resource_not_found(
                format!("no such resource: {uri}"),
                Some(json!({ "uri": uri })),
            ));
        }
        self.subscriptions.lock().unwrap().insert(uri.clone());
        // The watched resource "changes" right after each subscription.
        let subscriptions = self.subscriptions.clone();
        let peer = context.peer;
        tokio::spawn(async move {
            tokio::time::sleep(UPDATE_DELAY).await;
            if !subscriptions.lock().unwrap().contains(&uri) {
                return;
            }
            if let Err(e) = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
            {
                tracing::debug!(error = %e, "cannot send resources/updated");
            }
        });
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscriptions.lock().unwrap().remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let required = |name: &str, description: &str| {
            PromptArgument::new(name)
                .with_description(description)
                .with_required(true)
        };
        let mut list = vec![
            Prompt::new(
                "test_simple_prompt",
                Some("A simple prompt without arguments"),
                None,
            ),
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A prompt with two required arguments"),
                Some(vec![
                    required("arg1", "First test argument"),
                    required("arg2", "Second test argument"),
                ]),
            ),
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A prompt that embeds a resource"),
                Some(vec![required(
                    "resourceUri",
                    "URI of the resource to embed",
                )]),
            ),
            Prompt::new(
                "test_prompt_with_image",
                Some("A prompt with an image"),
                None,
            ),
        ];
        list.extend(mrtr::prompts());
        list.extend(listen::prompts(&self.dynamic));
        Ok(ListPromptsResult::with_all_items(list))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if request.name == mrtr::PROMPT {
            return mrtr::prompt(&context).await.map(Into::into);
        }
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )],
            "test_prompt_with_arguments" => {
                let arg1 = prompt_arg(&request, "arg1")?;
                let arg2 = prompt_arg(&request, "arg2")?;
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = prompt_arg(&request, "resourceUri")?;
                vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(
                            ResourceContents::text("Embedded resource content for testing.", uri)
                                .with_mime_type("text/plain"),
                        ),
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ]
            }
            "test_prompt_with_image" => vec![
                PromptMessage::new(Role::User, ContentBlock::image(PNG_BASE64, "image/png")),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ],
            other => match listen::prompt(&self.dynamic, other) {
                Some(messages) => messages,
                None => {
                    return Err(McpError::invalid_params(
                        format!("no such prompt: {other}"),
                        None,
                    ));
                }
            },
        };
        Ok(GetPromptResult::new(messages).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        // Unknown prompts and templates are errors (-32602), as the spec
        // asks; the gateway then tries its other upstreams.
        let typed = request.argument.value.as_str();
        let argument = request.argument.name.as_str();
        match &request.r#ref {
            Reference::Prompt(p) => match (p.name.as_str(), argument) {
                ("test_prompt_with_arguments", "arg1" | "arg2") => completions(&WORDS, typed),
                (
                    "test_simple_prompt"
                    | "test_prompt_with_embedded_resource"
                    | "test_prompt_with_image"
                    | "test_prompt_with_arguments",
                    _,
                ) => completions(&[], typed),
                (other, _) => Err(McpError::invalid_params(
                    format!("no such prompt: {other}"),
                    None,
                )),
            },
            Reference::Resource(r) if r.uri == TEMPLATE => match argument {
                "id" => completions(&["1", "2", "3", "123"], typed),
                _ => completions(&[], typed),
            },
            Reference::Resource(r) => Err(McpError::invalid_params(
                format!("no such resource template: {}", r.uri),
                None,
            )),
            _ => Err(McpError::invalid_params(
                "unsupported completion reference",
                None,
            )),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *self.log_level.lock().unwrap() = Some(request.level);
        Ok(())
    }
}
