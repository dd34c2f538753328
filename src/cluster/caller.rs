//! The caller of a queued legacy SSE message, as stored with it: the
//! instance that accepted the POST authenticated the token; the instance
//! holding the stream hands the message to the handler with this caller.
//! Only the token's hash is stored, never the token.

use mcpgate_core::domain::{ClientId, Scope};
use mcpgate_core::mcp::bearer::{Caller, Subject};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Empty for a service (then `service` holds its name).
    user_id: String,
    username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    client_id: String,
    scope: String,
    expires_at: i64,
    token_hash: String,
    /// The user's groups (`[[policy]]` decisions on the holding instance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

pub fn to_json(c: &Caller) -> String {
    let (user_id, username, service) = match &c.subject {
        Subject::User { id, username } => (id.clone(), username.clone(), None),
        Subject::Service { name } => (String::new(), String::new(), Some(name.clone())),
    };
    let s = Stored {
        user_id,
        username,
        service,
        client_id: c.client_id.as_str().to_string(),
        scope: c.scope.to_string(),
        expires_at: c.expires_at,
        token_hash: c.token_hash.clone(),
        groups: c.groups.to_vec(),
    };
    serde_json::to_string(&s).unwrap_or_default()
}

/// The caller back, or `None` if the stored value does not parse.
pub fn from_json(json: &str) -> Option<Caller> {
    let s: Stored = serde_json::from_str(json).ok()?;
    let subject = match s.service {
        Some(name) => Subject::Service { name },
        None if s.user_id.is_empty() => return None,
        None => Subject::User {
            id: s.user_id,
            username: s.username,
        },
    };
    Some(Caller {
        subject,
        client_id: ClientId::parse(&s.client_id).ok()?,
        scope: Scope::parse(&s.scope).ok()?,
        expires_at: s.expires_at,
        token_hash: s.token_hash,
        groups: s.groups.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_survives_the_round_trip() {
        let c = Caller {
            subject: Subject::User {
                id: "u1".into(),
                username: "alice".into(),
            },
            client_id: ClientId::parse("c1").unwrap(),
            scope: Scope::parse("mcp").unwrap(),
            expires_at: 42,
            token_hash: "ab".repeat(32),
            groups: vec!["ops".to_string()].into(),
        };
        let back = from_json(&to_json(&c)).unwrap();
        assert_eq!(back.user(), Some(("u1", "alice")));
        assert_eq!(back.client_id.as_str(), "c1");
        assert_eq!(back.scope.to_string(), "mcp");
        assert_eq!(back.expires_at, 42);
        assert_eq!(back.token_hash, c.token_hash);
        assert_eq!(&*back.groups, &["ops".to_string()]);
        assert!(from_json("{}").is_none());
        let service = Caller {
            subject: Subject::Service { name: "job".into() },
            ..c
        };
        let back = from_json(&to_json(&service)).unwrap();
        assert_eq!(back.subject, service.subject);
        assert_eq!(back.owner(), "client:c1");
    }
}
