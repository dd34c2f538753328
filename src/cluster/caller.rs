//! The caller of a queued legacy SSE message, as stored with it: the
//! instance that accepted the POST authenticated the token; the instance
//! holding the stream hands the message to the handler with this caller.
//! Only the token's hash is stored, never the token.

use mcpgate_core::domain::{ClientId, Scope};
use mcpgate_core::mcp::bearer::Caller;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Stored {
    user_id: String,
    username: String,
    client_id: String,
    scope: String,
    expires_at: i64,
    token_hash: String,
}

pub fn to_json(c: &Caller) -> String {
    let s = Stored {
        user_id: c.user_id.clone(),
        username: c.username.clone(),
        client_id: c.client_id.as_str().to_string(),
        scope: c.scope.to_string(),
        expires_at: c.expires_at,
        token_hash: c.token_hash.clone(),
    };
    serde_json::to_string(&s).unwrap_or_default()
}

/// The caller back, or `None` if the stored value does not parse.
pub fn from_json(json: &str) -> Option<Caller> {
    let s: Stored = serde_json::from_str(json).ok()?;
    Some(Caller {
        user_id: s.user_id,
        username: s.username,
        client_id: ClientId::parse(&s.client_id).ok()?,
        scope: Scope::parse(&s.scope).ok()?,
        expires_at: s.expires_at,
        token_hash: s.token_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_survives_the_round_trip() {
        let c = Caller {
            user_id: "u1".into(),
            username: "alice".into(),
            client_id: ClientId::parse("c1").unwrap(),
            scope: Scope::parse("mcp").unwrap(),
            expires_at: 42,
            token_hash: "ab".repeat(32),
        };
        let back = from_json(&to_json(&c)).unwrap();
        assert_eq!(back.user_id, "u1");
        assert_eq!(back.username, "alice");
        assert_eq!(back.client_id.as_str(), "c1");
        assert_eq!(back.scope.to_string(), "mcp");
        assert_eq!(back.expires_at, 42);
        assert_eq!(back.token_hash, c.token_hash);
        assert!(from_json("{}").is_none());
    }
}
