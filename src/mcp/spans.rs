//! The OpenTelemetry span of an MCP request (`crate::telemetry::traces`
//! holds the conventions): its parent from the request's `_meta` or HTTP
//! headers, its attributes from the request context rmcp hands the handler.

use axum::http::request::Parts;
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};

use crate::telemetry::traces::{self, ServerRequest, ServerSpan, Tracer};

/// The server span of a `tools/call` (or, without a tracer, the client's
/// context alone, passed on to upstreams).
pub fn server_span(
    tracer: Option<&Tracer>,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> ServerSpan {
    let headers = context.extensions.get::<Parts>().map(|p| &p.headers);
    let parent = traces::incoming(Some(&context.meta), headers);
    if tracer.is_none() {
        return traces::server_span(None, parent, placeholder());
    }
    let session = headers
        .and_then(|h| h.get("mcp-session-id"))
        .and_then(|v| v.to_str().ok());
    let version = context.protocol_version();
    traces::server_span(
        tracer,
        parent,
        ServerRequest {
            method: "tools/call",
            tool: Some(request.name.as_ref()),
            session,
            request_id: Some(context.id.to_string()),
            protocol_version: version.as_ref().map(|v| v.as_str()),
        },
    )
}

fn placeholder() -> ServerRequest<'static> {
    ServerRequest {
        method: "tools/call",
        tool: None,
        session: None,
        request_id: None,
        protocol_version: None,
    }
}

/// `error.type` of a finished call: the JSON-RPC error, or `tool_error`
/// for a result with `isError` (as the conventions ask).
pub fn error_type(result: &Result<CallToolResponse, McpError>) -> Option<&'static str> {
    match result {
        Err(_) => Some("jsonrpc_error"),
        Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => Some("tool_error"),
        Ok(_) => None,
    }
}
