//! Scopes of upstream items (MCP 2025-11-25 step-up; rules in
//! `mcpgate_core::mcp::scopes`).
//!
//! Two parts:
//!
//! - [`Gateway::scope_shortfall`]: before a `tools/call`, `prompts/get` or
//!   `resources/read` goes on, the transports ask which upstream would
//!   serve it and whether the caller's token has the scopes that needs; if
//!   not, they answer HTTP 403 `insufficient_scope` (`crate::mcp::scope_gate`).
//!   Tools are routed exactly as the call routes them. A prompt or resource
//!   that more than one upstream might serve (an unprefixed upstream; URIs
//!   are not prefixed) is looked up in the upstreams' lists, and only when
//!   one of them needs a scope the token lacks.
//! - The authoritative check, in the calls themselves: an upstream whose
//!   scopes the token lacks is never sent the request
//!   ([`Gateway::lacking`]); the call fails with [`insufficient`] (a
//!   JSON-RPC error) if the transports did not already answer 403.
//!
//! Lists (`tools/list`, ...) are not filtered by scope: a client sees what
//! it could use after a step-up, and asks for the scope when it calls it.

use std::sync::Arc;

use mcpgate_core::domain::Scope;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::mcp::scopes::{ScopeRequirements, challenge_scope, missing};
use mcpgate_core::policy::Kind;
use rmcp::ErrorData as McpError;

use super::Gateway;
use super::upstream::Upstream;

/// What a request names.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Tool(&'a str),
    Prompt(&'a str),
    Resource(&'a str),
}

/// The JSON-RPC error of a call whose upstream needs scopes the token
/// lacks (when the transport did not answer 403 first). `challenge`: the
/// scope to ask for.
pub fn insufficient(item: &str, granted: &Scope, challenge: &Scope) -> McpError {
    McpError::invalid_request(
        format!(
            "insufficient_scope: {item:?} needs the scope {:?}, which this access token lacks; authorize again with scope={:?}",
            missing(granted, challenge),
            challenge.to_string()
        ),
        Some(serde_json::json!({
            "error": "insufficient_scope",
            "scope": challenge.to_string(),
        })),
    )
}

impl Gateway {
    /// Sets what calls need (`config::scopes`).
    pub fn with_scopes(self, scopes: Arc<ScopeRequirements>) -> Self {
        self.set_scopes(scopes);
        self
    }

    /// Puts new requirements in force (a reload).
    pub fn set_scopes(&self, scopes: Arc<ScopeRequirements>) {
        match self.scopes.write() {
            Ok(mut s) => *s = scopes,
            Err(poisoned) => *poisoned.into_inner() = scopes,
        }
    }

    /// The requirements in force.
    pub fn scopes(&self) -> Arc<ScopeRequirements> {
        match self.scopes.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether calls need nothing beyond the base scope: no upstream
    /// `scopes`, and no `[[policy]]` rule with `scopes` (then the
    /// transports need not read the body for step-up).
    pub fn scopes_only_base(&self) -> bool {
        self.scopes().only_base() && !self.access.has_scopes()
    }

    /// Whether `caller`'s token has every scope `item` needs: the base
    /// scope, its upstream's `scopes` (`None`: a built-in tool), and those
    /// of the `[[policy]]` rule that allows it. `Err`: the scope to
    /// challenge for.
    pub fn check_scope(
        &self,
        caller: &Caller,
        upstream: Option<&str>,
        kind: Kind,
        item: &str,
    ) -> Result<(), Scope> {
        let mut needed = self.scopes().required_for(upstream, item);
        for s in self.access.scopes_for(kind, item, caller) {
            needed = needed.union(&s);
        }
        if needed.is_subset_of(&caller.scope) {
            Ok(())
        } else {
            Err(challenge_scope(&caller.scope, &needed))
        }
    }

    /// The challenge scope if `caller`'s token lacks what `item` of `up`
    /// needs; `None` when it has it.
    pub(super) fn lacking(
        &self,
        caller: &Caller,
        up: &Upstream,
        kind: Kind,
        item: &str,
    ) -> Option<Scope> {
        if self.scopes_only_base() {
            return None;
        }
        self.check_scope(caller, Some(&up.cfg.name), kind, item)
            .err()
    }

    /// The scope to challenge for if the upstream that would serve `item`
    /// needs one the caller's token lacks; `None` when it has them, or no
    /// upstream serves `item` (the call then answers as usual).
    pub async fn scope_shortfall(&self, caller: &Caller, item: Item<'_>) -> Option<Scope> {
        if self.scopes_only_base() {
            return None;
        }
        match item {
            Item::Tool(name) => {
                let (up, _, _) = self.route_tool(caller, name).await?.ok()?;
                self.lacking(caller, &up, Kind::Tool, name)
            }
            Item::Prompt(name) => {
                let candidates: Vec<(Arc<Upstream>, String)> = self.route_prompt(caller, name);
                if candidates
                    .iter()
                    .all(|(u, _)| self.lacking(caller, u, Kind::Prompt, name).is_none())
                {
                    return None;
                }
                for (up, own) in candidates {
                    let lacking = self.lacking(caller, &up, Kind::Prompt, name);
                    if up.cfg.prefix().is_empty() && !serves_prompt(&up, caller, &own).await {
                        continue;
                    }
                    return lacking;
                }
                None
            }
            Item::Resource(uri) => {
                let ups: Vec<Arc<Upstream>> = self.visible(caller);
                if ups
                    .iter()
                    .all(|u| self.lacking(caller, u, Kind::Resource, uri).is_none())
                {
                    return None;
                }
                for up in ups {
                    if serves_resource(&up, caller, uri).await {
                        return self.lacking(caller, &up, Kind::Resource, uri);
                    }
                }
                None
            }
        }
    }
}

async fn serves_prompt(up: &Arc<Upstream>, caller: &Caller, own: &str) -> bool {
    let Ok(conn) = up.conn_for(caller).await else {
        return false;
    };
    Gateway::bounded(up, conn.peer.list_all_prompts())
        .await
        .is_ok_and(|list| list.iter().any(|p| p.name == own))
}

/// Whether `up` lists `uri`, or a template whose literal start it has.
async fn serves_resource(up: &Arc<Upstream>, caller: &Caller, uri: &str) -> bool {
    let Ok(conn) = up.conn_for(caller).await else {
        return false;
    };
    if Gateway::bounded(up, conn.peer.list_all_resources())
        .await
        .is_ok_and(|list| list.iter().any(|r| r.uri == uri))
    {
        return true;
    }
    Gateway::bounded(up, conn.peer.list_all_resource_templates())
        .await
        .is_ok_and(|list| {
            list.iter().any(|t| {
                let literal = t.uri_template.split('{').next().unwrap_or("");
                !literal.is_empty() && uri.starts_with(literal)
            })
        })
}
