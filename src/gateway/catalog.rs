//! Resources and prompts through the gateway: their lists (only the
//! upstreams the caller may use, `[[policy]]` applied), `resources/read`,
//! subscriptions, and prompt routing by prefix. Tools, the relay and
//! completions are in the parent module.

#![allow(deprecated)]

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::join_all;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::policy::Kind;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ClientRequest, GetPromptRequestParams, GetPromptResult, JsonObject, Prompt,
    ReadResourceRequestParams, ReadResourceResult, Request, Resource, ResourceTemplate,
    ServerResult, SubscribeRequestParams, UnsubscribeRequestParams,
};

use super::access::{resource_not_found, subscribe_not_found};
use super::upstream::Upstream;
use super::{Call, Gateway, RESOURCE_NOT_FOUND, exposed, scopes};

impl Gateway {
    // ---- resources ----

    pub async fn list_resources(&self, caller: &Caller) -> Vec<Resource> {
        let conns = self.conns(caller).await;
        let lists = join_all(
            conns
                .iter()
                .map(|(u, c)| Self::bounded(u, c.peer.list_all_resources())),
        )
        .await;
        let mut seen = HashSet::new();
        conns
            .iter()
            .zip(lists)
            .flat_map(|((u, _), r)| {
                r.inspect_err(|e| tracing::warn!(upstream = %u.cfg.name, error = %e.message, "resources/list failed"))
                    .unwrap_or_default()
            })
            .filter(|r| self.access.allows(Kind::Resource, &r.uri, caller))
            .filter(|r| seen.insert(r.uri.clone()))
            .collect()
    }

    pub async fn list_resource_templates(&self, caller: &Caller) -> Vec<ResourceTemplate> {
        let conns = self.conns(caller).await;
        let lists = join_all(
            conns
                .iter()
                .map(|(u, c)| Self::bounded(u, c.peer.list_all_resource_templates())),
        )
        .await;
        conns
            .iter()
            .zip(lists)
            .flat_map(|((u, _), r)| {
                r.inspect_err(|e| tracing::warn!(upstream = %u.cfg.name, error = %e.message, "resources/templates/list failed"))
                    .unwrap_or_default()
            })
            // A template is matched by its URI template (docs/policy.md).
            .filter(|t| self.access.allows(Kind::Resource, &t.uri_template, caller))
            .collect()
    }

    /// Reads a resource from the first upstream that serves its URI;
    /// `upstream` is set to the one that answered.
    pub(super) async fn read_resource_unaudited(
        &self,
        call: &Call<'_>,
        uri: &str,
        upstream: &mut Option<String>,
    ) -> Result<ReadResourceResult, McpError> {
        if !self.access.allows(Kind::Resource, uri, call.caller) {
            return Err(resource_not_found(uri));
        }
        let mut lacking = None;
        for (up, conn) in self.conns(call.caller).await {
            // Never sent to an upstream whose scopes the token lacks.
            if let Some(c) = self.lacking(call.caller, &up, Kind::Resource, uri) {
                lacking.get_or_insert(c);
                continue;
            }
            let req = ClientRequest::ReadResourceRequest(Request::new(
                ReadResourceRequestParams::new(uri),
            ));
            *upstream = Some(up.cfg.name.clone());
            match self.send(&up, &conn, req, call).await {
                Ok(ServerResult::ReadResourceResult(r)) => return Ok(r),
                Ok(_) => continue,
                Err(e)
                    if e.code.0 == RESOURCE_NOT_FOUND
                        || e.code.0 == -32602
                        || e.code.0 == -32601 =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        *upstream = None;
        if let Some(challenge) = lacking {
            return Err(scopes::insufficient(uri, &call.caller.scope, &challenge));
        }
        Err(resource_not_found(uri))
    }

    /// Subscribes at the upstream serving `uri`.
    pub async fn subscribe(&self, call: &Call<'_>, uri: &str) -> Result<(), McpError> {
        if !self.access.allows(Kind::Resource, uri, call.caller) {
            return Err(subscribe_not_found(uri));
        }
        let d = call.downstream.clone();
        for (up, conn) in self.conns(call.caller).await {
            match Self::bounded(&up, conn.peer.subscribe(SubscribeRequestParams::new(uri))).await {
                Ok(()) => {
                    if let Some(d) = &d {
                        conn.relay.subscribe(uri, d);
                    }
                    return Ok(());
                }
                Err(e)
                    if e.code.0 == RESOURCE_NOT_FOUND
                        || e.code.0 == -32602
                        || e.code.0 == -32601 =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(subscribe_not_found(uri))
    }

    pub async fn unsubscribe(&self, call: &Call<'_>, uri: &str) -> Result<(), McpError> {
        for (up, conn) in self.conns(call.caller).await {
            if let Some(d) = &call.downstream {
                conn.relay.unsubscribe(uri, d.session);
            }
            if self.listen.holds(&up.source(call.caller), uri) {
                continue;
            }
            let _ = Self::bounded(
                &up,
                conn.peer.unsubscribe(UnsubscribeRequestParams::new(uri)),
            )
            .await;
        }
        Ok(())
    }

    // ---- prompts ----

    pub async fn list_prompts(&self, caller: &Caller) -> Vec<Prompt> {
        let conns = self.conns(caller).await;
        let lists = join_all(
            conns
                .iter()
                .map(|(u, c)| Self::bounded(u, c.peer.list_all_prompts())),
        )
        .await;
        let mut taken = HashSet::new();
        let mut out = Vec::new();
        for ((up, _), list) in conns.iter().zip(lists) {
            for mut p in list.unwrap_or_default() {
                let name = exposed(up.cfg.prefix(), &p.name);
                if !self.access.allows(Kind::Prompt, &name, caller) {
                    continue;
                }
                if taken.insert(name.clone()) {
                    p.name = name;
                    out.push(p);
                }
            }
        }
        out
    }

    pub(super) fn route_prompt(&self, caller: &Caller, name: &str) -> Vec<(Arc<Upstream>, String)> {
        // A denied prompt is routed nowhere: unknown (docs/policy.md).
        if !self.access.allows(Kind::Prompt, name, caller) {
            return Vec::new();
        }
        self.visible(caller)
            .into_iter()
            .filter_map(|u| {
                let p = u.cfg.prefix();
                let own = if p.is_empty() {
                    Some(name.to_string())
                } else {
                    name.strip_prefix(p)
                        .and_then(|r| r.strip_prefix('_'))
                        .map(str::to_string)
                };
                own.map(|own| (u, own))
            })
            .collect()
    }

    /// `prompts/get`; `None` if no upstream serves that name. `upstream` is
    /// set to the upstream asked last.
    pub(super) async fn get_prompt_unaudited(
        &self,
        call: &Call<'_>,
        name: &str,
        args: Option<JsonObject>,
        upstream: &mut Option<String>,
    ) -> Option<Result<GetPromptResult, McpError>> {
        let mut lacking = None;
        for (up, own) in self.route_prompt(call.caller, name) {
            // Never sent to an upstream whose scopes the token lacks.
            if let Some(c) = self.lacking(call.caller, &up, Kind::Prompt, name) {
                lacking.get_or_insert(c);
                continue;
            }
            *upstream = Some(up.cfg.name.clone());
            let conn = match up.conn_for(call.caller).await {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            let mut params = GetPromptRequestParams::new(own.clone());
            params.arguments = args.clone();
            // Through `send`, like a tool call: the upstream may ask the
            // client while it prepares the prompt (the relay must know whose
            // request it serves), report progress, or be cancelled.
            let req = ClientRequest::GetPromptRequest(Request::new(params));
            match self.send(&up, &conn, req, call).await {
                Ok(ServerResult::GetPromptResult(r)) => return Some(Ok(r)),
                Ok(other) => {
                    return Some(Err(McpError::internal_error(
                        format!(
                            "upstream {} answered prompts/get with an unexpected result: {other:?}",
                            up.cfg.name
                        ),
                        None,
                    )));
                }
                Err(e)
                    if up.cfg.prefix().is_empty() && (e.code.0 == -32602 || e.code.0 == -32601) =>
                {
                    continue;
                }
                // A prompt the upstream does not list is unknown, answered
                // by the gateway like a denied one (no upstream wording).
                Err(e) if e.code.0 == -32602 && !self.lists_prompt(&up, &conn, &own).await => {
                    return None;
                }
                Err(e) => return Some(Err(e)),
            }
        }
        lacking.map(|c| Err(scopes::insufficient(name, &call.caller.scope, &c)))
    }
}
