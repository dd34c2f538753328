//! The MCP server handler (rmcp `ServerHandler`) behind every transport.
//! One instance per session; the caller of each request comes from the
//! request's extensions, where the bearer gate put it (Streamable HTTP: in
//! the `http::request::Parts` rmcp forwards; legacy SSE: the same, added by
//! our transport).
//!
//! It serves the built-in tools and, through the [`Gateway`], the tools,
//! resources, prompts, completions and logging of the upstream servers.
//! (`logging/setLevel` is deprecated by SEP-2577 in 2026-07-28 but part of
//! the earlier revisions served here.)
//!
//! The methods that reach the gateway run their bodies in a boxed future:
//! rmcp spawns a task per request whose future embeds the handler's, and
//! the gateway's futures are kilobytes large (`call_tool` about 10 KiB),
//! which every spawn would otherwise copy (docs/benchmarks.md).
//!
//! Every method and notification runs in its OpenTelemetry server span
//! (`super::spans`). [`request`] holds what the methods read from a
//! request's context (caller, revision, page, span) and the `Call` they
//! make to the gateway.

#![allow(deprecated)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CancelledNotificationParam,
    CompleteRequestParams, CompleteResult, DiscoverResult, GetPromptRequestParams,
    GetPromptResponse, GetTaskParams, GetTaskResult, Implementation, InitializeRequestParams,
    InitializeResult, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

mod request;

pub use super::calls::{admit_tool, all_tools, call_any_tool};
use super::mrtr::Mrtr;
use super::results;
use super::spans::{self, Target};
use super::tools::{ToolError, Tools};
use crate::gateway::Gateway;
use crate::tasks::Tasks;
use crate::telemetry::labels::{McpMethod, McpOutcome};
use opentelemetry::context::FutureExt as _;
pub use request::{caller_of, sessionless_call};
use request::{is_per_request, listed, require_caller};

/// Items per page of `tools/list`, `resources/list` and `prompts/list`.
pub const PAGE_SIZE: usize = 100;

static SESSIONS: AtomicU64 = AtomicU64::new(1);

#[derive(Clone)]
pub struct McpHandler {
    tools: Arc<Tools>,
    gateway: Arc<Gateway>,
    name: Arc<str>,
    session: u64,
    /// Tasks (SEP-2663); without them the extension is not advertised.
    tasks: Option<Arc<Tasks>>,
    /// Multi-round-trip requests of 2026-07-28 clients (`super::mrtr`);
    /// `None` on transports of earlier revisions.
    mrtr: Option<Arc<Mrtr>>,
}

impl McpHandler {
    pub fn new(tools: Arc<Tools>, gateway: Arc<Gateway>, name: &str) -> Self {
        Self {
            tools,
            gateway,
            name: name.into(),
            session: SESSIONS.fetch_add(1, Ordering::Relaxed),
            tasks: None,
            mrtr: None,
        }
    }

    /// Serves the tasks extension (SEP-2663) with `tasks`.
    pub fn with_tasks(mut self, tasks: Arc<Tasks>) -> Self {
        self.tasks = Some(tasks);
        self
    }

    /// Serves 2026-07-28 calls whose upstream asks the client through `mrtr`.
    pub fn with_mrtr(mut self, mrtr: Arc<Mrtr>) -> Self {
        self.mrtr = Some(mrtr);
        self
    }

    /// The multi-round-trip machinery, if `context` is a request it serves.
    fn mrtr_for(&self, context: &RequestContext<RoleServer>) -> Option<Arc<Mrtr>> {
        self.mrtr.clone().filter(|_| super::mrtr::applies(context))
    }

    /// A handler like this one for a session of its own (a Streamable
    /// HTTP session's, or a stateless request's: `super::inline`).
    pub fn fresh(&self) -> Self {
        Self {
            session: SESSIONS.fetch_add(1, Ordering::Relaxed),
            ..self.clone()
        }
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let caps = if self.gateway.is_empty() {
            // A reload may change the built-in tools' policy (or add
            // upstreams): the tool list can change.
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build()
        } else {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_resources_list_changed()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_completions()
                .enable_logging()
                .build()
        };
        let mut caps = caps;
        if self.tasks.is_some() {
            caps.extensions.get_or_insert_with(Default::default).insert(
                rmcp::model::TASKS_EXTENSION_ID.to_string(),
                JsonObject::new(),
            );
        }
        ServerConfig::new(caps)
            .with_server_info(Implementation::new(
                self.name.to_string(),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("mcpgate: call whoami to see who you are signed in as.")
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let span = self.span("initialize", Target::default(), &context);
        spans::traced(span, async move { self.initialize_inner(request, context) }).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let span = self.notification_span("notifications/initialized", &context);
        spans::traced_notification(span, async {}).await
    }

    async fn on_cancelled(
        &self,
        _notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        // rmcp cancels the request itself; the span records the message.
        let span = self.notification_span("notifications/cancelled", &context);
        spans::traced_notification(span, async {}).await
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        let span = self.notification_span("notifications/roots/list_changed", &context);
        spans::traced_notification(span, async {}).await
    }

    /// rmcp's answer (the versions and this server's information), in a
    /// span of its own like every other method.
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        let span = self.span("server/discover", Target::default(), &context);
        spans::traced(span, async {
            Ok(DiscoverResult::from_server_info(
                self.supported_protocol_versions().into_owned(),
                self.get_info(),
            ))
        })
        .await
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), McpError> {
        let span = spans::request_span(self.gateway.tracer(), "ping", Target::default(), &context);
        spans::traced(span, async { Ok(()) }).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let span = self.span("tools/list", Target::default(), &context);
        spans::traced(span, async move {
            let caller = require_caller(&context)?;
            let started = std::time::Instant::now();
            let all = all_tools(&self.tools, &self.gateway, &caller).await;
            if let Some(m) = crate::telemetry::metrics::get() {
                m.mcp_request(
                    McpMethod::ToolsList,
                    m.none.clone(),
                    m.none.clone(),
                    McpOutcome::Ok,
                    started,
                );
            }
            listed!(ListToolsResult, all, request, &context)
        })
        .await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // The server span (OpenTelemetry MCP conventions), under the
        // client's `_meta.traceparent` or HTTP `traceparent`.
        let span = self.span("tools/call", Target::tool(&request.name), &context);
        let cx = span.context();
        let result = Box::pin(async move {
            let caller = require_caller(&context)?;
            // SEP-2663: whether this call may become a task (`crate::tasks`).
            let task = match &self.tasks {
                Some(t) if self.tools.get(&request.name).is_none() => {
                    t.plan(&caller, &request, &context).await?
                }
                _ => None,
            };
            // A built-in tool never asks the client anything: a 2026-07-28
            // call of one that carries no earlier round's state needs none
            // of the multi-round-trip machinery (a task per call).
            let builtin_first_round = self.tools.get(&request.name).is_some()
                && request.request_state.is_none()
                && request.input_responses.is_none();
            if let Some(m) = self.mrtr_for(&context).filter(|_| !builtin_first_round) {
                let escalate = task.map(|p| p.escalation(caller.clone(), request.name.to_string()));
                return m
                    .call_tool(
                        self.tools.clone(),
                        self.gateway.clone(),
                        request,
                        &context,
                        escalate,
                    )
                    .await;
            }
            if let Some(p) = task {
                admit_tool(&self.gateway, &caller, &request.name).map_err(ToolError::into_mcp)?;
                return p
                    .create(&caller, &request, &context)
                    .await
                    .map(CallToolResponse::Task);
            }
            let call = self.call(&caller, &context);
            match call_any_tool(
                &self.tools,
                &self.gateway,
                &call,
                &request.name,
                request.arguments,
            )
            .await
            {
                Ok(result) => Ok(CallToolResponse::Complete(results::tool(result))),
                Err(e) => Err(e.into_mcp()),
            }
        })
        .with_context(cx)
        .await;
        span.end(spans::outcome(&result, spans::is_tool_error));
        result
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let span = self.span("tasks/get", Target::default(), &context);
        spans::traced(span, async move {
            let caller = require_caller(&context)?;
            self.tasks()?.get(&caller, request).await
        })
        .await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let span = self.span("tasks/update", Target::default(), &context);
        spans::traced(span, async move {
            let caller = require_caller(&context)?;
            self.tasks()?.update(&caller, request).await
        })
        .await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let span = self.span("tasks/cancel", Target::default(), &context);
        spans::traced(span, async move {
            let caller = require_caller(&context)?;
            self.tasks()?.cancel(&caller, request).await
        })
        .await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let span = self.span("resources/list", Target::default(), &context);
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                let all = self.gateway.list_resources(&caller).await;
                listed!(ListResourcesResult, all, request, &context)
            }),
        )
        .await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let span = self.span("resources/templates/list", Target::default(), &context);
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                let all = self.gateway.list_resource_templates(&caller).await;
                listed!(ListResourceTemplatesResult, all, request, &context)
            }),
        )
        .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let span = self.span("resources/read", Target::resource(&request.uri), &context);
        spans::traced(
            span,
            Box::pin(async move {
                if let Some(m) = self.mrtr_for(&context) {
                    return m
                        .read_resource(self.gateway.clone(), request, &context)
                        .await;
                }
                let caller = require_caller(&context)?;
                self.gateway
                    .read_resource(&self.call(&caller, &context), &request.uri)
                    .await
                    .map(|r| {
                        ReadResourceResponse::Complete(results::read(r, is_per_request(&context)))
                    })
            }),
        )
        .await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let span = self.span(
            "resources/subscribe",
            Target::resource(&request.uri),
            &context,
        );
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                self.gateway
                    .subscribe(&self.call(&caller, &context), &request.uri)
                    .await
            }),
        )
        .await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let span = self.span(
            "resources/unsubscribe",
            Target::resource(&request.uri),
            &context,
        );
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                self.gateway
                    .unsubscribe(&self.call(&caller, &context), &request.uri)
                    .await
            }),
        )
        .await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        super::listen::accepted(&self.gateway, requested)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let span = self.span(
            "subscriptions/listen",
            Target::default(),
            context.request_context(),
        );
        spans::traced(span, Box::pin(super::listen::serve(&self.gateway, context))).await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let span = self.span("prompts/list", Target::default(), &context);
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                let all = self.gateway.list_prompts(&caller).await;
                listed!(ListPromptsResult, all, request, &context)
            }),
        )
        .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let span = self.span("prompts/get", Target::prompt(&request.name), &context);
        spans::traced(
            span,
            Box::pin(async move {
                if let Some(m) = self.mrtr_for(&context) {
                    return m.get_prompt(self.gateway.clone(), request, &context).await;
                }
                let caller = require_caller(&context)?;
                let name = request.name.clone();
                self.gateway
                    .get_prompt(&self.call(&caller, &context), &name, request.arguments)
                    .await
                    .unwrap_or_else(|| {
                        Err(McpError::invalid_params(
                            format!("no prompt named {name:?}"),
                            None,
                        ))
                    })
                    .map(|r| GetPromptResponse::Complete(results::prompt(r)))
            }),
        )
        .await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let span = self.span("completion/complete", Target::default(), &context);
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                self.gateway
                    .complete(&self.call(&caller, &context), request)
                    .await
                    .map(results::completion)
            }),
        )
        .await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let span = self.span("logging/setLevel", Target::default(), &context);
        spans::traced(
            span,
            Box::pin(async move {
                let caller = require_caller(&context)?;
                self.gateway.set_level(&caller, request).await;
                Ok(())
            }),
        )
        .await
    }
}
