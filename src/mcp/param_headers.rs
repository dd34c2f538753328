//! `Mcp-Param-*` headers of a 2026-07-28 `tools/call` (SEP-2243), checked
//! against its body before the request goes on; the rules are in
//! `mcpgate_core::mcp::param_headers`.
//!
//! rmcp checks them only for tools its handler can name without knowing
//! the caller (mcpgate's built-in ones); the tools a caller sees through the
//! gateway depend on who calls, so the check is made here, with the
//! caller the gate authenticated, for built-in and upstream tools alike.
//! A mismatch is answered `400 Bad Request` with the JSON-RPC error
//! `-32020` (HeaderMismatch) and the request's id. The call itself is
//! served from the body.

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::mcp::param_headers::{self, PREFIX};
use rmcp::model::{ErrorData, JsonRpcError, ProtocolVersion, RequestId};
use serde_json::Value;

use super::McpState;

const PROTOCOL_HEADER: &str = "mcp-protocol-version";

/// The rejection of a POST whose custom headers do not match its body, or
/// `None` to let it go on.
pub async fn reject(mcp: &McpState, parts: &Parts, body: &Bytes) -> Option<Response> {
    let version = parts.headers.get(PROTOCOL_HEADER)?.to_str().ok()?;
    if version < ProtocolVersion::STANDARD_HEADERS.as_str() {
        return None;
    }
    // Only a `tools/call` has custom headers. rmcp refuses a request whose
    // `Mcp-Method` differs from its body, so the others need not be parsed.
    if parts.headers.get("mcp-method")?.as_bytes() != b"tools/call" {
        return None;
    }
    let caller = parts.extensions.get::<Caller>()?;
    // A tool whose schema annotates no argument has nothing to check, and
    // its body need not be parsed here. The tool is the one `Mcp-Name`
    // names: at this revision a `tools/call` whose `Mcp-Name` is missing or
    // differs from its body is refused whatever its `Mcp-Param-*` headers
    // (`inline::stateless` takes none such, and rmcp answers it `400`).
    let mut named = None;
    if let Ok(Some(raw)) = one_header_named(&parts.headers, "mcp-name")
        && let Some(name) = param_headers::decode(raw)
    {
        let schema = schema_of(mcp, caller, &name).await?;
        if !param_headers::has_annotations(&schema) {
            return None;
        }
        named = Some((name, schema));
    }
    let message: Value = serde_json::from_slice(body).ok()?;
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let params = message.get("params")?;
    let name = params.get("name")?.as_str()?;
    let schema = match named {
        Some((n, schema)) if n == name => schema,
        _ => schema_of(mcp, caller, name).await?,
    };
    let checked = param_headers::check(&schema, params.get("arguments"), |h| {
        one_header(&parts.headers, h)
    });
    let mismatch = checked.err()?;
    tracing::info!(event = "mcp.param_header_mismatch", tool = %name.escape_debug(), reason = %mismatch, "a tools/call was refused: its Mcp-Param headers do not match its body");
    let id = message
        .get("id")
        .cloned()
        .and_then(|id| serde_json::from_value::<RequestId>(id).ok());
    let error = JsonRpcError::new(id, ErrorData::header_mismatch(mismatch.to_string(), None));
    Some(
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&error).unwrap_or_default(),
        )
            .into_response(),
    )
}

/// The input schema of the tool `name` as `caller` sees it (built-in, or
/// an upstream's); `None` for a tool the caller cannot call.
async fn schema_of(
    mcp: &McpState,
    caller: &Caller,
    name: &str,
) -> Option<std::sync::Arc<serde_json::Map<String, Value>>> {
    match mcp.tools.get(name) {
        Some(tool) => Some(tool.input_schema.clone()),
        None => mcp.gateway.tool_schema(caller, name).await,
    }
}

/// The one value of `Mcp-Param-<name>`: repeated or not visible ASCII is
/// an error.
fn one_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, String> {
    one_header_named(headers, &format!("{PREFIX}{name}"))
}

/// The one value of header `full`: repeated or not visible ASCII is an
/// error.
fn one_header_named<'h>(headers: &'h HeaderMap, full: &str) -> Result<Option<&'h str>, String> {
    let mut values = headers.get_all(full).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("the header is repeated".into());
    }
    v.to_str()
        .map(Some)
        .map_err(|_| "the value has characters other than visible ASCII; use =?base64?...?=".into())
}
