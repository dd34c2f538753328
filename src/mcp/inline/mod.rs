//! Streamable HTTP sessions, served by mcpgate itself.
//!
//! rmcp's session transport runs, per session, a worker task and a service
//! task with their channels and a `Peer`: most of the 76 KB an idle
//! session cost (docs/benchmarks.md, "Workload 5 at scale"), and four task
//! hand-offs per request. This layer, in front of rmcp's
//! `StreamableHttpService`, serves every session itself: `initialize`
//! opens one ([`lifecycle`]), each request is served in the HTTP task that
//! brought it, with a context built as rmcp builds it (the request's
//! `_meta`, its extensions, the caller, a cancellation token, the session's
//! link and an ended peer carrying the client's `initialize`), and
//! answered as [`reply`] describes; `GET` reads the session's standalone
//! stream, `DELETE` ends it. rmcp's service sees only what has no session:
//! requests of the stateless 2026-07-28 revision that [`stateless`] does
//! not take, and anything malformed, whose answers (its `406`, `415`,
//! `400`, `404`) stay rmcp's. No session is ever made by rmcp: every
//! `initialize` it would accept is taken here first.
//!
//! A session's messages other than requests: the client's answers to
//! requests mcpgate sent it (on a request's response or the standalone
//! stream) are delivered by id; `notifications/cancelled` cancels a
//! request; other notifications get their span.
//!
//! - [`registry`]: the sessions of this instance and their owners.
//! - [`lifecycle`]: opening, restoring, reading and ending a session.
//! - [`reply`]: serving one request, and its JSON or event-stream answer.
//! - [`stateless`]: requests of the stateless 2026-07-28 revision (no
//!   session), served inline the same way.

pub mod lifecycle;
pub mod registry;
pub mod reply;
pub mod stateless;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::{
    ClientNotification, ClientRequest, ErrorData, Extensions, GetExtensions, GetMeta,
    JsonRpcMessage, ProtocolVersion, RequestMetaObject, ServerJsonRpcMessage,
};
use rmcp::service::RequestContext;

use super::McpState;
use super::message;
use super::sessions::SESSION_HEADER;

const PROTOCOL_HEADER: &str = "mcp-protocol-version";

/// Serves `req` or hands it to `next` (rmcp); see the module
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
    match (req.method(), &session_id) {
        (&Method::POST, _) => {}
        (&Method::GET, Some(id)) if session_era(req.headers()) && accepts_events(req.headers()) => {
            let (parts, _) = req.into_parts();
            return match lifecycle::find(mcp, id, &parts).await {
                Some(session) => lifecycle::stream(mcp, &session, &parts.headers),
                None => next.run(Request::from_parts(parts, Body::empty())).await,
            };
        }
        (&Method::DELETE, Some(id)) if session_era(req.headers()) => {
            if mcp.inline.get(id).is_some() {
                return lifecycle::delete(mcp, id);
            }
            return next.run(req).await;
        }
        _ => return next.run(req).await,
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
        // `initialize` (a new session), a stateless (2026-07-28) request,
        // or anything else without a session (`server/discover`): rmcp's,
        // unless served here.
        if let Some(version) = stateless::version(&parts.headers) {
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
        }
        let Ok(JsonRpcMessage::Request(r)) = super::parse::client_message(&bytes) else {
            return pass(parts, bytes).await;
        };
        if !opens_session(&parts.headers, &r.request) || parts.extensions.get::<Caller>().is_none()
        {
            return pass(parts, bytes).await;
        }
        return lifecycle::open(mcp, r.id, r.request, parts).await;
    };
    if !plain_session_request(&parts.headers) {
        return pass(parts, bytes).await;
    }
    let Some(session) = lifecycle::find(mcp, &session_id, &parts).await else {
        return pass(parts, bytes).await;
    };
    let Ok(message) = super::parse::client_message(&bytes) else {
        return pass(parts, bytes).await;
    };
    session.touch();
    match message {
        // A request naming its own protocol version is of the stateless
        // revision: rmcp serves it (without the session) or refuses it.
        JsonRpcMessage::Request(r) if r.request.get_meta().protocol_version().is_some() => {
            pass(parts, bytes).await
        }
        JsonRpcMessage::Request(r) => {
            if matches!(r.request, ClientRequest::InitializeRequest(_)) {
                let error = ErrorData::invalid_request(message::ALREADY_INITIALIZED, None);
                return reply::json(&ServerJsonRpcMessage::error(error, Some(r.id)));
            }
            let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
                return pass(parts, bytes).await;
            };
            let mut request = r.request;
            let mut context = RequestContext::new(r.id.clone(), session.peer.clone());
            context.meta = std::mem::replace(request.get_meta_mut(), RequestMetaObject::new());
            context.extensions = std::mem::take(request.extensions_mut());
            context.extensions.insert(caller);
            context.extensions.insert(parts);
            context.extensions.insert(session.link());
            let ct = session.request_token();
            reply::serve(session, r.id, request, context, ct, mcp.keep_alive).await
        }
        JsonRpcMessage::Response(r) => {
            if !session.stream_link().answers.deliver(&r.id, Ok(r.result)) {
                tracing::debug!(id = %r.id, "an answer to no pending request; dropped");
            }
            accepted()
        }
        JsonRpcMessage::Error(e) => {
            let delivered = match &e.id {
                Some(id) => session.stream_link().answers.deliver(id, Err(e.error)),
                None => false,
            };
            if !delivered {
                tracing::debug!("an error answering no pending request; dropped");
            }
            accepted()
        }
        JsonRpcMessage::Notification(n) => {
            let mut notification = n.notification;
            let mut extensions: Extensions = std::mem::take(notification.extensions_mut());
            extensions.insert(parts);
            let method = match &notification {
                ClientNotification::CancelledNotification(c) => {
                    if let Some(id) = &c.params.request_id {
                        session.in_flight.cancel(id);
                    }
                    Some("notifications/cancelled")
                }
                ClientNotification::InitializedNotification(_) => Some("notifications/initialized"),
                ClientNotification::RootsListChangedNotification(_) => {
                    Some("notifications/roots/list_changed")
                }
                _ => None,
            };
            if let Some(method) = method {
                session
                    .handler
                    .observe_notification(method, &extensions)
                    .await;
            }
            accepted()
        }
    }
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// A POST that rmcp would take into its session path without complaint:
/// it accepts both JSON and event streams, sends JSON, and names no
/// protocol version or one of the session era ([`session_era`]). Anything
/// else goes to rmcp, whose answer (406, 415, 400) stays the same.
fn plain_session_request(headers: &HeaderMap) -> bool {
    accepts_json_and_events(headers) && sends_json(headers) && session_era(headers)
}

/// Whether the `MCP-Protocol-Version` header, if any, names a known
/// revision of the session era (before the standard headers of
/// 2026-07-28): rmcp would treat the request as one of a session.
fn session_era(headers: &HeaderMap) -> bool {
    match headers.get(PROTOCOL_HEADER) {
        None => true,
        Some(v) => v
            .to_str()
            .is_ok_and(|v| v < ProtocolVersion::STANDARD_HEADERS.as_str() && known_version(v)),
    }
}

fn known_version(v: &str) -> bool {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .any(|k| k.as_str() == v)
}

/// Whether `request`, POSTed without a session with `headers`, is an
/// `initialize` rmcp would open a session for: its headers pass rmcp's
/// checks (`Accept`, `Content-Type`; an `MCP-Protocol-Version`, if sent, a
/// known one and the one in the body; an `Mcp-Method`, if the version
/// requires the standard headers, one and `initialize`). rmcp refuses
/// every other `initialize`, with its own answer.
fn opens_session(headers: &HeaderMap, request: &ClientRequest) -> bool {
    let ClientRequest::InitializeRequest(init) = request else {
        return false;
    };
    if !accepts_json_and_events(headers) || !sends_json(headers) {
        return false;
    }
    let Some(version) = headers.get(PROTOCOL_HEADER) else {
        return true;
    };
    let Ok(version) = version.to_str() else {
        return false;
    };
    if !known_version(version) || version != init.params.protocol_version.as_str() {
        return false;
    }
    if version < ProtocolVersion::STANDARD_HEADERS.as_str() {
        return true;
    }
    let mut methods = headers.get_all("mcp-method").iter();
    match (methods.next(), methods.next()) {
        (None, _) => true,
        (Some(m), None) => m.as_bytes() == b"initialize",
        (Some(_), Some(_)) => false,
    }
}

/// Whether `Accept` names event streams (not with `q=0`), as rmcp requires
/// of a `GET` (else `406`).
fn accepts_events(headers: &HeaderMap) -> bool {
    accepted_types(headers).any(|e| e.eq_ignore_ascii_case("text/event-stream"))
}

/// The media types `Accept` names, without those refused with `q=0`.
fn accepted_types(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut fields = item.split(';');
            let essence = fields.next().unwrap_or("").trim();
            (!fields.any(|p| is_zero_quality(p.trim()))).then_some(essence)
        })
}

/// Whether `Accept` names both JSON and event streams (neither with
/// `q=0`), as rmcp requires of every POST (else `406`). A value that is
/// not text counts as refusing both.
fn accepts_json_and_events(headers: &HeaderMap) -> bool {
    if headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_err())
    {
        return false;
    }
    let (mut json, mut sse) = (false, false);
    for essence in accepted_types(headers) {
        json |= essence.eq_ignore_ascii_case("application/json");
        sse |= essence.eq_ignore_ascii_case("text/event-stream");
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

    fn initialize(version: &str) -> ClientRequest {
        let m: rmcp::model::ClientJsonRpcMessage = serde_json::from_value(serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}
        }))
        .unwrap();
        match m {
            JsonRpcMessage::Request(r) => r.request,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_initialize_rmcp_would_refuse_opens_no_session() {
        let ok = headers(&[BOTH, JSON]);
        assert!(opens_session(&ok, &initialize("2025-06-18")));
        // An unknown version in the body is negotiated, not refused.
        assert!(opens_session(&ok, &initialize("1999-01-01")));
        let v = |v| headers(&[BOTH, JSON, ("mcp-protocol-version", v)]);
        assert!(opens_session(&v("2025-11-25"), &initialize("2025-11-25")));
        assert!(
            !opens_session(&v("2025-11-25"), &initialize("2025-06-18")),
            "disagrees"
        );
        assert!(
            !opens_session(&v("1999-01-01"), &initialize("1999-01-01")),
            "unknown"
        );
        // The standard headers' revision: an Mcp-Method, if sent, is one
        // and `initialize`.
        let new = |m: &[(&'static str, &'static str)]| {
            let mut h = v("2026-07-28");
            for (k, val) in m {
                h.append(*k, HeaderValue::from_static(val));
            }
            h
        };
        let init = initialize("2026-07-28");
        assert!(opens_session(&new(&[]), &init));
        assert!(opens_session(&new(&[("mcp-method", "initialize")]), &init));
        assert!(!opens_session(&new(&[("mcp-method", "tools/list")]), &init));
        assert!(!opens_session(
            &new(&[("mcp-method", "initialize"), ("mcp-method", "initialize")]),
            &init
        ));
        // Only in that revision: before it rmcp reads no Mcp-Method.
        let mut old = v("2025-06-18");
        old.append("mcp-method", HeaderValue::from_static("tools/list"));
        assert!(opens_session(&old, &initialize("2025-06-18")));
    }

    #[test]
    fn a_get_or_delete_of_the_session_era_is_served_here() {
        assert!(session_era(&headers(&[])));
        assert!(session_era(&headers(&[(
            "mcp-protocol-version",
            "2024-11-05"
        )])));
        assert!(!session_era(&headers(&[(
            "mcp-protocol-version",
            "2026-07-28"
        )])));
        assert!(!session_era(&headers(&[(
            "mcp-protocol-version",
            "2025-13-01"
        )])));
        assert!(accepts_events(&headers(&[("accept", "text/event-stream")])));
        assert!(accepts_events(&headers(&[(
            "accept",
            "application/json, Text/Event-Stream;q=0.1"
        )])));
        assert!(!accepts_events(&headers(&[(
            "accept",
            "text/event-stream;q=0"
        )])));
        assert!(!accepts_events(&headers(&[("accept", "*/*")])));
        assert!(!accepts_events(&headers(&[])));
    }
}
