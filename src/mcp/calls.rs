//! Tools as every transport sees them (Streamable HTTP and SSE sessions
//! through [`super::handler`], REST `/tools`, stateless 2026-07-28 and
//! multi-round-trip requests): the list a caller may see, the policy's
//! admission of a call, and the call itself, built-in or routed to an
//! upstream by the gateway. Each call is one audit record and one metric.

use std::collections::HashSet;

use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::policy::Kind;
use rmcp::model::{CallToolResult, JsonObject, Tool};

use super::tools::{ToolError, Tools};
use crate::audit::{Event, Kind as AuditKind, Outcome};
use crate::gateway::{Call, Gateway};
use crate::policy::Refusal;
use crate::telemetry::labels::{McpMethod, McpOutcome};

/// All tools the caller may use: built-in first, then the upstreams'
/// (`[[policy]]` filters both; a built-in's name stays taken when denied).
pub async fn all_tools(tools: &Tools, gateway: &Gateway, caller: &Caller) -> Vec<Tool> {
    let mut list = tools.list();
    let mut taken: HashSet<String> = list.iter().map(|t| t.name.to_string()).collect();
    list.retain(|t| gateway.access().allows(Kind::Tool, &t.name, caller));
    list.extend(gateway.list_tools(caller, &mut taken).await);
    list
}

/// Whether a call of tool `name` may run now (`[[policy]]`): a denied tool
/// is unknown; over the rate limit, `RateLimited`. A refusal is one audit
/// record (`denied`, reason `policy` or `rate_limited`).
pub fn admit_tool(gateway: &Gateway, caller: &Caller, name: &str) -> Result<(), ToolError> {
    match gateway.access().admit_tool(caller, name) {
        Ok(()) => Ok(()),
        Err(Refusal::Denied) => {
            gateway
                .audit()
                .policy_denied(AuditKind::ToolCall, caller, name, None, "policy");
            Err(ToolError::Unknown(name.to_string()))
        }
        Err(Refusal::Limited { retry_after }) => {
            gateway.audit().record(
                Event::new(AuditKind::ToolCall, Outcome::Denied)
                    .caller(caller)
                    .target(name)
                    .detail("reason", "rate_limited"),
            );
            Err(ToolError::RateLimited {
                tool: name.to_string(),
                retry_after,
            })
        }
    }
}

/// Calls a tool by its exposed name, built-in or upstream; either way the
/// call is one audit record (upstream calls: `gateway::audited`).
pub async fn call_any_tool(
    tools: &Tools,
    gateway: &Gateway,
    call: &Call<'_>,
    name: &str,
    args: Option<JsonObject>,
) -> Result<CallToolResult, ToolError> {
    admit_tool(gateway, call.caller, name)?;
    if tools.get(name).is_some() {
        return call_builtin(tools, gateway, call, name, args).await;
    }
    // The gateway counts the calls it routes (`Gateway::call_tool`).
    match gateway.call_tool(call, name, args).await {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(ToolError::Upstream(e.message.to_string())),
        None => {
            if let Some(m) = crate::telemetry::metrics::get() {
                // Never the name itself: clients choose it.
                m.mcp_request(
                    McpMethod::ToolsCall,
                    m.other.clone(),
                    m.none.clone(),
                    McpOutcome::UnknownTool,
                    std::time::Instant::now(),
                );
            }
            Err(ToolError::Unknown(name.to_string()))
        }
    }
}

/// A built-in tool's call, counted and audited as the gateway counts and
/// audits the calls it routes.
async fn call_builtin(
    tools: &Tools,
    gateway: &Gateway,
    call: &Call<'_>,
    name: &str,
    args: Option<JsonObject>,
) -> Result<CallToolResult, ToolError> {
    let started = std::time::Instant::now();
    let audit = gateway.audit();
    let recorded_args = if audit.is_enabled() && audit.wants_arguments() {
        args.clone()
    } else {
        None
    };
    let r = tools.call(name, args, call.caller).await;
    let ok = matches!(&r, Ok(r) if r.is_error != Some(true));
    if let Some(m) = crate::telemetry::metrics::get() {
        let outcome = match &r {
            Ok(_) if ok => McpOutcome::Ok,
            Ok(_) => McpOutcome::ToolError,
            Err(_) => McpOutcome::Error,
        };
        let tool = m.tools.intern(name);
        m.mcp_request(
            McpMethod::ToolsCall,
            tool,
            m.builtin.clone(),
            outcome,
            started,
        );
    }
    if audit.is_enabled() {
        audit.record(
            Event::new(
                AuditKind::ToolCall,
                if ok { Outcome::Ok } else { Outcome::Error },
            )
            .caller(call.caller)
            .target(name)
            .detail("builtin", true)
            .duration(started.elapsed())
            .arguments(recorded_args.as_ref()),
        );
    }
    r
}
