//! REST tool calls (the seed's `POST /tools/*`): `GET /tools` lists the
//! tools with their input schemas; `POST /tools/{name}` runs one with a JSON
//! object of arguments, as the token's user, and returns the MCP
//! `CallToolResult` as JSON. `[[policy]]` applies as on the MCP
//! transports: a denied tool is not listed and answers `404 unknown_tool`
//! like an unknown one; over a rule's rate, `429` with `Retry-After`.
//!
//! Each request is one OpenTelemetry server span, as an MCP request is
//! (`super::spans`): `tools/list`, or `tools/call <name>` with
//! `gen_ai.tool.name`, parented to the HTTP `traceparent`; an error answer
//! sets `error.type` to its error code and `http.response.status_code`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcpgate_core::mcp::bearer::Caller;
use opentelemetry::context::FutureExt as _;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::McpState;
use super::handler::{all_tools, call_any_tool, sessionless_call};
use super::tools::ToolError;
use crate::telemetry::traces::{self, Outcome, ServerRequest, ServerSpan};

/// An error answer: `{"error": code, "error_description": ...}`.
struct Failure {
    status: StatusCode,
    code: &'static str,
    description: String,
    retry_after: Option<u64>,
    /// An answer made elsewhere (the scope gate's 403 with its challenge).
    ready: Option<Box<Response>>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            ready: None,
        }
    }

    fn outcome(&self) -> Outcome<'_> {
        Outcome::Http {
            status: self.status.as_u16(),
            error: self.code,
        }
    }

    fn into_response(self) -> Response {
        if let Some(r) = self.ready {
            return *r;
        }
        let mut r = (
            self.status,
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        r
    }
}

/// The server span of a REST request (see the module docs).
fn span(mcp: &McpState, method: &str, tool: Option<&str>, req: &Request) -> ServerSpan {
    let parent = traces::incoming(None, Some(req.headers()));
    traces::server_span(
        mcp.gateway.tracer(),
        parent,
        ServerRequest {
            method,
            tool,
            ..ServerRequest::default()
        },
    )
}

fn caller(req: &Request) -> Result<Caller, Failure> {
    req.extensions().get::<Caller>().cloned().ok_or_else(|| {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not authenticated",
        )
    })
}

pub async fn list(State(mcp): State<Arc<McpState>>, req: Request) -> Response {
    let span = span(&mcp, "tools/list", None, &req);
    let caller = caller(&req);
    let listed = async {
        let caller = caller?;
        Ok::<_, Failure>(all_tools(&mcp.tools, &mcp.gateway, &caller).await)
    }
    .with_context(span.context())
    .await;
    match listed {
        Ok(tools) => {
            span.end(Outcome::Ok);
            Json(json!({ "tools": tools })).into_response()
        }
        Err(f) => {
            span.end(f.outcome());
            f.into_response()
        }
    }
}

pub async fn call(
    State(mcp): State<Arc<McpState>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let span = span(&mcp, "tools/call", Some(&name), &req);
    let called = run(&mcp, &name, req).with_context(span.context()).await;
    match called {
        Ok(result) => {
            span.end(if result.is_error == Some(true) {
                Outcome::ToolError
            } else {
                Outcome::Ok
            });
            Json(result).into_response()
        }
        Err(f) => {
            span.end(f.outcome());
            f.into_response()
        }
    }
}

/// `POST /tools/{name}`: the arguments, the scope gate, the call.
async fn run(mcp: &McpState, name: &str, req: Request) -> Result<CallToolResult, Failure> {
    let caller = caller(&req)?;
    let limit = super::sse::MAX_MESSAGE_BYTES;
    let body: Bytes = super::message::read_body_or(req.into_body(), limit, |e| {
        Failure::new(e.status(), "invalid_request", e.description(limit)).into_response()
    })
    .await
    .map_err(|r| {
        let status = r.status();
        Failure {
            ready: Some(Box::new(r)),
            ..Failure::new(status, "invalid_request", "")
        }
    })?;
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_arguments",
                    "the body must be a JSON object of arguments",
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_arguments",
                    format!("the body is not JSON: {e}"),
                ));
            }
        }
    };
    if let Some(rejected) = super::scope_gate::reject_item(
        mcp,
        &caller,
        crate::gateway::scopes::Item::Tool(name),
        false,
    )
    .await
    {
        return Err(Failure {
            ready: Some(Box::new(rejected)),
            ..Failure::new(StatusCode::FORBIDDEN, "insufficient_scope", "")
        });
    }
    call_any_tool(
        &mcp.tools,
        &mcp.gateway,
        &sessionless_call(&caller),
        name,
        Some(args),
    )
    .await
    .map_err(|e| match e {
        ToolError::Unknown(n) => Failure::new(
            StatusCode::NOT_FOUND,
            "unknown_tool",
            format!("there is no tool named {n:?}; GET /tools lists them"),
        ),
        e @ ToolError::InvalidArguments { .. } => {
            Failure::new(StatusCode::BAD_REQUEST, "invalid_arguments", e.to_string())
        }
        ToolError::Upstream(m) => Failure::new(StatusCode::BAD_GATEWAY, "upstream_error", m),
        e @ ToolError::RateLimited { retry_after, .. } => Failure {
            retry_after: Some(retry_after),
            ..Failure::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
        },
    })
}
