//! The gateway's calls as the rest of mcpgate makes them: each tool call,
//! `prompts/get` and `resources/read` is one audit record (`crate::audit`,
//! docs/audit.md) with the caller, the upstream, the name, the duration and
//! the outcome: `ok`; `error` (the upstream failed, or the tool answered
//! `isError`); `denied` (no tool or prompt of that name for this caller:
//! unknown, or on an upstream the caller may not use, `allowed_users`).
//! Every transport (Streamable HTTP, SSE, REST, stateless, tasks) reaches
//! upstreams through these methods, so none is missed. The record is
//! queued, never waited for.

use std::time::Instant;

use mcpgate_core::mcp::bearer::Caller;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, GetPromptResult, JsonObject, ReadResourceResult};

use super::{Call, Gateway};
use crate::audit::{Event, Kind, Outcome};

impl Gateway {
    /// Calls an upstream tool; `None` if no upstream serves that name.
    pub async fn call_tool(
        &self,
        call: &Call<'_>,
        name: &str,
        args: Option<JsonObject>,
    ) -> Option<Result<CallToolResult, McpError>> {
        if !self.audit.is_enabled() {
            return self.call_tool_unaudited(call, name, args, &mut None).await;
        }
        let started = Instant::now();
        let recorded_args = self.audit.wants_arguments().then(|| args.clone()).flatten();
        let mut upstream = None;
        let result = self
            .call_tool_unaudited(call, name, args, &mut upstream)
            .await;
        let outcome = match &result {
            Some(Ok(r)) if r.is_error == Some(true) => Outcome::Error,
            Some(Ok(_)) => Outcome::Ok,
            Some(Err(_)) => Outcome::Error,
            None => Outcome::Denied,
        };
        let mut event = self
            .event(Kind::ToolCall, outcome, call.caller, name, upstream)
            .duration(started.elapsed())
            .arguments(recorded_args.as_ref());
        if result.is_none() {
            event = self.why_unknown(event, call.caller, name);
        }
        self.audit.record(event);
        result
    }

    /// `prompts/get`; `None` if no upstream serves that name.
    pub async fn get_prompt(
        &self,
        call: &Call<'_>,
        name: &str,
        args: Option<JsonObject>,
    ) -> Option<Result<GetPromptResult, McpError>> {
        if !self.audit.is_enabled() {
            return self.get_prompt_unaudited(call, name, args, &mut None).await;
        }
        let started = Instant::now();
        let recorded_args = self.audit.wants_arguments().then(|| args.clone()).flatten();
        let mut upstream = None;
        let result = self
            .get_prompt_unaudited(call, name, args, &mut upstream)
            .await;
        let outcome = match &result {
            Some(Ok(_)) => Outcome::Ok,
            Some(Err(_)) => Outcome::Error,
            None => Outcome::Denied,
        };
        let mut event = self
            .event(
                Kind::PromptGet,
                outcome,
                call.caller,
                name,
                upstream.filter(|_| result.is_some()),
            )
            .duration(started.elapsed())
            .arguments(recorded_args.as_ref());
        if result.is_none() {
            event = self.why_unknown(event, call.caller, name);
        }
        self.audit.record(event);
        result
    }

    /// Reads a resource from the first upstream that serves its URI.
    pub async fn read_resource(
        &self,
        call: &Call<'_>,
        uri: &str,
    ) -> Result<ReadResourceResult, McpError> {
        if !self.audit.is_enabled() {
            return self.read_resource_unaudited(call, uri, &mut None).await;
        }
        let started = Instant::now();
        let mut upstream = None;
        let result = self.read_resource_unaudited(call, uri, &mut upstream).await;
        let outcome = match (&result, &upstream) {
            (Ok(_), _) => Outcome::Ok,
            // No upstream serves the URI.
            (Err(_), None) => Outcome::Denied,
            (Err(_), Some(_)) => Outcome::Error,
        };
        let mut event = self
            .event(Kind::ResourceRead, outcome, call.caller, uri, upstream)
            .duration(started.elapsed());
        if outcome == Outcome::Denied {
            event = event.detail("reason", "unknown_resource");
        }
        self.audit.record(event);
        result
    }

    fn event(
        &self,
        kind: Kind,
        outcome: Outcome,
        caller: &Caller,
        target: &str,
        upstream: Option<String>,
    ) -> Event {
        let event = Event::new(kind, outcome).caller(caller).target(target);
        match upstream {
            Some(u) => event.upstream(&u),
            None => event,
        }
    }

    /// Why no upstream served `name`: it belongs (by its prefix) to an
    /// upstream the caller may not use (`allowed_users`), or it is unknown.
    /// The caller is told the same either way; only the record differs.
    fn why_unknown(&self, event: Event, caller: &Caller, name: &str) -> Event {
        let upstreams = self.upstreams();
        let hidden = upstreams.iter().find(|u| {
            let prefix = u.cfg.prefix();
            !prefix.is_empty()
                && !u.cfg.allows_caller(caller)
                && name
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('_'))
        });
        match hidden {
            Some(u) => event.upstream(&u.cfg.name).detail("reason", "not_allowed"),
            None => event.detail("reason", "unknown"),
        }
    }
}
