//! The gateway: the tools, resources and prompts of upstream MCP servers,
//! merged into the one MCP server each signed-in user sees.
//!
//! - [`config`]: `[[upstream]]` settings and their validation.
//! - [`env`]: the clean environment of stdio upstreams.
//! - `connect`: the `<prefix>_connect` tool of `auth = "oauth"` upstreams
//!   (`crate::upstream_oauth`), and disconnecting; `connection_news`: a
//!   connection made or ended on any instance, told to the user's sessions
//!   here (the cluster bus).
//! - [`upstream`]: one upstream's connections (shared or per user), their
//!   supervisor (restart with backoff) and status.
//! - `connector`: starting an upstream's child process or HTTP session
//!   and its client session; [`stdio`]: the transport of a child process,
//!   whose lane carries the gateway's requests without rmcp's service task
//!   (`sent`: a request in flight, on either path).
//! - [`relay`]: requests and notifications from an upstream, relayed to the
//!   right downstream session.
//! - `reload`: the upstream list in force, swapped by a configuration
//!   reload (only changed upstreams restart), and the `list_changed` it
//!   sends; [`sessions`]: the open sessions it tells.
//! - [`audited`]: tool calls, prompts and resource reads, each recorded in
//!   the audit log (`crate::audit`).
//! - [`sse_client`]: the legacy HTTP+SSE client transport, reading its
//!   event stream with [`sse_events`] (the WHATWG event-stream format).
//!
//! Naming: an upstream's tool `t` and prompt `p` appear as `<prefix>_t` and
//! `<prefix>_p` (the prefix defaults to the upstream's name; one upstream
//! may have an empty prefix). When two names collide, the first in
//! configuration order wins (built-in tools first) and the collision is
//! logged. Resource URIs are not renamed: a read goes to the upstream that
//! serves the URI. Upstreams never see the client's access token.
//!
//! Sampling, roots and logging are deprecated by the 2026-07-28 revision
//! (SEP-2577) but remain part of the revisions mcpgate serves, so the
//! gateway relays them (hence `allow(deprecated)` in this module).

#![allow(deprecated)]

mod access;
pub mod audited;
mod catalog;
pub mod config;
mod connect;
mod connection_news;
mod connector;
pub mod env;
pub mod identity;
pub mod input;
pub mod listen;
mod listening;
pub mod relay;
mod reload;
pub mod scopes;
mod sent;
pub mod sessions;
pub mod sse_client;
pub mod sse_events;
pub mod stdio;
pub mod trace_header;
pub mod upstream;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::join_all;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::policy::Kind;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, CompleteRequestParams, CompleteResult,
    JsonObject, ProgressToken, Reference, Request, ServerResult, SetLevelRequestParams, Tool,
};
use rmcp::service::PeerRequestOptions;
use tokio_util::sync::CancellationToken;

use crate::policy::Access;
use crate::telemetry::labels::{McpMethod, McpOutcome};
use access::no_completion;
use config::UpstreamConfig;
use relay::{Downstream, service_error};
use sent::Sent;
use upstream::{Conn, Status, Upstream};

/// JSON-RPC error code for an unknown resource (MCP spec).
const RESOURCE_NOT_FOUND: i32 = -32002;

/// The tool a user not connected to an `auth = "oauth"` upstream sees
/// instead of its tools: `<prefix>_connect` (`crate::upstream_oauth`).
pub const CONNECT_TOOL: &str = "connect";

/// Everything about one downstream request the gateway needs.
pub struct Call<'a> {
    pub caller: &'a Caller,
    pub downstream: Option<Downstream>,
    pub progress: Option<ProgressToken>,
    pub ct: CancellationToken,
}

pub struct Gateway {
    /// The upstreams in force; a reload swaps the list ([`reload`]).
    upstreams: RwLock<Arc<Vec<Arc<Upstream>>>>,
    cancel: CancellationToken,
    /// What new upstreams are built with on a reload.
    issuer: String,
    outbound: crate::outbound::OutboundSettings,
    /// The open sessions (Streamable HTTP and legacy SSE), told when the
    /// catalog changes on a reload ([`sessions`]).
    sessions: sessions::Sessions,
    /// The `subscriptions/listen` streams of this instance ([`listen`]).
    listen: Arc<listen::ListenHub>,
    /// The span exporter, when traces are on (`crate::telemetry::traces`).
    tracer: std::sync::OnceLock<crate::telemetry::traces::Tracer>,
    /// What calls need ([`scopes`]); the base scope alone until
    /// [`Gateway::with_scopes`]; a reload replaces it.
    scopes: RwLock<Arc<mcpgate_core::mcp::scopes::ScopeRequirements>>,
    /// `[[policy]]`: which tools, prompts and resources each caller may
    /// use (`crate::policy`). Denied items are filtered from every list and
    /// answered like unknown ones.
    access: Arc<Access>,
    /// Where tool calls, prompts and resource reads are recorded
    /// ([`audited`]).
    audit: crate::audit::Audit,
    /// Per-user OAuth to `auth = "oauth"` upstreams.
    oauth: upstream::OAuthSlot,
}

fn exposed(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

impl Gateway {
    /// Fails if an upstream's identity key cannot be loaded. `protected`:
    /// the variables stdio upstreams never inherit (see [`env`]).
    pub fn new(
        configs: Vec<UpstreamConfig>,
        cancel: CancellationToken,
        issuer: &str,
        protected: env::Protected,
        outbound: &crate::outbound::OutboundSettings,
    ) -> Result<Self, String> {
        let protected = Arc::new(protected);
        let listen = Arc::new(listen::ListenHub::default());
        let oauth: upstream::OAuthSlot = Arc::default();
        let upstreams = configs
            .into_iter()
            .map(|c| {
                Upstream::new(
                    c,
                    cancel.child_token(),
                    issuer,
                    protected.clone(),
                    outbound,
                    listen.clone(),
                    oauth.clone(),
                )
                .map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            upstreams: RwLock::new(Arc::new(upstreams)),
            cancel,
            issuer: issuer.to_string(),
            outbound: outbound.clone(),
            sessions: sessions::Sessions::default(),
            listen,
            tracer: std::sync::OnceLock::new(),
            scopes: RwLock::new(Arc::new(mcpgate_core::mcp::scopes::ScopeRequirements::new(
                mcpgate_core::domain::Scope::parse("mcp").map_err(|e| e.to_string())?,
            ))),
            access: Arc::new(Access::allow_all(Arc::new(crate::clock::SystemClock))),
            audit: crate::audit::Audit::disabled(),
            oauth,
        })
    }

    /// Records every tool call, prompt and resource read in `audit`.
    pub fn with_audit(mut self, audit: crate::audit::Audit) -> Self {
        self.audit = audit;
        self
    }

    /// The audit log the gateway records in.
    pub fn audit(&self) -> &crate::audit::Audit {
        &self.audit
    }

    /// Turns on spans for the requests served through this gateway.
    pub fn set_tracer(&self, tracer: crate::telemetry::traces::Tracer) {
        let _ = self.tracer.set(tracer);
    }

    /// The span exporter, if traces are on.
    pub fn tracer(&self) -> Option<&crate::telemetry::traces::Tracer> {
        self.tracer.get()
    }

    /// Starts shared upstreams and the idle reaper for per-user ones.
    pub fn start(self: &Arc<Self>) {
        for u in self.upstreams().iter() {
            u.start_shared();
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => me.upstreams().iter().for_each(|u| u.reap_idle()),
                    _ = me.cancel.cancelled() => break,
                }
            }
        });
    }

    pub fn is_empty(&self) -> bool {
        self.upstreams().is_empty()
    }

    pub fn status(&self) -> Vec<Status> {
        self.upstreams().iter().map(|u| u.status()).collect()
    }

    /// Connections of every visible upstream that is available (others are
    /// logged and skipped, so one broken upstream never hides the rest).
    async fn conns(&self, caller: &Caller) -> Vec<(Arc<Upstream>, Conn)> {
        let mut ups: Vec<Arc<Upstream>> = Vec::new();
        for u in self.visible(caller) {
            if u.usable_by(caller).await {
                ups.push(u.clone());
            }
        }
        let results = join_all(ups.iter().map(|u| u.conn_for(caller))).await;
        ups.into_iter()
            .zip(results)
            .filter_map(|(u, r)| match r {
                Ok(c) => Some((u, c)),
                Err(e) => {
                    tracing::warn!(upstream = %u.cfg.name, error = %e.message, "upstream skipped");
                    None
                }
            })
            .collect()
    }

    async fn bounded<T>(
        up: &Upstream,
        fut: impl std::future::Future<Output = Result<T, rmcp::service::ServiceError>>,
    ) -> Result<T, McpError> {
        match tokio::time::timeout(up.cfg.request_timeout, fut).await {
            Ok(r) => r.map_err(|e| service_error(&up.cfg.name, e)),
            Err(_) => Err(McpError::internal_error(
                format!(
                    "upstream {} did not answer within {} s",
                    up.cfg.name,
                    up.cfg.request_timeout.as_secs()
                ),
                None,
            )),
        }
    }

    // ---- tools ----

    /// The merged tool list; `taken` holds names already used (built-ins).
    pub async fn list_tools(&self, caller: &Caller, taken: &mut HashSet<String>) -> Vec<Tool> {
        let mut out = Vec::new();
        for up in self.visible(caller) {
            if up.cfg.is_oauth() && caller.user().is_some() && !up.usable_by(caller).await {
                let tool = connect::connect_tool(&up.cfg);
                if taken.insert(tool.name.to_string()) {
                    out.push(tool);
                }
            }
        }
        let conns = self.conns(caller).await;
        let lists = join_all(
            conns
                .iter()
                .map(|(u, c)| Self::bounded(u, c.peer.list_all_tools())),
        )
        .await;
        for ((up, conn), list) in conns.iter().zip(lists) {
            let tools = match list {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(upstream = %up.cfg.name, error = %e.message, "tools/list failed");
                    continue;
                }
            };
            if let Ok(mut cache) = conn.tools.lock() {
                *cache = Some(tools.clone());
            }
            for mut t in tools {
                let name = exposed(up.cfg.prefix(), &t.name);
                if !self.access.allows(Kind::Tool, &name, caller) {
                    continue;
                }
                if !taken.insert(name.clone()) {
                    tracing::warn!(upstream = %up.cfg.name, tool = %name, "tool name collision: the earlier one wins");
                    continue;
                }
                t.name = name.into();
                out.push(t);
            }
        }
        out
    }

    /// Which upstream serves the exposed tool name, and its own name there.
    /// A prefixed name whose upstream is down is that upstream's error, not
    /// an unknown tool.
    async fn route_tool(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Option<Result<(Arc<Upstream>, Conn, String), McpError>> {
        // A denied tool is unknown (docs/policy.md).
        if !self.access.allows(Kind::Tool, name, caller) {
            return None;
        }
        for up in self.visible(caller) {
            let prefix = up.cfg.prefix();
            let own = if prefix.is_empty() {
                Some(name)
            } else {
                name.strip_prefix(prefix).and_then(|r| r.strip_prefix('_'))
            };
            let Some(own) = own else { continue };
            let conn = match up.conn_for(caller).await {
                Ok(c) => c,
                Err(_) if prefix.is_empty() => continue,
                Err(e) => return Some(Err(e)),
            };
            // Looked up in the cached list where it lies (a call used to
            // copy the whole list, schemas and all).
            let cached = conn
                .tools
                .lock()
                .ok()
                .and_then(|c| c.as_ref().map(|tools| tools.iter().any(|t| t.name == own)));
            let known = match cached {
                Some(known) => known,
                None => match Self::bounded(&up, conn.peer.list_all_tools()).await {
                    Ok(t) => {
                        let known = t.iter().any(|t| t.name == own);
                        if let Ok(mut c) = conn.tools.lock() {
                            *c = Some(t);
                        }
                        known
                    }
                    Err(_) => continue,
                },
            };
            if known {
                return Some(Ok((up, conn, own.to_string())));
            }
        }
        None
    }

    /// The upstream serving the tool of this exposed name, and the task
    /// support the tool declares (SEP-2663, see
    /// [`mcpgate_core::mcp::tasks::TaskSupport::of_tool`]); `None` if no
    /// upstream serves it.
    pub async fn tool_task_support(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Option<(String, mcpgate_core::mcp::tasks::TaskSupport)> {
        let (up, conn, own) = self.route_tool(caller, name).await?.ok()?;
        let json = {
            let tools = conn.tools.lock().ok()?;
            let tool = tools.as_ref()?.iter().find(|t| t.name == own)?;
            serde_json::to_value(tool).ok()?
        };
        Some((
            up.cfg.name.clone(),
            mcpgate_core::mcp::tasks::TaskSupport::of_tool(&json),
        ))
    }

    /// Calls an upstream tool; `None` if no upstream serves that name.
    /// `upstream` is set to the upstream it was routed to.
    async fn call_tool_unaudited(
        &self,
        call: &Call<'_>,
        name: &str,
        args: Option<JsonObject>,
        upstream: &mut Option<String>,
    ) -> Option<Result<CallToolResult, McpError>> {
        if let Some(result) = self.call_connect_tool(call, name).await {
            return Some(result);
        }
        let started = std::time::Instant::now();
        let (up, conn, own) = match self.route_tool(call.caller, name).await? {
            Ok(route) => route,
            Err(e) => {
                if let Some(m) = crate::telemetry::metrics::get() {
                    m.mcp_request(
                        McpMethod::ToolsCall,
                        m.other.clone(),
                        m.none.clone(),
                        McpOutcome::Error,
                        started,
                    );
                }
                return Some(Err(e));
            }
        };
        *upstream = Some(up.cfg.name.clone());
        if let Some(challenge) = self.lacking(call.caller, &up, Kind::Tool, name) {
            return Some(Err(scopes::insufficient(
                name,
                &call.caller.scope,
                &challenge,
            )));
        }
        let mut params = CallToolRequestParams::new(own);
        params.arguments = args;
        let req = ClientRequest::CallToolRequest(Request::new(params));
        let result = match self.send(&up, &conn, req, call).await {
            Ok(ServerResult::CallToolResult(r)) => Ok(r),
            Ok(other) => Err(McpError::internal_error(
                format!(
                    "upstream {} answered tools/call with an unexpected result: {other:?}",
                    up.cfg.name
                ),
                None,
            )),
            Err(e) => self.step_up_or(call, &up, e).await,
        };
        if let Some(m) = crate::telemetry::metrics::get() {
            // The name routed to a tool of the upstream's list: a catalog name.
            let outcome = match &result {
                Ok(r) if r.is_error == Some(true) => McpOutcome::ToolError,
                Ok(_) => McpOutcome::Ok,
                Err(_) => McpOutcome::Error,
            };
            m.mcp_request(
                McpMethod::ToolsCall,
                m.tools.intern(name),
                up.metric_name.clone(),
                outcome,
                started,
            );
        }
        Some(result)
    }

    /// Sends a request upstream ([`Self::send_once`]); an upstream's
    /// `InputRequiredResult` (2026-07-28) is answered by asking the client
    /// and the request sent again (`relay::rounds`).
    async fn send(
        &self,
        up: &Upstream,
        conn: &Conn,
        req: ClientRequest,
        call: &Call<'_>,
    ) -> Result<ServerResult, McpError> {
        let mut req = req;
        for _ in 0..relay::rounds::MAX_ROUNDS {
            match self.send_once(up, conn, req.clone(), call).await? {
                ServerResult::InputRequiredResult(r) => {
                    let (responses, state) =
                        relay::rounds::answer(call.downstream.as_ref(), r).await?;
                    req = relay::rounds::retry(&req, responses, state).ok_or_else(|| {
                        McpError::internal_error(
                            format!(
                                "upstream {} answered a request that takes no input with an InputRequiredResult",
                                up.cfg.name
                            ),
                            None,
                        )
                    })?;
                }
                other => return Ok(other),
            }
        }
        Err(McpError::internal_error(
            format!(
                "upstream {} still asked for input after {} rounds",
                up.cfg.name,
                relay::rounds::MAX_ROUNDS
            ),
            None,
        ))
    }

    /// Sends a request upstream with timeout, progress relay and
    /// cancellation (a downstream `notifications/cancelled` cancels it).
    async fn send_once(
        &self,
        up: &Upstream,
        conn: &Conn,
        req: ClientRequest,
        call: &Call<'_>,
    ) -> Result<ServerResult, McpError> {
        // The session is registered, and the progress token mapped, before the
        // upstream can act on the request: it may log, report progress or ask
        // the client at once.
        let started = std::time::Instant::now();
        // W3C Trace Context in `_meta` (SEP-414), for every transport.
        let trace = crate::telemetry::traces::upstream_call(
            req.method(),
            match &req {
                ClientRequest::CallToolRequest(r) => Some(r.params.name.as_ref()),
                _ => None,
            },
            &up.cfg.name,
        );
        let mut options = PeerRequestOptions::with_timeout(up.cfg.request_timeout);
        if let Some(t) = &trace {
            options = options.with_meta(t.meta.clone());
        }
        let ticket = conn.relay.begin(call.downstream.as_ref());
        let gate = conn.relay.hold_sending().await;
        let sent = match &conn.lane {
            Some(lane) => lane
                .send(req, options.meta, options.timeout)
                .await
                .map(Sent::Lane),
            None => conn
                .peer
                .send_cancellable_request(req, options)
                .await
                .map(Sent::Rmcp),
        };
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) => {
                conn.relay.end(ticket);
                if let Some(t) = trace {
                    t.end(false);
                }
                return Err(service_error(&up.cfg.name, e));
            }
        };
        let (id, upstream_token) = sent.ids();
        conn.relay.sent(ticket, id.clone());
        if let (Some(d), Some(tok)) = (&call.downstream, &call.progress) {
            conn.relay
                .map_progress(upstream_token.clone(), d.clone(), tok.clone());
        }
        drop(gate);
        let id_sent = id.clone();
        let canceller = sent.canceller();
        let result = tokio::select! {
            r = sent.answer() => r.map_err(|e| service_error(&up.cfg.name, e)),
            _ = call.ct.cancelled() => {
                canceller.cancel(id, "cancelled by the client").await;
                Err(McpError::internal_error("the request was cancelled", None))
            }
        };
        conn.relay.settle().await;
        conn.relay.unmap_progress(&upstream_token);
        conn.relay.answered(&id_sent);
        conn.relay.end(ticket);
        if let Some(t) = trace {
            t.end(result.is_ok());
        }
        if let Some(m) = crate::telemetry::metrics::get() {
            m.upstream_call(&up.metric_name, result.is_ok(), started);
        }
        result
    }

    /// `completion/complete`, routed by the prompt name or resource URI.
    pub async fn complete(
        &self,
        call: &Call<'_>,
        mut params: CompleteRequestParams,
    ) -> Result<CompleteResult, McpError> {
        if !self.completion_allowed(call.caller, &params.r#ref) {
            return Ok(no_completion());
        }
        match &mut params.r#ref {
            Reference::Prompt(p) => {
                let original = p.name.clone();
                for (up, own) in self.route_prompt(call.caller, &original) {
                    let conn = up.conn_for(call.caller).await?;
                    let mut attempt = params.clone();
                    if let Reference::Prompt(pp) = &mut attempt.r#ref {
                        pp.name = own;
                    }
                    match Self::bounded(&up, conn.peer.complete(attempt)).await {
                        Ok(r) => return Ok(r),
                        Err(e) if up.cfg.prefix().is_empty() => {
                            tracing::debug!(error = %e.message, "completion not served here");
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(McpError::invalid_params(
                    format!("no prompt named {original}"),
                    None,
                ))
            }
            _ => {
                let mut last = None;
                for (up, conn) in self.conns(call.caller).await {
                    match Self::bounded(&up, conn.peer.complete(params.clone())).await {
                        Ok(r) => return Ok(r),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    McpError::invalid_params("no upstream serves this resource", None)
                }))
            }
        }
    }

    /// `logging/setLevel`, passed to every available upstream of the caller.
    pub async fn set_level(&self, caller: &Caller, params: SetLevelRequestParams) {
        for (up, conn) in self.conns(caller).await {
            if let Err(e) = Self::bounded(&up, conn.peer.set_level(params.clone())).await {
                tracing::debug!(upstream = %up.cfg.name, error = %e.message, "logging/setLevel not accepted");
            }
        }
    }
}
