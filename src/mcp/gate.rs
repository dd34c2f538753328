//! The middleware in front of every MCP route (Streamable HTTP, legacy SSE,
//! REST tools), [`guard`], runs two checks in turn (in one layer: axum
//! clones the inner service of every layer for every request):
//!
//! 1. [`check_origin`]: a present `Origin` must be allowed, else 403 (MCP
//!    transports: DNS-rebinding protection); so must the `Host`.
//! 2. [`require_bearer`]: the bearer token is validated and the
//!    [`Caller`] is put into the request extensions; failures get the
//!    RFC 6750 / RFC 9728 challenge.
//!
//! An event-stream response then ends when the token that opened it is
//! revoked or expires (`super::streams`).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcpgate_core::mcp::bearer::{BearerError, Caller};

use std::sync::Arc;

use super::McpState;
use super::streams::{OpenKind, StreamInfo};
use crate::auth::AuthServer;

/// Host and Origin allow-lists.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// `host` or `host:port`, lowercase.
    hosts: Vec<String>,
    /// `scheme://host[:port]`, lowercase; `*` as the port matches any.
    origins: Vec<String>,
}

impl OriginPolicy {
    pub fn new(hosts: Vec<String>, origins: Vec<String>) -> Self {
        Self {
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            origins: origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let bare = strip_port(&host);
        self.hosts.iter().any(|h| *h == host || *h == bare)
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|o| {
            *o == origin
                || o.strip_suffix(":*").is_some_and(|prefix| {
                    origin == prefix
                        || origin
                            .strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with(':'))
                })
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn forbidden(message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": message},
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// What [`guard`] needs: the Host/Origin policy and the authorization
/// server.
pub struct Gate {
    pub mcp: Arc<McpState>,
    pub auth: Arc<AuthServer>,
}

/// Which kind of event stream a response to `req` would be: a GET of the
/// legacy `/sse` endpoint, another GET (Streamable HTTP), a
/// `subscriptions/listen` POST (its `Mcp-Method` header, checked against
/// the body by `param_headers`), or another POST's.
fn stream_kind(req: &Request) -> OpenKind {
    if req.method() != axum::http::Method::GET {
        if req
            .headers()
            .get("mcp-method")
            .is_some_and(|m| m.as_bytes() == b"subscriptions/listen")
        {
            OpenKind::Listen
        } else {
            OpenKind::StreamablePost
        }
    } else if req.uri().path().ends_with("/sse") {
        OpenKind::LegacySse
    } else {
        OpenKind::StreamableGet
    }
}

/// What the stream registry records of a response to `req` by `caller`.
fn stream_info(req: &Request, caller: &Caller, now: mcpgate_core::model::UnixTime) -> StreamInfo {
    StreamInfo {
        kind: stream_kind(req),
        owner: caller.owner(),
        client_id: caller.client_id.as_str().to_string(),
        session: req
            .headers()
            .get(super::sessions::SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        opened_at: now,
    }
}

/// The middleware: [`check_origin`], then [`require_bearer`].
pub async fn guard(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    if let Some(r) = check_origin(&gate.mcp, &req) {
        return finish_rejection(req, r).await;
    }
    match require_bearer(&gate.auth, req).await {
        Ok(req) => {
            let token = req.extensions().get::<Caller>().map(|c| {
                (
                    c.token_hash.clone(),
                    c.expires_at,
                    stream_info(&req, c, gate.auth.now()),
                )
            });
            let resp = next.run(req).await;
            match token {
                Some((hash, expires_at, about)) => {
                    super::streams::watch(&gate.mcp.streams, hash, expires_at, resp, about)
                }
                None => resp,
            }
        }
        Err(r) => r,
    }
}

/// The 403 for a `Host` or `Origin` that is not allowed, if it is not.
pub fn check_origin(mcp: &McpState, req: &Request) -> Option<Response> {
    if let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        && !mcp.origin_policy.get().host_allowed(host)
    {
        tracing::warn!(
            event = "mcp.host_rejected",
            host,
            "request with a Host that is not allowed"
        );
        return Some(forbidden(
            "Forbidden: this Host is not allowed (DNS rebinding protection); add it to allowed_hosts",
        ));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !mcp.origin_policy.get().origin_allowed(origin) {
            tracing::warn!(
                event = "mcp.origin_rejected",
                origin,
                "request with an Origin that is not allowed"
            );
            return Some(forbidden(
                "Forbidden: this Origin is not allowed; add it to allowed_origins",
            ));
        }
    }
    None
}

/// The request with its [`Caller`] in the extensions, or the challenge.
pub async fn require_bearer(auth: &AuthServer, mut req: Request) -> Result<Request, Response> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth
        .authenticate_bearer(authorization, req.uri().query())
        .await
    {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(req)
        }
        Err(e) => {
            let legacy = is_legacy_sse_path(req.uri().path(), &auth.urls.base_path);
            let r = challenge(auth, &e, legacy);
            Err(finish_rejection(req, r).await)
        }
    }
}

/// `/sse` and `/messages` (not `/v1/ai/mcp/sse`, which lies below the
/// main resource) belong to the SSE resource.
fn is_legacy_sse_path(path: &str, base: &str) -> bool {
    let path = path.strip_prefix(base).unwrap_or(path);
    path == "/sse" || path.starts_with("/messages")
}

/// Reads (a bounded amount of) the unread request body before answering
/// early, so the connection can be reused; when that is not possible, the
/// response says `Connection: close` instead of dropping it silently.
async fn finish_rejection(req: Request, mut resp: Response) -> Response {
    const DRAIN_LIMIT: usize = 64 * 1024;
    let drained = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        axum::body::to_bytes(req.into_body(), DRAIN_LIMIT),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !drained {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The 401/403/400 response with its `WWW-Authenticate` challenge; its
/// `resource_metadata` names the resource of the route (RFC 9728 §5.1).
pub fn challenge(auth: &AuthServer, e: &BearerError, legacy_sse: bool) -> Response {
    if let BearerError::Unavailable(d) = e {
        // Not a verdict on the token: no challenge, retry soon.
        let body = serde_json::json!({"error": e.to_string(), "error_description": d});
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return r;
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let scope = auth.policy.required_scope().to_string();
    let metadata = if legacy_sse {
        &auth.urls.sse_resource_metadata
    } else {
        &auth.urls.resource_metadata
    };
    let value = e.challenge(metadata, &scope);
    if !matches!(e, BearerError::Missing) {
        tracing::info!(event = "mcp.token_rejected", error = %e, "{}", e.description());
    }
    let body = match e {
        BearerError::Missing => {
            serde_json::json!({"error": "unauthorized", "error_description": e.description()})
        }
        other => {
            serde_json::json!({"error": other.to_string(), "error_description": other.description()})
        }
    };
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_or_without_port() {
        let p = OriginPolicy::new(
            vec!["mcp.example.com".into(), "localhost:3333".into()],
            vec![],
        );
        assert!(p.host_allowed("mcp.example.com"));
        assert!(p.host_allowed("MCP.example.com:443"));
        assert!(p.host_allowed("localhost:3333"));
        assert!(!p.host_allowed("localhost:4444"));
        assert!(!p.host_allowed("evil.example.com"));
    }

    #[test]
    fn origins_match_exactly_or_with_a_wildcard_port() {
        let p = OriginPolicy::new(
            vec![],
            vec![
                "https://mcp.example.com".into(),
                "http://localhost:*".into(),
            ],
        );
        assert!(p.origin_allowed("https://mcp.example.com"));
        assert!(!p.origin_allowed("https://mcp.example.com:8443"));
        assert!(p.origin_allowed("http://localhost:6274"));
        assert!(p.origin_allowed("http://localhost"));
        assert!(!p.origin_allowed("http://localhost.evil.com"));
        assert!(!p.origin_allowed("http://evil.example.com"));
        assert!(!p.origin_allowed("null"));
    }
}
