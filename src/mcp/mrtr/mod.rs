//! Multi-round-trip requests (MCP 2026-07-28, SEP-2322) for calls that
//! reach upstreams on 2025 revisions.
//!
//! A 2026-07-28 request (one whose `_meta` names a revision without
//! `initialize`) of `tools/call`, `prompts/get` or `resources/read` runs
//! its upstream call on its own, with an asker (`crate::gateway::input`)
//! in place of a client session. When the upstream asks the client
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`), the
//! client gets an `InputRequiredResult`: the questions as `inputRequests`
//! and a `requestState` naming the call, which stays pending here. The
//! client's retry (same method, name and arguments, with `inputResponses`
//! and the `requestState`) answers the upstream's waiting requests and
//! gets the final result, or the next `InputRequiredResult`.
//!
//! - The `requestState` is signed, bound to the caller (owner and client)
//!   and to the request, and expires with the pending call
//!   (`mcpgate_core::mcp::request_state`). Each round is handed out once:
//!   a replay, another user's state, a changed or expired one get `-32602`
//!   and leave the pending call alone.
//! - Capabilities are those the request declares in
//!   `_meta["io.modelcontextprotocol/clientCapabilities"]` (SEP-2575). An
//!   upstream request needing an undeclared one is not put to the client:
//!   the upstream gets `-32021`, and if the call then fails, so does the
//!   client, with `data.requiredCapabilities` (HTTP 400, set by rmcp).
//! - A request without `requestState` starts a new call; `inputResponses`
//!   it carries answer the upstream's questions whose keys they name, as
//!   they arrive (a client may answer in advance; unknown keys are
//!   ignored, a malformed answer is `-32602`).
//! - On a connection the gateway shares between users, the relay relates
//!   an upstream's request to the most recent call in flight, and refuses
//!   it when calls of several users are in flight
//!   (`relay::RelayState::origin`). A pending call stays in flight: while
//!   it waits, the same user's other calls are served as usual, and
//!   another user's calls that ask the client on that connection are
//!   refused (put upstreams that ask in `isolation = "per_user"`).
//!   Stateless requests have no session; all of one owner count as one
//!   ([`Mrtr::session_for`]).
//! - Complete results are shaped as on the direct path
//!   (`super::results`: `resultType`, caching hints); log messages follow
//!   the request's `logLevel` (`relay::LogFilter`).
//!
//! Pending calls are kept in this instance's memory
//! ([`crate::gateway::input::PendingCalls`]); the state names the
//! instance, and a retry that reaches another instance is handed to it
//! ([`remote`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mcpgate_core::crypto::random_b64;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::mcp::request_state::{self, Binding, StateClaims, StateKey};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    InputRequiredResult, InputResponses, ProgressToken, ReadResourceRequestParams,
    ReadResourceResponse, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::handler::{call_any_tool, caller_of};
use super::results;
use super::tools::Tools;
use crate::cluster::Cluster;
use crate::gateway::input::{self, Limits, Pending, PendingCalls, Step};
use crate::gateway::relay::{Downstream, LogFilter};
use crate::gateway::{Call, Gateway};

mod remote;

pub use remote::start_forwarding;

/// What a pending call ends with.
pub type Outcome = Result<ServerResult, McpError>;

/// Session numbers of stateless owners start here, far above those of
/// Streamable HTTP sessions (`handler::SESSIONS`, counting from 1).
const FIRST_SESSION: u64 = 1 << 62;

/// Whether `context` is a request of a revision without sessions
/// (2026-07-28 and later), whose client is asked through results.
pub fn applies(context: &RequestContext<RoleServer>) -> bool {
    context
        .meta
        .protocol_version()
        .is_some_and(|v| !v.has_initialize())
}

/// The pending calls of this instance and what signs their states.
pub struct Mrtr {
    calls: PendingCalls<Outcome>,
    key: StateKey,
    /// This instance, the others, and the clock.
    cluster: Arc<Cluster>,
    sessions: Mutex<HashMap<String, u64>>,
    next_session: AtomicU64,
}

/// A retried request, as one instance hands it to another (`remote`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// `tools/call`, `prompts/get` or `resources/read`.
    pub method: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_responses: Option<InputResponses>,
    pub request_state: String,
}

/// The request being served, as far as the state is concerned.
pub struct What<'a> {
    pub method: &'static str,
    /// Tool or prompt name, or resource URI.
    pub name: &'a str,
    pub arguments: Option<&'a Value>,
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
    /// Set when the call may go on as a task (`crate::tasks`).
    pub escalate: Option<Escalation>,
}

/// What makes a call that neither ended nor asked the client within
/// `after` a task (SEP-2663: a tool may gather input by multi-round-trip
/// requests, then go on asynchronously): `into_task` takes the running
/// call over and answers the `CreateTaskResult`. (A retry forwarded to
/// another instance is not escalated: it runs to its result or next
/// question.)
pub struct Escalation {
    pub after: std::time::Duration,
    #[allow(clippy::type_complexity)]
    pub into_task: Box<
        dyn FnOnce(
                Pending<Outcome>,
            ) -> futures::future::BoxFuture<
                'static,
                Result<rmcp::model::CreateTaskResult, McpError>,
            > + Send,
    >,
}

fn invalid_state(why: &str) -> McpError {
    McpError::invalid_params(format!("invalid requestState: {why}"), None)
}

impl Mrtr {
    pub fn new(server_key: &[u8], cluster: Arc<Cluster>, limits: Limits) -> Self {
        Self {
            calls: PendingCalls::new(limits),
            key: StateKey::derive(server_key),
            cluster,
            sessions: Mutex::default(),
            next_session: AtomicU64::new(FIRST_SESSION),
        }
    }

    /// Calls waiting for their client's input on this instance.
    pub fn pending(&self) -> usize {
        self.calls.len()
    }

    /// The downstream session number all stateless calls of `owner` share
    /// (see the module documentation).
    fn session_for(&self, owner: &str) -> u64 {
        let Ok(mut s) = self.sessions.lock() else {
            return self.next_session.fetch_add(1, Ordering::Relaxed);
        };
        *s.entry(owner.to_string())
            .or_insert_with(|| self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// Serves one request: starts the call with `start` (no state) or
    /// continues the pending call the state names, and answers with its
    /// result or an `InputRequiredResult`.
    pub async fn serve<F, Fut>(
        &self,
        what: What<'_>,
        context: &RequestContext<RoleServer>,
        start: F,
    ) -> Outcome
    where
        F: FnOnce(Caller, Downstream, Option<ProgressToken>, CancellationToken) -> Fut,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let caller = caller_of(&context.extensions).ok_or_else(|| {
            McpError::invalid_request("the request carries no authenticated caller", None)
        })?;
        if let Some(token) = what.request_state {
            let retry = Retry {
                method: what.method.to_string(),
                name: what.name.to_string(),
                arguments: what.arguments.cloned(),
                input_responses: what.input_responses,
                request_state: token,
            };
            return tokio::select! {
                r = self.resume(&caller, retry, true, what.escalate) => r,
                _ = context.ct.cancelled() => {
                    Err(McpError::internal_error("the request was cancelled", None))
                }
            };
        }
        let owner = caller.owner();
        let binding = Binding {
            owner: &owner,
            client_id: caller.client_id.as_str(),
            method: what.method,
            name: what.name,
            arguments: what.arguments,
        };
        let now = self.cluster.clock.now();
        let (asker, mut inbox) = input::channel(context.client_capabilities());
        if let Some(r) = what.input_responses {
            // Nothing is asked yet: all are kept as answers in advance.
            inbox.deliver(r)?;
        }
        let d = Downstream {
            session: self.session_for(&owner),
            owner: Some(owner.clone()),
            link: crate::mcp::client_link::of_request(context),
            request: Some(context.id.clone()),
            // Served inline (`crate::mcp::inline::stateless`), its progress
            // and log messages go on its response through this stream; else
            // through `link`, rmcp's peer for this one request.
            inline: context
                .extensions
                .get::<crate::mcp::inline::reply::RequestStream>()
                .cloned(),
            input: Some(asker),
            per_request: true,
            logs: LogFilter::of_request(true, context.meta.log_level()),
        };
        let ct = CancellationToken::new();
        // The call runs in this request's trace (its client span to the
        // upstream a child of the request's span), also when it outlives
        // the request as a task.
        let done = tokio::spawn(opentelemetry::context::FutureExt::with_context(
            start(
                caller.clone(),
                d,
                context.meta.get_progress_token(),
                ct.clone(),
            ),
            opentelemetry::Context::current(),
        ));
        let pending = Pending::new(inbox, done, ct);
        tokio::select! {
            r = self.step(pending, random_b64::<16>(), &caller, &binding, now, what.escalate) => r,
            _ = context.ct.cancelled() => {
                Err(McpError::internal_error("the request was cancelled", None))
            }
        }
    }

    /// Continues the pending call `retry.request_state` names, here or (if
    /// `may_forward`) on the instance that holds it (`remote`).
    pub async fn resume(
        &self,
        caller: &Caller,
        retry: Retry,
        may_forward: bool,
        escalate: Option<Escalation>,
    ) -> Outcome {
        let owner = caller.owner();
        let binding = Binding {
            owner: &owner,
            client_id: caller.client_id.as_str(),
            method: &retry.method,
            name: &retry.name,
            arguments: retry.arguments.as_ref(),
        };
        let now = self.cluster.clock.now();
        let claims =
            request_state::open(&self.key, &retry.request_state, &binding, now).map_err(|e| {
                tracing::warn!(
                    event = e.event(),
                    user = ?caller.label(),
                    method = ?retry.method,
                    name = ?retry.name,
                    "a requestState was refused"
                );
                invalid_state(&e.to_string())
            })?;
        if claims.instance != self.cluster.instance_id {
            if may_forward && self.cluster.shared() {
                return remote::forward(self, caller, &retry, &claims.instance).await;
            }
            return Err(invalid_state("its request is pending on another instance"));
        }
        let mut p = self
            .calls
            .take(&claims.call, &owner, claims.round)
            .map_err(|_| {
                tracing::info!(
                    event = "request_state_not_pending",
                    user = ?caller.label(),
                    "a requestState names no pending round (answered already, or expired)"
                );
                invalid_state("it was answered already, or its request is no longer pending")
            })?;
        if let Some(r) = retry.input_responses.clone()
            && let Err(e) = p.inbox.deliver(r)
        {
            // The same state stays good for a corrected retry.
            let _ = self.calls.park(&claims.call, &owner, p);
            return Err(e);
        }
        self.step(p, claims.call, caller, &binding, now, escalate)
            .await
    }

    /// Runs `pending` until it ends or asks; parks it (as call `id`) and
    /// answers with an `InputRequiredResult` if it asks.
    async fn step(
        &self,
        mut pending: Pending<Outcome>,
        id: String,
        caller: &Caller,
        binding: &Binding<'_>,
        now: i64,
        escalate: Option<Escalation>,
    ) -> Outcome {
        let after = escalate
            .as_ref()
            .map_or(std::time::Duration::MAX, |e| e.after);
        let step = tokio::select! {
            s = pending.wait() => s,
            _ = tokio::time::sleep(after), if escalate.is_some() => {
                pending.inbox.forget_early();
                let Some(e) = escalate else {
                    return Err(McpError::internal_error("no escalation", None));
                };
                return (e.into_task)(pending).await.map(ServerResult::CreateTaskResult);
            }
        };
        pending.inbox.forget_early();
        match step {
            Step::Done(r) => finish(r, &pending.inbox.refused()),
            Step::Invalid(e) => Err(e),
            Step::Input(questions) => {
                pending.round += 1;
                let ttl = i64::try_from(self.calls.limits().ttl.as_secs()).unwrap_or(i64::MAX);
                let claims = StateClaims {
                    call: id.clone(),
                    round: pending.round,
                    instance: self.cluster.instance_id.clone(),
                    expires_at: now.saturating_add(ttl),
                };
                let state = request_state::seal(&self.key, &claims, binding);
                self.calls.park(&id, binding.owner, pending).map_err(|_| {
                    tracing::warn!(event = "input_pending_full", user = ?caller.label(), "too many calls wait for input");
                    McpError::internal_error(
                        "too many requests are waiting for input; answer or abandon some first",
                        None,
                    )
                })?;
                Ok(ServerResult::InputRequiredResult(InputRequiredResult::new(
                    Some(questions),
                    Some(state),
                )))
            }
        }
    }

    pub async fn call_tool(
        &self,
        tools: Arc<Tools>,
        gateway: Arc<Gateway>,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        escalate: Option<Escalation>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        let args = request.arguments;
        let bound = args.clone().map(Value::Object);
        let what = What {
            method: "tools/call",
            name: &name,
            arguments: bound.as_ref(),
            input_responses: request.input_responses,
            request_state: request.request_state,
            escalate,
        };
        let tool = name.clone();
        let r = self
            .serve(what, context, move |caller, d, progress, ct| async move {
                let call = Call {
                    caller: &caller,
                    downstream: Some(d),
                    progress,
                    ct,
                };
                match call_any_tool(&tools, &gateway, &call, &tool, args).await {
                    Ok(r) => Ok(ServerResult::CallToolResult(r)),
                    Err(e) => Err(e.into_mcp()),
                }
            })
            .await?;
        match r {
            ServerResult::CallToolResult(r) => Ok(CallToolResponse::Complete(results::tool(r))),
            ServerResult::InputRequiredResult(r) => Ok(CallToolResponse::InputRequired(r)),
            ServerResult::CreateTaskResult(r) => Ok(CallToolResponse::Task(r)),
            other => Err(unexpected("tools/call", &other)),
        }
    }

    pub async fn get_prompt(
        &self,
        gateway: Arc<Gateway>,
        request: GetPromptRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let name = request.name.clone();
        let args = request.arguments;
        let bound = args.clone().map(Value::Object);
        let what = What {
            method: "prompts/get",
            name: &name,
            arguments: bound.as_ref(),
            input_responses: request.input_responses,
            request_state: request.request_state,
            escalate: None,
        };
        let prompt = name.clone();
        let r = self
            .serve(what, context, move |caller, d, progress, ct| async move {
                let call = Call {
                    caller: &caller,
                    downstream: Some(d),
                    progress,
                    ct,
                };
                gateway
                    .get_prompt(&call, &prompt, args)
                    .await
                    .unwrap_or_else(|| {
                        Err(McpError::invalid_params(
                            format!("no prompt named {prompt:?}"),
                            None,
                        ))
                    })
                    .map(ServerResult::GetPromptResult)
            })
            .await?;
        match r {
            ServerResult::GetPromptResult(r) => Ok(GetPromptResponse::Complete(results::prompt(r))),
            ServerResult::InputRequiredResult(r) => Ok(GetPromptResponse::InputRequired(r)),
            other => Err(unexpected("prompts/get", &other)),
        }
    }

    pub async fn read_resource(
        &self,
        gateway: Arc<Gateway>,
        request: ReadResourceRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.clone();
        let what = What {
            method: "resources/read",
            name: &uri,
            arguments: None,
            input_responses: request.input_responses,
            request_state: request.request_state,
            escalate: None,
        };
        let target = uri.clone();
        let r = self
            .serve(what, context, move |caller, d, progress, ct| async move {
                let call = Call {
                    caller: &caller,
                    downstream: Some(d),
                    progress,
                    ct,
                };
                gateway
                    .read_resource(&call, &target)
                    .await
                    .map(ServerResult::ReadResourceResult)
            })
            .await?;
        match r {
            ServerResult::ReadResourceResult(r) => {
                Ok(ReadResourceResponse::Complete(results::read(r, true)))
            }
            ServerResult::InputRequiredResult(r) => Ok(ReadResourceResponse::InputRequired(r)),
            other => Err(unexpected("resources/read", &other)),
        }
    }
}

fn unexpected(method: &str, r: &ServerResult) -> McpError {
    McpError::internal_error(
        format!("{method} ended with an unexpected result: {r:?}"),
        None,
    )
}

/// The call's outcome as the client gets it: a call that failed after the
/// client was found lacking a capability the upstream asked for fails with
/// `-32021` naming it.
fn finish(r: Result<Outcome, tokio::task::JoinError>, refused: &[&'static str]) -> Outcome {
    let r = r.unwrap_or_else(|e| {
        Err(McpError::internal_error(
            format!("the call ended abnormally: {e}"),
            None,
        ))
    });
    let failed = match &r {
        Err(_) => true,
        Ok(ServerResult::CallToolResult(c)) => c.is_error == Some(true),
        Ok(_) => false,
    };
    if failed && !refused.is_empty() {
        return Err(input::missing_capabilities(refused.iter().copied()));
    }
    r
}
