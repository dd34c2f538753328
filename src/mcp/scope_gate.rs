//! Step-up authorization (MCP 2025-11-25, authorization, "Scope Challenge
//! Handling"; RFC 6750 §3.1): a `tools/call`, `prompts/get`,
//! `resources/read`, `resources/subscribe` or `completion/complete` whose
//! tool, prompt or resource needs a scope the caller's token lacks is
//! answered HTTP `403` with
//!
//! ```text
//! WWW-Authenticate: Bearer error="insufficient_scope", error_description="…",
//!     resource_metadata="…", scope="<the token's scopes plus the missing ones>"
//! ```
//!
//! on every transport, before the request goes on: Streamable HTTP (in a
//! session or stateless 2026-07-28, from `inline::dispatch`), the legacy
//! `POST /messages` (the 403 answers the POST; nothing goes to the event
//! stream) and REST `POST /tools/{name}`. The legacy routes name the SSE
//! resource's metadata, as their 401s do. What each item needs is
//! `mcpgate_core::mcp::scopes`; which upstream serves it,
//! `crate::gateway::scopes`. When no scope beyond the base one is
//! configured, the body is not even parsed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::domain::Scope;
use mcpgate_core::mcp::bearer::{BearerError, Caller};
use mcpgate_core::mcp::scopes::missing;
use serde_json::Value;

use super::McpState;
use crate::gateway::scopes::Item;

/// The protected resource metadata URLs the challenges name.
#[derive(Debug, Clone)]
pub struct ChallengeUrls {
    /// Of the MCP endpoint.
    pub resource_metadata: String,
    /// Of the legacy SSE resource (`/sse`, `/messages`).
    pub sse_resource_metadata: String,
}

/// The 403 for a POSTed JSON-RPC message (or batch) that calls something
/// the caller's token lacks a scope for; `None` to let it go on.
pub async fn reject_message(
    mcp: &McpState,
    caller: &Caller,
    body: &[u8],
    legacy_sse: bool,
) -> Option<Response> {
    if mcp.gateway.scopes_only_base() {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let messages: Vec<&Value> = match &value {
        Value::Array(batch) => batch.iter().collect(),
        one => vec![one],
    };
    for m in messages {
        let params = m.get("params");
        let field = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_str);
        let item = match m.get("method").and_then(Value::as_str) {
            Some("tools/call") => field("name").map(Item::Tool),
            Some("prompts/get") => field("name").map(Item::Prompt),
            Some("resources/read" | "resources/subscribe") => field("uri").map(Item::Resource),
            // Completions of a prompt's or a resource template's arguments.
            Some("completion/complete") => {
                let r = params.and_then(|p| p.get("ref"));
                let of = |k: &str| r.and_then(|r| r.get(k)).and_then(Value::as_str);
                match of("type") {
                    Some("ref/prompt") => of("name").map(Item::Prompt),
                    Some("ref/resource") => of("uri").map(Item::Resource),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(item) = item else { continue };
        if let Some(r) = reject_item(mcp, caller, item, legacy_sse).await {
            return Some(r);
        }
    }
    None
}

/// The 403 if the caller's token lacks a scope `item` needs.
pub async fn reject_item(
    mcp: &McpState,
    caller: &Caller,
    item: Item<'_>,
    legacy_sse: bool,
) -> Option<Response> {
    if mcp.gateway.scopes_only_base() {
        return None;
    }
    let challenge = match item {
        // Built-in tools are served by no upstream.
        Item::Tool(name) if mcp.tools.get(name).is_some() => mcp
            .gateway
            .check_scope(caller, None, mcpgate_core::policy::Kind::Tool, name)
            .err(),
        _ => mcp.gateway.scope_shortfall(caller, item).await,
    }?;
    let name = match item {
        Item::Tool(n) | Item::Prompt(n) | Item::Resource(n) => n,
    };
    Some(forbidden(mcp, caller, name, &challenge, legacy_sse))
}

fn forbidden(
    mcp: &McpState,
    caller: &Caller,
    item: &str,
    challenge: &Scope,
    legacy_sse: bool,
) -> Response {
    let lacking = missing(&caller.scope, challenge);
    tracing::info!(
        event = "mcp.insufficient_scope",
        caller = ?caller.label(),
        client_id = ?caller.client_id,
        item = %item.escape_debug(),
        missing = %lacking,
        "a call needs a scope the access token lacks: 403 with a step-up challenge"
    );
    let e = BearerError::InsufficientScope(format!(
        "{} needs the scope {lacking}, which this access token lacks; authorize again with the scope this challenge names",
        item.escape_debug()
    ));
    let urls = &mcp.challenge_urls;
    let metadata = if legacy_sse {
        &urls.sse_resource_metadata
    } else {
        &urls.resource_metadata
    };
    let value = e.challenge(metadata, &challenge.to_string());
    let body = serde_json::json!({"error": e.to_string(), "error_description": e.description()});
    let mut r = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}
