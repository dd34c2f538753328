//! The MCP server handler (rmcp `ServerHandler`) behind every transport.
//! One instance per session; the caller of each request comes from the
//! request's extensions, where the bearer gate put it (Streamable HTTP: in
//! the `http::request::Parts` rmcp forwards; legacy SSE: the same, added by
//! our transport).

use std::sync::Arc;

use axum::http::request::Parts;
use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Extensions, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::tools::{ToolError, Tools};

#[derive(Clone)]
pub struct McpHandler {
    tools: Arc<Tools>,
    name: Arc<str>,
}

impl McpHandler {
    pub fn new(tools: Arc<Tools>, name: &str) -> Self {
        Self { tools, name: name.into() }
    }
}

/// The authenticated caller of a request, as put there by the gate.
pub fn caller_of(ext: &Extensions) -> Option<Caller> {
    ext.get::<Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .or_else(|| ext.get::<Caller>())
        .cloned()
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(self.name.to_string(), env!("CARGO_PKG_VERSION")))
            .with_instructions("mcpgate: call whoami to see who you are signed in as.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller_of(&context.extensions)
            .ok_or_else(|| McpError::invalid_request("the request carries no authenticated caller", None))?;
        match self.tools.call(&request.name, request.arguments, &caller).await {
            Ok(result) => Ok(CallToolResponse::Complete(result)),
            Err(e @ ToolError::Unknown(_)) => Err(McpError::invalid_params(e.to_string(), None)),
            Err(e @ ToolError::InvalidArguments { .. }) => Err(McpError::invalid_params(e.to_string(), None)),
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }
}
