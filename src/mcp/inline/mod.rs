//! Inline dispatch of client requests in Streamable HTTP sessions.
//!
//! rmcp's session transport hands every request from the HTTP task to the
//! session's worker task, which opens a channel for its response stream
//! and passes the request to the session's service task, which spawns the
//! handler in a task of its own; the answer travels back the same way, as a
//! one-event `text/event-stream`. That costs four task hand-offs and a
//! channel per request, about three quarters of the CPU time of a
//! `tools/call` (docs/benchmarks.md).
//!
//! This layer, in front of rmcp's service, serves a request of an
//! established session itself: it calls the session's handler (rmcp's
//! `Service::handle_request`, the same dispatch rmcp makes) in the HTTP
//! task, with a context built as rmcp builds it (the request's `_meta`,
//! its extensions, the caller, a cancellation token, the session's peer),
//! and answers as [`reply`] describes. Everything else goes on to rmcp
//! untouched: `initialize`, GET streams and their resumption, DELETE,
//! notifications, requests whose
//! headers or `_meta` ask for the per-request protocol rules, malformed
//! messages (rmcp's errors stay the answers), and sessions this instance
//! has not registered (rmcp restores them from the store, and the
//! handler's `initialize` registers them).
//!
//! Two kinds of message it also takes: the client's answer to a request
//! mcpgate sent on an inline response stream, and `notifications/cancelled`
//! for an inline request. Neither would mean anything to rmcp.
//!
//! - [`manager`]: rmcp's session manager, tagging `initialize` with the
//!   session id.
//! - [`registry`]: the sessions registered for inline dispatch.
//! - [`reply`]: serving one request, and its JSON or event-stream answer.
//! - [`stateless`]: requests of the stateless 2026-07-28 revision (no
//!   session), served inline the same way.

pub mod manager;
pub mod registry;
pub mod reply;
pub mod stateless;

use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::{
    ClientNotification, ClientRequest, GetExtensions, GetMeta, JsonRpcMessage, ProtocolVersion,
    RequestMetaObject,
};
use rmcp::service::RequestContext;

use super::McpState;
use super::message;
use super::sessions::SESSION_HEADER;

const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// At most this often a session's inline requests reset rmcp's idle clock.
const TOUCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// Serves `req` inline or hands it to `next` (rmcp); see the module
/// documentation. Called by `sessions::bind_to_user` once the session's
/// owner is checked. Every POST's body is read here first
/// (`super::message`): a body too large gets `413` and one that is not
/// JSON the JSON-RPC parse error, with or without a session, where rmcp
/// would answer `500` and `415`.
pub async fn dispatch(mcp: &McpState, req: Request, next: Next) -> Response {
    let session_id = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if req.method() == Method::DELETE
        && let Some(session_id) = &session_id
    {
        let resp = next.run(req).await;
        if resp.status().is_success() {
            mcp.inline.remove(session_id);
        }
        return resp;
    }
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match message::read_body(body, super::MAX_MCP_BODY_BYTES).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(rejected) = super::param_headers::reject(mcp, &parts, &bytes).await {
        return rejected;
    }
    if let Some(caller) = parts.extensions.get::<Caller>()
        && let Some(rejected) = super::scope_gate::reject_message(mcp, caller, &bytes, false).await
    {
        return rejected;
    }
    let json = message::is_json(&parts.headers);
    let resp = post(mcp, session_id, parts, bytes.clone(), next).await;
    // rmcp checks Accept (406) and Content-Type (415) first, then answers
    // 415 to a JSON body it cannot deserialize.
    if json && resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return message::malformed(&bytes);
    }
    resp
}

async fn post(
    mcp: &McpState,
    session_id: Option<String>,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    next: Next,
) -> Response {
    let pass = |parts: axum::http::request::Parts, bytes: Bytes| {
        next.run(Request::from_parts(parts, Body::from(bytes)))
    };
    let Some(session_id) = session_id else {
        // A stateless (2026-07-28) request, or anything else without a
        // session (`initialize`, `server/discover`): rmcp's, unless
        // `stateless` serves it. Only a stateless one is parsed here.
        let Some(version) = stateless::version(&parts.headers) else {
            return pass(parts, bytes).await;
        };
        let Ok(message) = super::parse::client_message(&bytes) else {
            return pass(parts, bytes).await;
        };
        let Some(request) = stateless::eligible(&parts.headers, version, message) else {
            return pass(parts, bytes).await;
        };
        return match stateless::serve(mcp, parts, request).await {
            Ok(response) => response,
            Err(parts) => pass(parts, bytes).await,
        };
    };
    if !plain_session_request(&parts.headers) {
        return pass(parts, bytes).await;
    }
    let Some(session) = mcp.inline.get(&session_id) else {
        return pass(parts, bytes).await;
    };
    let Ok(message) = super::parse::client_message(&bytes) else {
        return pass(parts, bytes).await;
    };
    match message {
        JsonRpcMessage::Request(r) if session.is_ready() && served_inline(&r.request) => {
            let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
                return pass(parts, bytes).await;
            };
            let idle = mcp.session_idle.min(TOUCH_AT_MOST_EVERY * 4) / 4;
            if session.touch_due(idle) && !mcp.session_manager.touch(&session_id).await {
                // rmcp closed it meanwhile: its answer (404) it is.
                mcp.inline.remove(&session_id);
                return pass(parts, bytes).await;
            }
            let mut request = r.request;
            let mut context = RequestContext::new(r.id.clone(), session.peer.clone());
            context.meta = std::mem::replace(request.get_meta_mut(), RequestMetaObject::new());
            context.extensions = std::mem::take(request.extensions_mut());
            context.extensions.insert(caller);
            context.extensions.insert(parts);
            reply::serve(
                session,
                r.id,
                request,
                context,
                mcp.cancel.child_token(),
                mcp.keep_alive,
            )
            .await
        }
        JsonRpcMessage::Response(r) => {
            if session.answers.deliver(&r.id, Ok(r.result)) {
                accepted()
            } else {
                pass(parts, bytes).await
            }
        }
        JsonRpcMessage::Error(e) => match e.id {
            Some(id) if session.answers.deliver(&id, Err(e.error)) => accepted(),
            _ => pass(parts, bytes).await,
        },
        JsonRpcMessage::Notification(n) => match &n.notification {
            // Ready once rmcp has taken it: the handler hears of it a
            // moment later, and the client may send a request at once.
            ClientNotification::InitializedNotification(_) => {
                let resp = pass(parts, bytes).await;
                if resp.status() == StatusCode::ACCEPTED {
                    session.set_ready();
                }
                resp
            }
            ClientNotification::CancelledNotification(c)
                if c.params
                    .request_id
                    .as_ref()
                    .is_some_and(|id| session.in_flight.cancel(id)) =>
            {
                accepted()
            }
            _ => pass(parts, bytes).await,
        },
        _ => pass(parts, bytes).await,
    }
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// The requests served inline: those mcpgate's handler implements. Others
/// (tasks, subscriptions/listen, ...) get rmcp's answer.
fn served_inline(request: &ClientRequest) -> bool {
    let per_request_version = request.get_meta().protocol_version().is_some();
    !per_request_version
        && matches!(
            request,
            ClientRequest::PingRequest(_)
                | ClientRequest::ListToolsRequest(_)
                | ClientRequest::CallToolRequest(_)
                | ClientRequest::ListResourcesRequest(_)
                | ClientRequest::ListResourceTemplatesRequest(_)
                | ClientRequest::ReadResourceRequest(_)
                | ClientRequest::SubscribeRequest(_)
                | ClientRequest::UnsubscribeRequest(_)
                | ClientRequest::ListPromptsRequest(_)
                | ClientRequest::GetPromptRequest(_)
                | ClientRequest::CompleteRequest(_)
                | ClientRequest::SetLevelRequest(_)
        )
}

/// A POST that rmcp would take into its session path without complaint:
/// it accepts both JSON and event streams, sends JSON, and names no
/// protocol version, or a known one of the session era (before the
/// standard headers of 2026-07-28). Anything else goes to rmcp, whose
/// answer (406, 415, 400) stays the same.
fn plain_session_request(headers: &HeaderMap) -> bool {
    let version_ok = match headers.get(PROTOCOL_HEADER) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| {
            v < ProtocolVersion::STANDARD_HEADERS.as_str()
                && ProtocolVersion::KNOWN_VERSIONS
                    .iter()
                    .any(|k| k.as_str() == v)
        }),
    };
    accepts_json_and_events(headers) && sends_json(headers) && version_ok
}

/// Whether `Accept` names both JSON and event streams (neither with
/// `q=0`), as rmcp requires of every POST (else `406`).
fn accepts_json_and_events(headers: &HeaderMap) -> bool {
    let mut json = false;
    let mut sse = false;
    for v in headers.get_all(header::ACCEPT) {
        let Ok(v) = v.to_str() else { return false };
        for item in v.split(',') {
            let mut fields = item.split(';');
            let essence = fields.next().unwrap_or("").trim();
            if fields.any(|p| is_zero_quality(p.trim())) {
                continue;
            }
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// Whether `Content-Type` is JSON, as rmcp requires (else `415`).
fn sends_json(headers: &HeaderMap) -> bool {
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

fn is_zero_quality(param: &str) -> bool {
    let Some((k, v)) = param.split_once('=') else {
        return false;
    };
    k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const BOTH: (&str, &str) = ("accept", "application/json, text/event-stream");
    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn a_plain_session_post_accepts_both_types_and_sends_json() {
        assert!(plain_session_request(&headers(&[BOTH, JSON])));
        assert!(plain_session_request(&headers(&[
            ("accept", "application/json"),
            ("accept", "text/event-stream;q=0.5"),
            ("content-type", "application/json; charset=utf-8"),
            ("mcp-protocol-version", "2025-06-18"),
        ])));
    }

    #[test]
    fn anything_rmcp_would_refuse_or_treat_otherwise_goes_to_rmcp() {
        assert!(!plain_session_request(&headers(&[JSON])), "no accept");
        assert!(
            !plain_session_request(&headers(&[("accept", "application/json"), JSON])),
            "json only"
        );
        assert!(
            !plain_session_request(&headers(&[
                ("accept", "application/json, text/event-stream;q=0"),
                JSON
            ])),
            "event streams refused with q=0"
        );
        assert!(
            !plain_session_request(&headers(&[BOTH, ("content-type", "text/plain")])),
            "not json"
        );
        assert!(
            !plain_session_request(&headers(&[
                BOTH,
                JSON,
                ("mcp-protocol-version", "2026-07-28")
            ])),
            "the per-request revision"
        );
        assert!(
            !plain_session_request(&headers(&[
                BOTH,
                JSON,
                ("mcp-protocol-version", "1999-01-01")
            ])),
            "an unknown revision"
        );
    }
}
