//! What the handler reads from a request's context and builds from it:
//! the caller the gate put there, whether the request is of the stateless
//! 2026-07-28 revision, the page of a list it asks for, its span
//! (`super::super::spans`), the `Call` it makes to the gateway, and the
//! `initialize` of a session.

use axum::http::request::Parts;
use mcpgate_core::mcp::bearer::Caller;
use rmcp::model::{
    Extensions, InitializeRequestParams, InitializeResult, PaginatedRequestParams, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::{McpHandler, PAGE_SIZE};
use crate::gateway::Call;
use crate::gateway::relay::{Downstream, LogFilter};
use crate::mcp::client_link;
use crate::mcp::inline::reply::RequestStream;
use crate::mcp::spans::{self, Target};
use crate::tasks::Tasks;
use crate::telemetry::traces::ServerSpan;

impl McpHandler {
    pub(super) fn call<'a>(
        &self,
        caller: &'a Caller,
        context: &RequestContext<RoleServer>,
    ) -> Call<'a> {
        let per_request = is_per_request(context);
        Call {
            caller,
            downstream: Some(Downstream {
                session: self.session,
                owner: Some(caller.owner()),
                link: client_link::of_request(context),
                request: Some(context.id.clone()),
                inline: context.extensions.get::<RequestStream>().cloned(),
                input: None,
                per_request,
                logs: LogFilter::of_request(per_request, context.meta.log_level()),
            }),
            progress: context.meta.get_progress_token(),
            ct: context.ct.clone(),
        }
    }
}

/// Whether a request is of the 2026-07-28 revision or later (no session:
/// everything it needs is in its `_meta`).
pub(super) fn is_per_request(context: &RequestContext<RoleServer>) -> bool {
    client_link::version_of(context)
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

impl McpHandler {
    /// The server span of a request (`super::spans`).
    pub(super) fn span(
        &self,
        method: &str,
        target: Target<'_>,
        context: &RequestContext<RoleServer>,
    ) -> ServerSpan {
        spans::request_span(self.gateway.tracer(), method, target, context)
    }

    pub(super) fn notification_span(
        &self,
        method: &str,
        context: &NotificationContext<RoleServer>,
    ) -> Option<ServerSpan> {
        spans::notification_span(self.gateway.tracer(), method, &context.extensions)
    }

    /// A notification of a session without an rmcp service (legacy SSE,
    /// `crate::mcp::sse`), which cannot make rmcp's `NotificationContext`:
    /// only its span, which is all the handler does with those it gets
    /// from rmcp but `notifications/initialized` of a Streamable HTTP
    /// session.
    pub async fn observe_notification(&self, method: &str, extensions: &Extensions) {
        let span = spans::notification_span(self.gateway.tracer(), method, extensions);
        spans::traced_notification(span, async {}).await
    }

    pub(super) fn initialize_inner(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        // On the session's own link: a session without an rmcp service
        // may share its context's peer with other sessions.
        let link = client_link::of_request(&context);
        link.set_client_info(request.clone());
        let result = self.negotiate_initialize(&request)?;
        // Told when a reload changes what this session may see.
        if let Ok(caller) = require_caller(&context) {
            self.gateway.sessions().add(caller, link);
        }
        Ok(result)
    }

    pub(super) fn tasks(&self) -> Result<&Arc<Tasks>, McpError> {
        self.tasks
            .as_ref()
            .ok_or_else(McpError::method_not_found::<rmcp::model::GetTaskMethod>)
    }
}

/// The authenticated caller of a request, as put there by the gate.
pub fn caller_of(ext: &Extensions) -> Option<Caller> {
    ext.get::<Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .or_else(|| ext.get::<Caller>())
        .cloned()
}

pub(super) fn require_caller(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    caller_of(&context.extensions).ok_or_else(|| {
        McpError::invalid_request("the request carries no authenticated caller", None)
    })
}

/// The result of a list method (`$result`: rmcp's paginated result type)
/// from all the caller may see: one [`page`] of `$all` and the next page's
/// cursor; a 2026-07-28 request (`is_per_request`) also gets the list's
/// cache hints (`results::list_hints`). Evaluates to
/// `Result<$result, McpError>`.
macro_rules! listed {
    ($result:ty, $all:expr, $request:expr, $context:expr) => {
        request::page($all, $request).map(|(items, next)| {
            let mut r = <$result>::with_all_items(items);
            r.next_cursor = next;
            if request::is_per_request($context) {
                (r.ttl_ms, r.cache_scope) = super::results::list_hints();
            }
            r
        })
    };
}
pub(super) use listed;

/// One page of a list, with the cursor of the next page (RFC-less: the
/// cursor is the offset, opaque to clients).
pub(super) fn page<T>(
    items: Vec<T>,
    request: Option<PaginatedRequestParams>,
) -> Result<(Vec<T>, Option<String>), McpError> {
    let start = match request.and_then(|r| r.cursor) {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| McpError::invalid_params(format!("invalid cursor {c:?}"), None))?,
    };
    let end = (start + PAGE_SIZE).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((
        items
            .into_iter()
            .skip(start)
            .take(end.saturating_sub(start))
            .collect(),
        next,
    ))
}

/// A `Call` for transports without an MCP session (REST).
pub fn sessionless_call(caller: &Caller) -> Call<'_> {
    Call {
        caller,
        downstream: None,
        progress: None,
        ct: CancellationToken::new(),
    }
}
