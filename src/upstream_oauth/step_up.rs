//! Step-up at an upstream (MCP 2025-11-25, "Scope Challenge Handling";
//! RFC 6750 §3.1): an upstream that answers a user's request with `403`
//! and `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`
//! needs a token with a larger scope. The transport ([`super::http_client`])
//! notes the challenge for (user, upstream); the gateway takes it when the
//! call fails and answers with a connect link (or URL-mode elicitation)
//! asking for the scope the user already granted plus the one the upstream
//! named (`crate::gateway::connect`). Nothing is retried with a token the
//! user did not approve: the user consents at the upstream again.
//!
//! A note lives [`NOTE_TTL`] seconds (by the server's `Clock`): the
//! gateway takes it as soon as the refused call returns, so an older one
//! belongs to a call that is long over. Taken late, it would turn a later,
//! unrelated failure into a connect link; it is dropped instead.

use std::collections::{BTreeSet, HashMap};

use super::service::{UpstreamOAuth, UserUpstream};

/// How long a noted `insufficient_scope` may wait to be taken, seconds.
pub const NOTE_TTL: i64 = 60;

/// The noted challenges: per (user, upstream), when it was noted and the
/// scope it named.
#[derive(Default)]
pub struct StepUps(HashMap<UserUpstream, (i64, Option<String>)>);

impl StepUps {
    /// Notes a challenge at `now` (replacing an older one).
    pub fn note(&mut self, key: UserUpstream, required: Option<String>, now: i64) {
        self.0.insert(key, (now, required));
        // Notes nobody took (the call failed for another reason first)
        // do not pile up.
        self.0.retain(|_, (at, _)| now - *at <= NOTE_TTL);
    }

    /// Takes the note of `key` if it is at most [`NOTE_TTL`] old at
    /// `now`; an older one is dropped and `None` returned.
    pub fn take(&mut self, key: &UserUpstream, now: i64) -> Option<Option<String>> {
        let (at, required) = self.0.remove(key)?;
        (now - at <= NOTE_TTL).then_some(required)
    }

    /// Keeps only the notes of the upstreams `keep` names (a reload
    /// removed the others).
    pub fn retain_upstreams(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|(_, upstream), _| keep(upstream));
    }
}

impl UpstreamOAuth {
    /// The upstream refused `user_id`'s token for lack of scope;
    /// `required`: the scope its challenge named, if any.
    pub fn note_insufficient_scope(&self, user_id: &str, upstream: &str, required: Option<&str>) {
        tracing::info!(
            event = "upstream_oauth.insufficient_scope",
            upstream = %upstream,
            required = ?required,
            "an upstream asked for a larger scope; the user is offered a step-up"
        );
        let now = self.clock.now();
        if let Ok(mut m) = self.step_ups.lock() {
            m.note(
                (user_id.to_string(), upstream.to_string()),
                required.map(str::to_string),
                now,
            );
        }
    }

    /// The step-up noted for `user_id` at `upstream`, removed: `Some` when
    /// its last refusal was `insufficient_scope`, holding the scope to ask
    /// for (the granted one plus the one the upstream named; `None` when
    /// it named none: the configured or advertised scope). A note older
    /// than [`NOTE_TTL`] is dropped and not returned.
    pub async fn take_step_up(&self, user_id: &str, upstream: &str) -> Option<Option<String>> {
        let now = self.clock.now();
        let required = self
            .step_ups
            .lock()
            .ok()?
            .take(&(user_id.to_string(), upstream.to_string()), now)?;
        let Some(required) = required else {
            return Some(None);
        };
        let granted = self
            .connection_record(user_id, upstream)
            .await
            .ok()
            .flatten()
            .and_then(|t| t.scope);
        Some(Some(union(granted.as_deref(), &required)))
    }
}

/// The scopes of `granted` and `required`, each once, sorted (RFC 6749
/// §3.3: a space-separated set).
fn union(granted: Option<&str>, required: &str) -> String {
    granted
        .unwrap_or_default()
        .split_ascii_whitespace()
        .chain(required.split_ascii_whitespace())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{NOTE_TTL, StepUps, union};

    fn key(user: &str) -> (String, String) {
        (user.to_string(), "b".to_string())
    }

    #[test]
    fn a_note_is_taken_once_while_fresh() {
        let mut s = StepUps::default();
        s.note(key("alice"), Some("files:write".into()), 1000);
        assert_eq!(
            s.take(&key("alice"), 1000 + NOTE_TTL),
            Some(Some("files:write".into()))
        );
        assert_eq!(s.take(&key("alice"), 1000 + NOTE_TTL), None);
    }

    #[test]
    fn a_stale_note_is_dropped_not_returned() {
        let mut s = StepUps::default();
        s.note(key("alice"), Some("files:write".into()), 1000);
        assert_eq!(s.take(&key("alice"), 1001 + NOTE_TTL), None);
        // Dropped: it does not come back at an earlier time either.
        assert_eq!(s.take(&key("alice"), 1000), None);
    }

    #[test]
    fn notes_are_per_user_and_stale_ones_do_not_pile_up() {
        let mut s = StepUps::default();
        s.note(key("alice"), None, 1000);
        s.note(key("bob"), Some("x".into()), 1000 + NOTE_TTL + 1);
        assert_eq!(s.0.len(), 1, "alice's stale note was dropped");
        assert_eq!(s.take(&key("alice"), 1000 + NOTE_TTL + 1), None);
        assert_eq!(
            s.take(&key("bob"), 1000 + NOTE_TTL + 1),
            Some(Some("x".into()))
        );
    }

    #[test]
    fn the_step_up_scope_is_the_granted_one_plus_the_required_one() {
        assert_eq!(union(Some("mcp"), "files:write"), "files:write mcp");
        assert_eq!(
            union(Some("mcp files:write"), "mcp files:write"),
            "files:write mcp"
        );
        assert_eq!(union(None, " files:write  mcp "), "files:write mcp");
        assert_eq!(union(Some(""), "a"), "a");
    }
}
