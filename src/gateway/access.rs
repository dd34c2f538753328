//! `[[policy]]` decisions the gateway needs beyond a name check (the
//! filters themselves sit where each list or request is served, in
//! `super`): completions of denied items, and telling an unknown prompt
//! from an upstream's refusal, so that a denied prompt and an unknown one
//! get the same answer.

use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::policy::Kind;
use rmcp::model::{CompleteResult, CompletionInfo, Reference};

use super::Gateway;
use super::upstream::{Conn, Upstream};

impl Gateway {
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
