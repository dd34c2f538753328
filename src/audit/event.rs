//! What an audit record says: the [`Kind`] of event, its [`Outcome`], and
//! [`Event`], the builder the code that saw the event fills in.
//!
//! An event holds no secret by construction: there is no field for a token,
//! a secret, a password, a code or a PKCE verifier, and the free-form
//! `detail` is set only by mcpgate's own code with fixed keys (grant type,
//! sign-in method, reason). Tool arguments are kept apart and written only
//! when `audit_tool_arguments = true` (see [`super::Audit::record`]).

use std::net::IpAddr;
use std::time::Duration;

use mcpgate_core::mcp::bearer::{Caller, Subject};
use serde_json::{Map, Value};

/// Longest client-controlled value kept (a tool name, a resource URI, a
/// client id): longer ones are cut, on a character boundary.
pub const MAX_VALUE_CHARS: usize = 256;

/// The kinds of audit events (docs/audit.md lists their fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A sign-in, by password or through an identity provider.
    SignIn,
    /// A browser session ended by the user ("Not you? Sign out").
    SignOut,
    /// The user approved (`ok`) or denied (`denied`) a client.
    Consent,
    /// Tokens issued by the authorization code or client credentials grant.
    TokenIssued,
    /// Tokens issued for a refresh token (rotation, or a replay within the
    /// grace period).
    TokenRefreshed,
    /// A token revoked (RFC 7009).
    TokenRevoked,
    /// A used refresh token or code presented again: its grant is revoked.
    TokenReuseDetected,
    /// A client registered (RFC 7591, a metadata document's first use, or
    /// `mcpgate client add`).
    ClientRegistered,
    /// A client removed (`mcpgate client remove`).
    ClientRemoved,
    /// `tools/call` (any transport, REST included).
    ToolCall,
    /// `prompts/get`.
    PromptGet,
    /// `resources/read`.
    ResourceRead,
    /// An operator's action in the admin console or on the command line
    /// (`crate::admin`): `detail.action` names it, `detail.by` who acted.
    AdminAction,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::SignIn,
        Kind::SignOut,
        Kind::Consent,
        Kind::TokenIssued,
        Kind::TokenRefreshed,
        Kind::TokenRevoked,
        Kind::TokenReuseDetected,
        Kind::ClientRegistered,
        Kind::ClientRemoved,
        Kind::ToolCall,
        Kind::PromptGet,
        Kind::ResourceRead,
        Kind::AdminAction,
    ];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SignIn => "sign_in",
            Kind::SignOut => "sign_out",
            Kind::Consent => "consent",
            Kind::TokenIssued => "token.issued",
            Kind::TokenRefreshed => "token.refreshed",
            Kind::TokenRevoked => "token.revoked",
            Kind::TokenReuseDetected => "token.reuse_detected",
            Kind::ClientRegistered => "client.registered",
            Kind::ClientRemoved => "client.removed",
            Kind::ToolCall => "tool.call",
            Kind::PromptGet => "prompt.get",
            Kind::ResourceRead => "resource.read",
            Kind::AdminAction => "admin.action",
        }
    }
}

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused: wrong password, consent denied, a tool the caller may not
    /// use (or that does not exist), a reused token.
    Denied,
    /// Failed: an upstream's error, a timeout.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Denied, Outcome::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// One event, before [`super::Audit::record`] stamps it with the time and
/// the instance.
#[derive(Debug, Clone)]
pub struct Event {
    pub(super) kind: Kind,
    pub(super) outcome: Outcome,
    pub(super) user_id: Option<String>,
    pub(super) username: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) upstream: Option<String>,
    pub(super) target: Option<String>,
    pub(super) duration_ms: Option<i64>,
    pub(super) client_addr: Option<IpAddr>,
    pub(super) detail: Map<String, Value>,
    /// Tool or prompt arguments: written only with `audit_tool_arguments`.
    pub(super) arguments: Option<Value>,
}

/// `s` cut to [`MAX_VALUE_CHARS`] characters.
fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

impl Event {
    pub fn new(kind: Kind, outcome: Outcome) -> Self {
        Self {
            kind,
            outcome,
            user_id: None,
            username: None,
            client_id: None,
            upstream: None,
            target: None,
            duration_ms: None,
            client_addr: None,
            detail: Map::new(),
            arguments: None,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The user the event is about (id and username).
    pub fn user(mut self, id: &str, username: &str) -> Self {
        self.user_id = Some(id.to_string());
        self.username = Some(bounded(username));
        self
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(bounded(client_id));
        self
    }

    /// The caller of an MCP request: its user (none for a service token,
    /// whose subject is the client: `detail.service` names it) and client.
    pub fn caller(mut self, caller: &Caller) -> Self {
        match &caller.subject {
            Subject::User { id, username } => self = self.user(id, username),
            Subject::Service { name } => {
                self.detail
                    .insert("service".into(), Value::String(bounded(name)));
            }
        }
        self.client(caller.client_id.as_str())
    }

    pub fn upstream(mut self, name: &str) -> Self {
        self.upstream = Some(name.to_string());
        self
    }

    /// The tool, prompt or resource URI.
    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(bounded(target));
        self
    }

    pub fn duration(mut self, d: Duration) -> Self {
        self.duration_ms = Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self
    }

    pub fn addr(mut self, addr: IpAddr) -> Self {
        self.client_addr = Some(addr);
        self
    }

    /// One entry of the record's `detail` object. Callers pass fixed keys
    /// and values mcpgate chose (never a credential).
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// A client-controlled text in `detail`, cut to [`MAX_VALUE_CHARS`].
    pub fn detail_text(mut self, key: &str, value: &str) -> Self {
        self.detail
            .insert(key.to_string(), Value::String(bounded(value)));
        self
    }

    /// Tool or prompt arguments (kept only with `audit_tool_arguments`).
    pub fn arguments(mut self, args: Option<&Map<String, Value>>) -> Self {
        self.arguments = args.map(|a| Value::Object(a.clone()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_client_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_VALUE_CHARS + 10);
        let e = Event::new(Kind::ToolCall, Outcome::Ok).target(&long);
        assert_eq!(e.target.map(|t| t.chars().count()), Some(MAX_VALUE_CHARS));
    }

    #[test]
    fn kind_names_are_distinct() {
        let mut names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
