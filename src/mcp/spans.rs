//! The OpenTelemetry span of every MCP request and notification a client
//! sends (`crate::telemetry::traces` holds the conventions: OpenTelemetry
//! semantic conventions for MCP, gen-ai/mcp): its parent from the request's
//! `_meta` or HTTP headers, its attributes from the request context rmcp
//! hands the handler. The handler (`super::handler`) wraps each method's
//! body in [`traced`]; every transport (Streamable HTTP in a session, inline
//! or through rmcp, stateless 2026-07-28 requests, legacy SSE) reaches it.
//!
//! Without export, no span is made: the request runs in the client's
//! context alone (passed on to upstreams), whose reading costs a header
//! lookup when the client sent none.

use std::borrow::Cow;
use std::future::Future;

use axum::http::request::Parts;
use opentelemetry::context::FutureExt as _;
use rmcp::model::{CallToolResponse, Extensions};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};

use crate::telemetry::traces::{self, Outcome, ServerRequest, ServerSpan, Tracer};

/// What a request is about besides its method (its span's target and
/// attributes).
#[derive(Default, Clone, Copy)]
pub struct Target<'a> {
    pub tool: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub resource_uri: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn tool(name: &'a str) -> Self {
        Self {
            tool: Some(name),
            ..Self::default()
        }
    }

    pub fn prompt(name: &'a str) -> Self {
        Self {
            prompt: Some(name),
            ..Self::default()
        }
    }

    pub fn resource(uri: &'a str) -> Self {
        Self {
            resource_uri: Some(uri),
            ..Self::default()
        }
    }
}

/// The session a request belongs to: the Streamable HTTP `Mcp-Session-Id`,
/// or the legacy SSE `session_id` of the message URL.
fn session_of(parts: Option<&Parts>) -> Option<Cow<'_, str>> {
    let parts = parts?;
    if let Some(s) = parts
        .headers
        .get(super::sessions::SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(Cow::Borrowed(s));
    }
    url::form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(k, _)| k == "session_id")
        .map(|(_, v)| v)
}

/// The server span of a request `method` (or, without a tracer, the
/// client's context alone, passed on to upstreams).
pub fn request_span(
    tracer: Option<&Tracer>,
    method: &str,
    target: Target<'_>,
    context: &RequestContext<RoleServer>,
) -> ServerSpan {
    let parts = context.extensions.get::<Parts>();
    let parent = traces::incoming(Some(&context.meta), parts.map(|p| &p.headers));
    if tracer.is_none() {
        return traces::server_span(None, parent, ServerRequest::default());
    }
    let session = session_of(parts);
    let version = crate::mcp::client_link::version_of(context);
    traces::server_span(
        tracer,
        parent,
        ServerRequest {
            method,
            tool: target.tool,
            prompt: target.prompt,
            resource_uri: target.resource_uri,
            session: session.as_deref(),
            request_id: Some(context.id.to_string()),
            protocol_version: version.as_ref().map(|v| v.as_str()),
        },
    )
}

/// The server span of a notification `method` (parented to the HTTP
/// `traceparent` of the request that carried it, if any).
pub fn notification_span(
    tracer: Option<&Tracer>,
    method: &str,
    extensions: &Extensions,
) -> Option<ServerSpan> {
    let tracer = tracer?;
    let parts = extensions.get::<Parts>();
    let parent = traces::incoming(None, parts.map(|p| &p.headers));
    let session = session_of(parts);
    Some(traces::server_span(
        Some(tracer),
        parent,
        ServerRequest {
            method,
            session: session.as_deref(),
            ..ServerRequest::default()
        },
    ))
}

/// The outcome of a request for its span; `tool_error` tells a result
/// that reports an error (`isError`).
pub fn outcome<T>(result: &Result<T, McpError>, tool_error: impl Fn(&T) -> bool) -> Outcome<'_> {
    match result {
        Err(e) => Outcome::JsonRpc {
            code: e.code.0,
            message: &e.message,
        },
        Ok(r) if tool_error(r) => Outcome::ToolError,
        Ok(_) => Outcome::Ok,
    }
}

/// Whether a `tools/call` result reports an error (`isError`).
pub fn is_tool_error(r: &CallToolResponse) -> bool {
    matches!(r, CallToolResponse::Complete(r) if r.is_error == Some(true))
}

/// Runs `body` in `span` and ends the span with its outcome.
pub async fn traced<T>(
    span: ServerSpan,
    body: impl Future<Output = Result<T, McpError>>,
) -> Result<T, McpError> {
    let result = body.with_context(span.context()).await;
    span.end(outcome(&result, |_| false));
    result
}

/// Runs a notification's `body` in `span` and ends the span.
pub async fn traced_notification(span: Option<ServerSpan>, body: impl Future<Output = ()>) {
    match span {
        Some(span) => {
            body.with_context(span.context()).await;
            span.end(Outcome::Ok);
        }
        None => body.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, session: Option<&str>) -> Parts {
        let mut b = axum::http::Request::builder().uri(uri);
        if let Some(s) = session {
            b = b.header("mcp-session-id", s);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_session_is_the_header_else_the_legacy_query() {
        let p = parts("/v1/ai/mcp", Some("abc"));
        assert_eq!(session_of(Some(&p)).as_deref(), Some("abc"));
        let p = parts("/messages/?session_id=f00d", None);
        assert_eq!(session_of(Some(&p)).as_deref(), Some("f00d"));
        let p = parts("/v1/ai/mcp", None);
        assert_eq!(session_of(Some(&p)), None);
        assert_eq!(session_of(None), None);
    }

    #[test]
    fn outcomes_follow_the_conventions() {
        let err: Result<(), McpError> = Err(McpError::invalid_params("bad", None));
        assert!(matches!(
            outcome(&err, |_| false),
            Outcome::JsonRpc { code: -32602, .. }
        ));
        let ok: Result<bool, McpError> = Ok(true);
        assert!(matches!(outcome(&ok, |b| *b), Outcome::ToolError));
        assert!(matches!(outcome(&ok, |_| false), Outcome::Ok));
    }
}
