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

/// What one audited call became, for its record.
enum Verdict {
    Ok,
    /// The upstream failed, or the tool answered `isError`.
    Error,
    /// No tool or prompt of that name for this caller (the record says
    /// why: [`Gateway::why_unknown`]).
    UnknownName,
    /// No upstream serves the resource URI.
    UnknownResource,
}

impl Gateway {
    /// Calls an upstream tool; `None` if no upstream serves that name.
    pub async fn call_tool(
        &self,
        call: &Call<'_>,
        name: &str,
        args: Option<JsonObject>,
    ) -> Option<Result<CallToolResult, McpError>> {
        let recorded = self.recorded_arguments(args.as_ref());
        self.audited(
            Kind::ToolCall,
            call.caller,
            name,
            recorded,
            async |upstream| self.call_tool_unaudited(call, name, args, upstream).await,
            |result, _| match result {
                Some(Ok(r)) if r.is_error == Some(true) => Verdict::Error,
                Some(Ok(_)) => Verdict::Ok,
                Some(Err(_)) => Verdict::Error,
                None => Verdict::UnknownName,
            },
        )
        .await
    }

    /// `prompts/get`; `None` if no upstream serves that name.
    pub async fn get_prompt(
        &self,
        call: &Call<'_>,
        name: &str,
        args: Option<JsonObject>,
    ) -> Option<Result<GetPromptResult, McpError>> {
        let recorded = self.recorded_arguments(args.as_ref());
        self.audited(
            Kind::PromptGet,
            call.caller,
            name,
            recorded,
            async |upstream| self.get_prompt_unaudited(call, name, args, upstream).await,
            |result, _| match result {
                Some(Ok(_)) => Verdict::Ok,
                Some(Err(_)) => Verdict::Error,
                None => Verdict::UnknownName,
            },
        )
        .await
    }

    /// Reads a resource from the first upstream that serves its URI.
    pub async fn read_resource(
        &self,
        call: &Call<'_>,
        uri: &str,
    ) -> Result<ReadResourceResult, McpError> {
        self.audited(
            Kind::ResourceRead,
            call.caller,
            uri,
            None,
            async |upstream| self.read_resource_unaudited(call, uri, upstream).await,
            |result, served| match result {
                Ok(_) => Verdict::Ok,
                Err(_) if served => Verdict::Error,
                Err(_) => Verdict::UnknownResource,
            },
        )
        .await
    }

    /// The arguments the audit record keeps (`audit_tool_arguments`): a
    /// copy, taken only when the log is on and wants them.
    fn recorded_arguments(&self, args: Option<&JsonObject>) -> Option<JsonObject> {
        (self.audit.is_enabled() && self.audit.wants_arguments())
            .then(|| args.cloned())
            .flatten()
    }

    /// Runs `run` (which names the upstream that served it, if any) and,
    /// when the audit log is on, queues its record: `verdict` tells what
    /// the result (and whether an upstream served it) amounts to.
    async fn audited<R>(
        &self,
        kind: Kind,
        caller: &Caller,
        target: &str,
        arguments: Option<JsonObject>,
        run: impl AsyncFnOnce(&mut Option<String>) -> R,
        verdict: impl FnOnce(&R, bool) -> Verdict,
    ) -> R {
        let mut upstream = None;
        if !self.audit.is_enabled() {
            return run(&mut upstream).await;
        }
        let started = Instant::now();
        let result = run(&mut upstream).await;
        let verdict = verdict(&result, upstream.is_some());
        let outcome = match verdict {
            Verdict::Ok => Outcome::Ok,
            Verdict::Error => Outcome::Error,
            Verdict::UnknownName | Verdict::UnknownResource => Outcome::Denied,
        };
        let event = self
            .event(kind, outcome, caller, target, upstream)
            .duration(started.elapsed())
            .arguments(arguments.as_ref());
        self.audit.record(match verdict {
            Verdict::UnknownName => self.why_unknown(event, caller, target),
            Verdict::UnknownResource => event.detail("reason", "unknown_resource"),
            Verdict::Ok | Verdict::Error => event,
        });
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
