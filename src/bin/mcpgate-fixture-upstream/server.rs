//! The fixture's `ServerHandler`: server info and capabilities, resources,
//! subscriptions, the prompt and completion; tools come from `tools.rs`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, LoggingLevel, PaginatedRequestParams, Prompt,
    PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Reference, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam, Role, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool_handler};

pub(crate) const SERVER_NAME: &str = "fixture-upstream";
const STATIC_URI: &str = "fixture://static";
const ITEM_PREFIX: &str = "fixture://item/";
const ITEM_TEMPLATE: &str = "fixture://item/{id}";
const GREET_NAMES: [&str; 3] = ["alice", "bob", "carol"];
/// How long after `resources/subscribe` the `notifications/resources/updated` follows.
const UPDATE_DELAY: Duration = Duration::from_millis(50);

/// The server: one per process (stdio serves a single session).
#[derive(Clone)]
pub(crate) struct Fixture {
    pub(crate) tool_router: ToolRouter<Fixture>,
    /// URIs the client subscribed to with `resources/subscribe`.
    pub(crate) subscriptions: Arc<Mutex<HashSet<String>>>,
    /// The level last set with `logging/setLevel` (recorded only).
    pub(crate) log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "A test and demo MCP server. Try echo or add; slow shows progress; sample, elicit and roots \
                 ask the client; resource fixture://static and template fixture://item/{id}; prompt greet.",
            )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(STATIC_URI, "static")
                .with_description("A fixed text resource: \"static text\".")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(ITEM_TEMPLATE, "item")
                .with_description("Item <id>: reading fixture://item/42 gives \"item 42\".")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri;
        let body = if uri == STATIC_URI {
            "static text".to_owned()
        } else if let Some(id) = uri.strip_prefix(ITEM_PREFIX).filter(|id| !id.is_empty()) {
            format!("item {id}")
        } else {
            return Err(McpError::resource_not_found(
                format!("no such resource: {uri}"),
                Some(serde_json::json!({ "uri": uri })),
            ));
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(body, uri)]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let uri = request.uri;
        self.subscriptions.lock().unwrap().insert(uri.clone());
        // Pretend the resource changes right after the subscription.
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
                tracing::warn!(error = %e, "cannot send resources/updated");
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
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            "greet",
            Some("A greeting for someone: one user message \"Hello, <name>!\"."),
            Some(vec![
                PromptArgument::new("name")
                    .with_description("Who to greet (completion offers alice, bob and carol).")
                    .with_required(true),
            ]),
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if request.name != "greet" {
            return Err(McpError::invalid_params(
                format!("no such prompt: {}", request.name),
                None,
            ));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| {
                McpError::invalid_params("prompt greet needs the argument name", None)
            })?;
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Hello, {name}!"),
        )])
        .with_description("A greeting")
        .into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let values = match &request.r#ref {
            Reference::Prompt(prompt)
                if prompt.name == "greet" && request.argument.name == "name" =>
            {
                GREET_NAMES
                    .iter()
                    .filter(|n| n.starts_with(request.argument.value.as_str()))
                    .map(|n| (*n).to_owned())
                    .collect()
            }
            _ => Vec::new(),
        };
        let completion = CompletionInfo::with_all_values(values)
            .map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(completion))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        tracing::info!(level = ?request.level, "logging/setLevel");
        *self.log_level.lock().unwrap() = Some(request.level);
        Ok(())
    }
}
