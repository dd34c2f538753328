//! Step-up at an upstream (MCP 2025-11-25, "Scope Challenge Handling";
//! RFC 6750 §3.1): an upstream that answers a user's request with `403`
//! and `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`
//! needs a token with a larger scope. The transport ([`super::http_client`])
//! notes the challenge for (user, upstream); the gateway takes it when the
//! call fails and answers with a connect link (or URL-mode elicitation)
//! asking for the scope the user already granted plus the one the upstream
//! named (`crate::gateway::connect`). Nothing is retried with a token the
//! user did not approve: the user consents at the upstream again.

use std::collections::BTreeSet;

use super::service::UpstreamOAuth;

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
        if let Ok(mut m) = self.step_ups.lock() {
            m.insert(
                (user_id.to_string(), upstream.to_string()),
                required.map(str::to_string),
            );
        }
    }

    /// The step-up noted for `user_id` at `upstream`, removed: `Some` when
    /// its last refusal was `insufficient_scope`, holding the scope to ask
    /// for (the granted one plus the one the upstream named; `None` when
    /// it named none: the configured or advertised scope).
    pub async fn take_step_up(&self, user_id: &str, upstream: &str) -> Option<Option<String>> {
        let required = self
            .step_ups
            .lock()
            .ok()?
            .remove(&(user_id.to_string(), upstream.to_string()))?;
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
    use super::union;

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
