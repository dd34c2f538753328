//! `[[policy]]` decisions the gateway needs beyond a name check (the
//! filters themselves sit where each list or request is served, in
//! `super`): completions of denied items, and telling an unknown prompt
//! from an upstream's refusal, so that a denied prompt and an unknown one
//! get the same answer.

use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::policy::Kind;
use rmcp::model::{CompleteResult, CompletionInfo, Reference};

use std::sync::Arc;

use rmcp::ErrorData as McpError;

use super::upstream::{Conn, Upstream};
use super::{Gateway, RESOURCE_NOT_FOUND};
use crate::policy::Access;

impl Gateway {
    /// Enforces `access` (`[[policy]]`) instead of allowing everything.
    pub fn with_access(mut self, access: Arc<Access>) -> Self {
        self.access = access;
        self
    }

    /// The policy in force, for the built-in tools and the rate limits.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// Whether `completion/complete` may look at this prompt or resource.
    pub(super) fn completion_allowed(&self, caller: &Caller, r: &Reference) -> bool {
        match r {
            Reference::Prompt(p) => self.access.allows(Kind::Prompt, &p.name, caller),
            Reference::Resource(r) => self.access.allows(Kind::Resource, &r.uri, caller),
            // A kind of reference this version does not know: upstreams
            // decide, as before.
            _ => true,
        }
    }

    /// Whether the upstream lists the prompt `own` (its own name); on a
    /// failure to list, assume it does (its error then stands).
    pub(super) async fn lists_prompt(&self, up: &Upstream, conn: &Conn, own: &str) -> bool {
        Self::bounded(up, conn.peer.list_all_prompts())
            .await
            .map(|list| list.iter().any(|p| p.name == own))
            .unwrap_or(true)
    }
}

/// The completion of a denied prompt or resource: no values, as servers
/// answer for a reference they do not know.
pub(super) fn no_completion() -> CompleteResult {
    CompleteResult::new(CompletionInfo::with_all_values(Vec::new()).unwrap_or_default())
}

/// The answer to a read of a resource no upstream serves, or that the
/// caller may not read.
pub(super) fn resource_not_found(uri: &str) -> McpError {
    McpError::new(
        rmcp::model::ErrorCode(RESOURCE_NOT_FOUND),
        format!("resource not found: {uri}"),
        Some(serde_json::json!({"uri": uri})),
    )
}

/// The answer to a subscription no upstream accepts, or that the caller
/// may not make.
pub(super) fn subscribe_not_found(uri: &str) -> McpError {
    McpError::new(
        rmcp::model::ErrorCode(RESOURCE_NOT_FOUND),
        format!("resource not found: {uri}"),
        None,
    )
}
