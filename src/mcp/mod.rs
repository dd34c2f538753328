//! The protected MCP endpoint.
//!
//! - [`gate`]: Origin/Host checks and the bearer-token gate on every route.
//! - [`sessions`]: Streamable HTTP sessions bound to the user who made them.
//! - [`handler`]: the rmcp `ServerHandler` all transports share.
//! - [`calls`]: the tools a caller may see and call, built-in or upstream.
//! - [`inline`]: requests of established Streamable HTTP sessions, served
//!   in the HTTP task instead of through rmcp's session worker.
//! - [`listen`]: `subscriptions/listen` streams (2026-07-28).
//! - [`tools`]: the tool registry (built-in tools).
//! - [`sse`]: the legacy HTTP+SSE transport (2024-11-05), written here.
//! - [`streams`]: open event streams end when their token is revoked or expires.
//! - [`param_headers`]: `Mcp-Param-*` headers checked against the body
//!   (2026-07-28).
//! - [`results`]: `resultType` and caching hints on results (2026-07-28).
//! - [`rest`]: the REST tool routes, `GET /tools` and `POST /tools/{name}`.
//! - [`scope_gate`]: 403 `insufficient_scope` for calls needing a scope the
//!   token lacks (step-up, MCP 2025-11-25), on every transport.
//! - [`mrtr`]: multi-round-trip requests of 2026-07-28 clients
//!   (`InputRequiredResult`) for upstream calls that ask the client.
//! - [`message`]: reading a POSTed message: body limits (413), JSON-RPC
//!   parse errors (400, `-32700`).
//! - [`parse`]: a client's JSON-RPC message, `tools/call` and `tools/list`
//!   parsed as such without rmcp's trial of every request type.
//! - [`manifest`]: the public manifest at `/.well-known/mcp/manifest.json`.
//! - [`health`]: the public `/healthz`, the state of the server and its upstreams.
//!
//! Streamable HTTP (2025-03-26 to 2026-07-28) at `/v1/ai/mcp` is rmcp's
//! `StreamableHttpService`, mounted behind the gate, with [`inline`] in
//! front of it for the requests of established sessions. With several instances
//! on one database (`crate::cluster`, shared mode) it gets a session store
//! in the database, so that any instance can continue a session.

pub mod answers;
pub mod calls;
pub mod client_link;
pub mod gate;
pub mod handler;
pub mod health;
pub mod in_flight;
pub mod inline;
pub mod listen;
pub mod manifest;
pub mod message;
pub mod mrtr;
pub mod param_headers;
pub mod parse;
pub mod peers;
pub mod rest;
pub mod results;
pub mod scope_gate;
pub mod sessions;
pub mod spans;
pub mod sse;
pub mod standalone;
pub mod streams;
pub mod tools;

#[cfg(test)]
pub(crate) mod envelope_proptests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::http::AppState;
use gate::OriginPolicy;
use handler::McpHandler;
use tools::Tools;

/// Largest request body on the MCP routes.
pub const MAX_MCP_BODY_BYTES: usize = 4 * 1024 * 1024;

pub struct McpState {
    pub tools: Arc<Tools>,
    pub gateway: Arc<crate::gateway::Gateway>,
    pub server_name: String,
    pub base_path: String,
    /// `allowed_hosts`, `allowed_origins` (a reload may replace it).
    pub origin_policy: Arc<crate::live::Live<OriginPolicy>>,
    pub session_idle: Duration,
    /// Every open event stream with nothing to send carries a keep-alive
    /// comment this often (`event_stream_keep_alive`).
    pub keep_alive: Duration,
    pub sse: sse::SseSessions,
    /// Cancelled at shutdown: ends SSE streams and rmcp sessions.
    pub cancel: CancellationToken,
    /// The other instances, if any, and the store the transports share.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// The Streamable HTTP sessions of this instance ([`inline`]).
    pub inline: Arc<inline::registry::InlineSessions>,
    /// The ended peers their handler contexts get ([`peers`]).
    pub peers: peers::ClientPeers,
    /// What the stateless 2026-07-28 requests served inline share.
    pub stateless: inline::stateless::Stateless,
    /// The open event streams, ended with their token ([`streams`]).
    pub streams: Arc<streams::OpenStreams>,
    /// Tasks (SEP-2663) run for the clients ([`crate::tasks`]).
    pub tasks: Arc<crate::tasks::Tasks>,
    /// Calls of 2026-07-28 clients waiting for input ([`mrtr`]).
    pub mrtr: Arc<mrtr::Mrtr>,
    /// The metadata URLs step-up challenges name ([`scope_gate`]).
    pub challenge_urls: scope_gate::ChallengeUrls,
}

impl McpState {
    /// Starts what the transports need from the other instances (shared
    /// mode): closing sessions deleted elsewhere, taking SSE messages
    /// queued elsewhere, the SSE heartbeat. Ends at shutdown.
    pub fn start_cluster_tasks(self: &Arc<Self>) {
        if !self.cluster.shared() {
            return;
        }
        mrtr::start_forwarding(self.mrtr.clone(), self.cancel.clone());
        sessions::follow_closures(
            self.cluster.bus.clone(),
            self.inline.clone(),
            self.cancel.clone(),
        );
        sse::start_cluster_tasks(self);
    }

    /// Ends the Streamable HTTP sessions unused for the idle timeout
    /// (`mcp_session_idle_timeout`), checking every quarter of it (at most
    /// every 30 s), until shutdown.
    pub fn start_session_sweeper(self: &Arc<Self>) {
        let every =
            (self.session_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let weak = Arc::downgrade(self);
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(mcp) = weak.upgrade() else { return };
                let ended = mcp.inline.sweep(mcp.session_idle);
                if ended > 0 {
                    tracing::debug!(sessions = ended, "idle Streamable HTTP sessions ended");
                }
            }
        });
    }
}

/// CORS on the MCP routes, including their 401s (browser-based clients
/// such as MCP Inspector must read `WWW-Authenticate` and `Mcp-Session-Id`).
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-method"),
            HeaderName::from_static("mcp-name"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .max_age(Duration::from_secs(86_400))
}

/// rmcp's Streamable HTTP service behind an `Arc`: axum clones a route's
/// service for every request, and cloning rmcp's clones its configuration
/// (a cancellation token among it, whose clone takes a lock), even for the
/// requests [`inline`] serves without it. (For the same reason the
/// middleware are few: [`gate::guard`] and [`sessions::bind_to_user`],
/// which hands on to [`inline::dispatch`].)
#[derive(Clone)]
struct Shared(Arc<StreamableHttpService<McpHandler, LocalSessionManager>>);

impl tower::Service<axum::extract::Request> for Shared {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            Ok(axum::response::IntoResponse::into_response(
                service.handle(req).await,
            ))
        })
    }
}

/// The MCP routes (below the base path), gated.
pub fn routes(app: &AppState) -> Router<AppState> {
    let mcp = app.mcp.clone();
    let mut config = StreamableHttpServerConfig::default()
        // Host and Origin are checked by `gate::check_origin` for every route.
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_cancellation_token(mcp.cancel.child_token())
        .with_max_request_body_bytes(MAX_MCP_BODY_BYTES)
        // Stateless (2026-07-28) requests get their answer as one JSON body
        // when the handler sends nothing before it; a request that reports
        // progress or logs first is answered as an event stream, so nothing
        // is lost. Requests in a session are unaffected (always a stream).
        .with_json_response(true);
    // rmcp's GET streams and the event streams of the requests it serves.
    config.sse_keep_alive = Some(mcp.keep_alive);
    let tools = mcp.tools.clone();
    let gateway = mcp.gateway.clone();
    let name = mcp.server_name.clone();
    let tasks = mcp.tasks.clone();
    let mrtr = mcp.mrtr.clone();
    let streamable = StreamableHttpService::new(
        move || {
            Ok(McpHandler::new(tools.clone(), gateway.clone(), &name)
                .with_tasks(tasks.clone())
                .with_mrtr(mrtr.clone()))
        },
        // Sessions are mcpgate's ([`inline`]): rmcp's manager never holds one.
        Arc::new(LocalSessionManager::default()),
        config,
    );

    let streamable = Router::new()
        .route_service("/v1/ai/mcp", Shared(Arc::new(streamable)))
        .layer(from_fn_with_state(mcp.clone(), sessions::bind_to_user));
    let others: Router<AppState> = Router::new()
        .route("/sse", get(sse::connect))
        .route("/v1/ai/mcp/sse", get(sse::connect))
        .route("/messages", post(sse::message))
        .route("/messages/", post(sse::message))
        .route("/v1/ai/mcp/messages", post(sse::message))
        .route("/v1/ai/mcp/messages/", post(sse::message))
        .route("/tools", get(rest::list))
        .route("/tools/{name}", post(rest::call))
        .with_state(mcp.clone());
    Router::new()
        .merge(streamable)
        .merge(others)
        .layer(from_fn_with_state(
            Arc::new(gate::Gate {
                mcp: mcp.clone(),
                auth: app.auth.clone(),
            }),
            gate::guard,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_MCP_BODY_BYTES))
        .layer(cors())
}
