//! Reading a POSTed MCP message, the same on every transport (Streamable
//! HTTP with or without a session, stateless 2026-07-28, the legacy
//! `/messages/`, REST `/tools/{name}`):
//!
//! - [`read_body`]: a body past the limit gets `413` whether it announced
//!   its length or not (a chunked body is only found too large while it is
//!   read); one that did not arrive in time `408`; a cut-off one `400`.
//!   Never a `500`: a client's body is not a server error.
//! - [`malformed`]: a body that is not JSON gets the JSON-RPC 2.0 parse
//!   error (§5.1, `-32700`, `id: null`), and JSON that is not a JSON-RPC
//!   message the invalid-request error (`-32600`), both with HTTP `400`
//!   (MCP Streamable HTTP: "400 Bad Request, optionally with a JSON-RPC
//!   error response" for a POST the server cannot accept).
//! - [`ALREADY_INITIALIZED`]: the `-32600` message for a second
//!   `initialize` in a session (legacy SSE or Streamable HTTP).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::server::body::BodyError;

/// The message of the `-32600` answering a second `initialize` in a
/// session (MCP *Lifecycle*: initialization is the first interaction,
/// once).
pub const ALREADY_INITIALIZED: &str =
    "this session is already initialized: initialize is sent once, as a session's first request";

/// The whole body, at most `limit` bytes, or the answer to send instead.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    read_body_or(body, limit, |kind| {
        let text = match kind {
            BodyError::TooLarge => {
                format!("Payload Too Large: an MCP message may have at most {limit} bytes")
            }
            BodyError::TimedOut => {
                "Request Timeout: the request body did not arrive in time".into()
            }
            BodyError::Unreadable => "Bad Request: the request body could not be read".into(),
        };
        (kind.status(), text).into_response()
    })
    .await
}

/// The whole body, at most `limit` bytes, or the answer `answer` makes of
/// the failure, with `Connection: close` (the rest of the body may still
/// be on its way).
pub async fn read_body_or(
    body: Body,
    limit: usize,
    answer: impl FnOnce(BodyError) -> Response,
) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut r = answer(BodyError::of(&e));
        r.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        r
    })
}

/// Whether the request says its body is JSON (`application/json`, any
/// parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// The JSON-RPC error response (`id: null`) for a body that is not a
/// JSON-RPC message: `-32700` when it is not JSON at all, else `-32600`.
pub fn malformed(body: &[u8]) -> Response {
    let (code, message) = match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => (
            -32700,
            format!("Parse error: the body is not a JSON-RPC message: it is not valid JSON ({e})"),
        ),
        Ok(_) => (
            -32600,
            "Invalid Request: the body is JSON but not a JSON-RPC message".to_string(),
        ),
    };
    jsonrpc_error(StatusCode::BAD_REQUEST, code, &message)
}

/// A JSON-RPC error response with `id: null` and the HTTP `status`.
pub fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    });
    (status, axum::Json(body)).into_response()
}
