//! Stateless requests of the 2026-07-28 revision, served inline.
//!
//! rmcp serves a request without a session by running a service of its
//! own for it: a new handler, a one-message transport, a service loop
//! task, a task waiting for that loop, and the handler in a third task,
//! with their channels. That made a stateless `tools/call` about 0.6× as
//! fast as one in an established session, which [`super`] serves in the
//! HTTP task (docs/benchmarks.md, workload 1).
//!
//! This module serves such a request the way [`super`] serves a session's:
//! the handler runs in the HTTP task, with a context built as rmcp builds
//! it, and what it sends before its result goes on the request's own
//! response ([`super::reply::serve_stateless`]). It takes only requests
//! rmcp would accept without a word ([`eligible`]): anything else, and
//! every method it does not list, goes on to rmcp, whose answers (its
//! `400`s for headers that contradict the body, its `-32602` for missing
//! `_meta`) stay the answers.
//!
//! The handler context needs an rmcp `Peer`, which only a running service
//! makes. Every stateless request gets the same one, of a service that has
//! already ended: nothing can reach a client through it (a send fails at
//! once, as it does on rmcp's one-message transport once its request is
//! answered), so a stateless request cannot be sent anything that is not
//! on its own response. Its notifications go there through the
//! [`super::reply::RequestStream`]; a request to the client is refused
//! (the 2026-07-28 revision asks with `InputRequiredResult`,
//! `crate::mcp::mrtr`). The peer holds no client information: a stateless
//! request's protocol version, client and capabilities come from its
//! `_meta` (MCP 2026-07-28, *Basic*: "Request metadata"), which
//! [`eligible`] requires.

use std::sync::OnceLock;

use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::mcp::param_headers;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, GetExtensions, GetMeta, JsonRpcRequest, ProtocolVersion,
    RequestMetaObject,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};

use super::reply;
use crate::mcp::McpState;
use crate::mcp::handler::McpHandler;

const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// What stateless requests share: their handler's template and the ended
/// service's peer. Made at the first stateless request (a service needs
/// the runtime).
#[derive(Default)]
pub struct Stateless {
    parts: OnceLock<(McpHandler, Peer<RoleServer>)>,
}

impl Stateless {
    fn parts(&self, mcp: &McpState) -> &(McpHandler, Peer<RoleServer>) {
        self.parts.get_or_init(|| {
            let handler = McpHandler::new(mcp.tools.clone(), mcp.gateway.clone(), &mcp.server_name)
                .with_tasks(mcp.tasks.clone())
                .with_mrtr(mcp.mrtr.clone());
            (handler.clone(), crate::mcp::peers::ended_peer(handler))
        })
    }

    /// The ended service's peer, without client information.
    pub fn peer(&self, mcp: &McpState) -> Peer<RoleServer> {
        self.parts(mcp).1.clone()
    }

    /// A handler for a session of its own, as rmcp's service factory makes
    /// one for each Streamable HTTP session.
    pub fn handler(&self, mcp: &McpState) -> McpHandler {
        self.parts(mcp).0.fresh()
    }
}

/// Serves `request`, a stateless request [`eligible`] took, made by the
/// caller the gate put in `parts`; the parts back when there is no caller,
/// for rmcp to answer.
pub async fn serve(
    mcp: &McpState,
    parts: Parts,
    request: JsonRpcRequest<ClientRequest>,
) -> Result<Response, Parts> {
    let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
        return Err(parts);
    };
    let (template, peer) = mcp.stateless.parts(mcp);
    let JsonRpcRequest {
        id,
        request: mut body,
        ..
    } = request;
    let mut context = RequestContext::new(id.clone(), peer.clone());
    context.meta = std::mem::replace(body.get_meta_mut(), RequestMetaObject::new());
    context.extensions = std::mem::take(body.extensions_mut());
    context.extensions.insert(caller);
    context.extensions.insert(parts);
    // A handler of its own, as rmcp's service factory would make.
    Ok(reply::serve_stateless(
        template.fresh(),
        id,
        body,
        context,
        mcp.cancel.child_token(),
        mcp.keep_alive,
    )
    .await)
}

/// The stateless request in `message` (sent with headers naming the
/// stateless revision `version`, [`version`]) if this module serves it: a request
/// of a method it lists, sent with the headers rmcp checks all present and
/// agreeing with the body, so that rmcp would dispatch it to the handler
/// unchanged. `None` for everything else.
///
/// rmcp's checks, in the order it makes them, and how a request passes:
/// - `Accept` names JSON and event streams, `Content-Type` is JSON;
/// - one `MCP-Protocol-Version`, a known revision of 2026-07-28 or later
///   (the stateless revisions), and the same as the request's
///   `_meta` `protocolVersion` (MCP 2026-07-28, *Transports*);
/// - the `_meta` keys that revision requires (protocol version and client
///   capabilities) are there;
/// - one `Mcp-Method` equal to the body's method, and for the methods
///   that name something one `Mcp-Name` equal to it, plain or in its
///   Base64 form (SEP-2243). `Mcp-Param-*` headers were checked already,
///   for every tool the caller may see (`crate::mcp::param_headers`).
pub fn eligible(
    headers: &HeaderMap,
    version: &str,
    message: ClientJsonRpcMessage,
) -> Option<JsonRpcRequest<ClientRequest>> {
    match message {
        ClientJsonRpcMessage::Request(request) if accepts(headers, version, &request.request) => {
            Some(request)
        }
        _ => None,
    }
}

/// The stateless revision a POST names, when its headers are such that
/// [`eligible`] may take it (the first two of rmcp's checks above): `None`
/// for anything else, whose body need not be parsed here.
pub fn version(headers: &HeaderMap) -> Option<&str> {
    if !super::accepts_json_and_events(headers) || !super::sends_json(headers) {
        return None;
    }
    let version = one(headers, PROTOCOL_HEADER)?;
    let stateless = version >= ProtocolVersion::V_2026_07_28.as_str()
        && ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .any(|k| k.as_str() == version);
    stateless.then_some(version)
}

/// The rest of rmcp's checks, for a request whose headers name the
/// stateless revision `version`.
fn accepts(headers: &HeaderMap, version: &str, request: &ClientRequest) -> bool {
    let Some(name) = served(request) else {
        return false;
    };
    let meta = request.get_meta();
    let meta_ok = meta
        .protocol_version()
        .is_some_and(|v| v.as_str() == version && meta.missing_required_keys(&v).is_empty());
    let method_ok = one(headers, METHOD_HEADER) == Some(request.method());
    let name_ok = match name {
        Named::No => true,
        Named::Yes(expected) => one(headers, NAME_HEADER)
            .and_then(param_headers::decode)
            .is_some_and(|n| n == expected),
    };
    meta_ok && method_ok && name_ok
}

/// Whether a method's request names its target in `Mcp-Name` (SEP-2243).
enum Named<'a> {
    No,
    Yes(&'a str),
}

/// The requests served here, with their `Mcp-Name`; `None` for the others
/// (`server/discover`, tasks, `subscriptions/listen`, the subscriptions and
/// log levels of the session revisions, custom methods), which rmcp
/// answers.
fn served(request: &ClientRequest) -> Option<Named<'_>> {
    Some(match request {
        ClientRequest::PingRequest(_)
        | ClientRequest::ListToolsRequest(_)
        | ClientRequest::ListResourcesRequest(_)
        | ClientRequest::ListResourceTemplatesRequest(_)
        | ClientRequest::ListPromptsRequest(_)
        | ClientRequest::CompleteRequest(_) => Named::No,
        ClientRequest::CallToolRequest(r) => Named::Yes(r.params.name.as_ref()),
        ClientRequest::GetPromptRequest(r) => Named::Yes(r.params.name.as_ref()),
        ClientRequest::ReadResourceRequest(r) => Named::Yes(r.params.uri.as_ref()),
        _ => return None,
    })
}

/// The one value of header `name` as text; `None` when it is missing,
/// repeated or not text.
fn one<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let v = values.next()?;
    if values.next().is_some() {
        return None;
    }
    v.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::{Value, json};

    const V: &str = "2026-07-28";

    fn meta() -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": V,
            "io.modelcontextprotocol/clientCapabilities": {},
        })
    }

    fn call(name: &str) -> ClientJsonRpcMessage {
        message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": name, "arguments": {}, "_meta": meta()}}))
    }

    fn message(v: Value) -> ClientJsonRpcMessage {
        serde_json::from_value(v).expect("a client message")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("a header value"));
        }
        h
    }

    fn full(method: &'static str, name: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
        let mut h = vec![
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", V),
            ("mcp-method", method),
        ];
        if let Some(n) = name {
            h.push(("mcp-name", n));
        }
        h
    }

    fn taken(h: &[(&'static str, &str)], m: ClientJsonRpcMessage) -> bool {
        let h = headers(h);
        version(&h).is_some_and(|v| eligible(&h, v, m).is_some())
    }

    /// The headers of a `tools/call` of `echo` with header `i` replaced.
    fn echo_changed(
        i: usize,
        pair: (&'static str, &'static str),
    ) -> Vec<(&'static str, &'static str)> {
        let mut h = full("tools/call", Some("echo"));
        h[i] = pair;
        h
    }

    /// The headers of a `tools/call` of `echo` with one more.
    fn echo_plus(pair: (&'static str, &'static str)) -> Vec<(&'static str, &'static str)> {
        let mut h = full("tools/call", Some("echo"));
        h.push(pair);
        h
    }

    /// What a case is, its headers, its message.
    type Case<'a> = (&'a str, Vec<(&'static str, &'a str)>, ClientJsonRpcMessage);

    #[test]
    fn a_request_with_every_header_agreeing_is_served_here() {
        assert!(taken(&full("tools/call", Some("echo")), call("echo")));
        // Mcp-Name in its Base64 form (SEP-2243) names the same tool.
        assert!(taken(
            &full("tools/call", Some("=?base64?ZWNobw==?=")),
            call("echo")
        ));
        let list = message(json!({"jsonrpc": "2.0", "id": "a", "method": "tools/list",
                                  "params": {"_meta": meta()}}));
        assert!(taken(&full("tools/list", None), list));
        let read = message(
            json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read",
                                  "params": {"uri": "mem://a", "_meta": meta()}}),
        );
        assert!(taken(&full("resources/read", Some("mem://a")), read));
    }

    #[test]
    fn anything_rmcp_would_refuse_or_route_otherwise_is_left_to_it() {
        let cases: Vec<Case<'_>> = vec![
            (
                "a session revision",
                echo_changed(2, ("mcp-protocol-version", "2025-11-25")),
                call("echo"),
            ),
            (
                "an unknown revision",
                echo_changed(2, ("mcp-protocol-version", "2099-01-01")),
                call("echo"),
            ),
            (
                "no version header",
                full("tools/call", Some("echo"))
                    .into_iter()
                    .filter(|(k, _)| *k != "mcp-protocol-version")
                    .collect(),
                call("echo"),
            ),
            (
                "a repeated version header",
                echo_plus(("mcp-protocol-version", V)),
                call("echo"),
            ),
            (
                "Mcp-Method of another method",
                full("tools/list", Some("echo")),
                call("echo"),
            ),
            ("no Mcp-Name", full("tools/call", None), call("echo")),
            (
                "Mcp-Name of another tool",
                full("tools/call", Some("whoami")),
                call("echo"),
            ),
            (
                "a repeated Mcp-Name",
                echo_plus(("mcp-name", "echo")),
                call("echo"),
            ),
            (
                "JSON only accepted",
                echo_changed(0, ("accept", "application/json")),
                call("echo"),
            ),
            (
                "not JSON sent",
                echo_changed(1, ("content-type", "text/plain")),
                call("echo"),
            ),
            (
                "_meta without the client's capabilities",
                full("tools/call", Some("echo")),
                message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "echo", "_meta": {
                                "io.modelcontextprotocol/protocolVersion": V}}})),
            ),
            (
                "_meta naming another revision than the header",
                full("tools/call", Some("echo")),
                message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "echo", "_meta": {
                                "io.modelcontextprotocol/protocolVersion": "2025-11-25",
                                "io.modelcontextprotocol/clientCapabilities": {}}}})),
            ),
            (
                "server/discover",
                full("server/discover", None),
                message(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                            "params": {"_meta": meta()}}),
                ),
            ),
            (
                "a notification",
                full("notifications/cancelled", None),
                message(
                    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": 1}}),
                ),
            ),
        ];
        for (what, h, m) in cases {
            assert!(!taken(&h, m), "{what}: should be left to rmcp");
        }
    }
}
