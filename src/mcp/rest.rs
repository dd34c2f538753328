//! REST tool calls (the seed's `POST /tools/*`): `GET /tools` lists the
//! tools with their input schemas; `POST /tools/{name}` runs one with a JSON
//! object of arguments, as the token's user, and returns the MCP
//! `CallToolResult` as JSON. `[[policy]]` applies as on the MCP
//! transports: a denied tool is not listed and answers `404 unknown_tool`
//! like an unknown one; over a rule's rate, `429` with `Retry-After`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcpgate_core::mcp::bearer::Caller;
use serde_json::{Value, json};

use super::McpState;
use super::handler::{all_tools, call_any_tool, sessionless_call};
use super::tools::ToolError;

fn error(status: StatusCode, code: &str, description: String) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

pub async fn list(State(mcp): State<Arc<McpState>>, req: Request) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not authenticated".into(),
        );
    };
    Json(json!({"tools": all_tools(&mcp.tools, &mcp.gateway, &caller).await})).into_response()
}

pub async fn call(
    State(mcp): State<Arc<McpState>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not authenticated".into(),
        );
    };
    let limit = super::sse::MAX_MESSAGE_BYTES;
    let body: Bytes = match super::message::read_body_or(req.into_body(), limit, |e| {
        error(e.status(), "invalid_request", e.description(limit))
    })
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_arguments",
                    "the body must be a JSON object of arguments".into(),
                );
            }
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_arguments",
                    format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    if let Some(rejected) = super::scope_gate::reject_item(
        &mcp,
        &caller,
        crate::gateway::scopes::Item::Tool(&name),
        false,
    )
    .await
    {
        return rejected;
    }
    match call_any_tool(
        &mcp.tools,
        &mcp.gateway,
        &sessionless_call(&caller),
        &name,
        Some(args),
    )
    .await
    {
        Ok(result) => Json(result).into_response(),
        Err(ToolError::Unknown(n)) => error(
            StatusCode::NOT_FOUND,
            "unknown_tool",
            format!("there is no tool named {n:?}; GET /tools lists them"),
        ),
        Err(e @ ToolError::InvalidArguments { .. }) => {
            error(StatusCode::BAD_REQUEST, "invalid_arguments", e.to_string())
        }
        Err(ToolError::Upstream(m)) => error(StatusCode::BAD_GATEWAY, "upstream_error", m),
        Err(e @ ToolError::RateLimited { retry_after, .. }) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after),
            );
            r
        }
    }
}
