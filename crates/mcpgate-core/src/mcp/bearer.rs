//! Bearer tokens at the MCP endpoint.
//!
//! - No credentials: 401 with `WWW-Authenticate: Bearer
//!   resource_metadata="…", scope="…"` and no `error` (RFC 6750 §3.1).
//! - A bad, expired, revoked token, or one issued for another resource:
//!   401 with `error="invalid_token"` (RFC 6750 §3.1, RFC 8707 §2).
//! - A valid token without the needed scope: 403 with
//!   `error="insufficient_scope"` (RFC 6750 §3.1, MCP 2025-11-25 step-up).
//! - A token in the query string is refused (MCP authorization: "MUST NOT
//!   include access tokens in the URI query string").
//! - A token that cannot be checked because the database is unreachable:
//!   503 (`temporarily_unavailable`, no challenge), not 401: the token may
//!   be good, and a client must not drop it and start OAuth again.

use crate::domain::{ClientId, ResourceUri, Scope};
use crate::model::{AccessToken, UnixTime};
use crate::oauth::tokens::looks_like_access_token;

/// Who is calling: the result of a successful token check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who the token acts for: a user, or the client itself.
    pub subject: Subject,
    pub client_id: ClientId,
    pub scope: Scope,
    pub expires_at: UnixTime,
    /// SHA-256 of the token (never the token itself).
    pub token_hash: String,
    /// The user's groups (local and from identity providers), loaded with
    /// the token; empty for a service. Used by `[[policy]]` rules.
    pub groups: Groups,
}

/// Group names of a caller, shared between the clones of a `Caller`.
pub type Groups = std::sync::Arc<[String]>;

/// The subject of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user, through a client the user approved (authorization code).
    User { id: String, username: String },
    /// A service identity: the client itself (the client credentials
    /// grant, RFC 6749 §4.4). Never a user, whatever its name.
    Service {
        /// The client's name as the operator registered it (else its id).
        name: String,
    },
}

/// The prefix of a service's [`Caller::owner`]. User ids are UUIDs, which
/// never contain `:`, so the two kinds of owner never collide.
pub const SERVICE_OWNER_PREFIX: &str = "client:";

impl Caller {
    /// The user this caller acts for, if any.
    pub fn user(&self) -> Option<(&str, &str)> {
        match &self.subject {
            Subject::User { id, username } => Some((id, username)),
            Subject::Service { .. } => None,
        }
    }

    pub fn is_service(&self) -> bool {
        matches!(self.subject, Subject::Service { .. })
    }

    /// Who owns what this caller opens (MCP sessions, per-user upstream
    /// connections): the user's id, or `client:<client_id>` for a service,
    /// so a service's session is never served to a user or to another
    /// client, and the other way round.
    pub fn owner(&self) -> String {
        match &self.subject {
            Subject::User { id, .. } => id.clone(),
            Subject::Service { .. } => format!("{SERVICE_OWNER_PREFIX}{}", self.client_id),
        }
    }

    /// A short label for logs: the username, or `service <client_id>`.
    pub fn label(&self) -> String {
        match &self.subject {
            Subject::User { username, .. } => username.clone(),
            Subject::Service { .. } => format!("service {}", self.client_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header.
    #[error("unauthorized")]
    Missing,
    /// The token was sent somewhere other than the header.
    #[error("invalid_request")]
    InvalidRequest(String),
    #[error("invalid_token")]
    InvalidToken(String),
    #[error("insufficient_scope")]
    InsufficientScope(String),
    /// The token could not be checked now (the database is unreachable).
    #[error("temporarily_unavailable")]
    Unavailable(String),
}

impl BearerError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::InvalidToken(_) => 401,
            Self::InvalidRequest(_) => 400,
            Self::InsufficientScope(_) => 403,
            Self::Unavailable(_) => 503,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Self::Missing => {
                "this endpoint needs an OAuth access token: Authorization: Bearer <token>"
            }
            Self::InvalidRequest(d)
            | Self::InvalidToken(d)
            | Self::InsufficientScope(d)
            | Self::Unavailable(d) => d,
        }
    }

    /// The `WWW-Authenticate` header value.
    pub fn challenge(&self, resource_metadata: &str, scope: &str) -> String {
        let base = format!(
            "resource_metadata=\"{}\", scope=\"{}\"",
            quote_safe(resource_metadata),
            quote_safe(scope)
        );
        match self {
            Self::Missing => format!("Bearer {base}"),
            other => format!(
                "Bearer error=\"{other}\", error_description=\"{}\", {base}",
                quote_safe(other.description())
            ),
        }
    }
}

/// RFC 6750 §3: the values are quoted-strings; keep them printable ASCII
/// without `"` and `\`.
fn quote_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                '\''
            } else {
                c
            }
        })
        .collect()
}

/// Reads the token from the `Authorization` header. A header with another
/// scheme counts as no credentials (the client should start OAuth).
pub fn token_from_header(authorization: Option<&str>) -> Result<&str, BearerError> {
    let Some(value) = authorization.map(str::trim) else {
        return Err(BearerError::Missing);
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return if value.eq_ignore_ascii_case("bearer") {
            Err(BearerError::InvalidToken(
                "the Authorization header has no token after Bearer".into(),
            ))
        } else {
            Err(BearerError::Missing)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::InvalidToken(
            "the Authorization header has no token after Bearer".into(),
        ));
    }
    Ok(token)
}

/// Refuses a token in the query string (`access_token=`).
pub fn check_query(query: Option<&str>) -> Result<(), BearerError> {
    let has_token = query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    });
    if has_token {
        Err(BearerError::InvalidRequest(
            "access tokens are not accepted in the query string; send Authorization: Bearer <token>".into(),
        ))
    } else {
        Ok(())
    }
}

/// A cheap shape check before any lookup.
pub fn check_shape(token: &str) -> Result<(), BearerError> {
    if looks_like_access_token(token) {
        Ok(())
    } else {
        Err(BearerError::InvalidToken(
            "the access token is malformed (mcpgate tokens look like mcp_ followed by 32 hex characters)".into(),
        ))
    }
}

/// Checks a stored token (or its absence) for this server's resources
/// (audience) and the scope.
pub fn check(
    record: Option<&AccessToken>,
    resources: &[&ResourceUri],
    required_scope: &Scope,
    now: UnixTime,
) -> Result<(), BearerError> {
    let Some(t) = record else {
        return Err(BearerError::InvalidToken(
            "the access token is unknown".into(),
        ));
    };
    if t.revoked_at.is_some() {
        return Err(BearerError::InvalidToken(
            "the access token has been revoked".into(),
        ));
    }
    if now >= t.expires_at {
        return Err(BearerError::InvalidToken(
            "the access token has expired".into(),
        ));
    }
    if !resources.contains(&&t.resource) {
        return Err(BearerError::InvalidToken(format!(
            "the access token was issued for {}, not for this server ({})",
            t.resource,
            resources.first().map(|r| r.as_str()).unwrap_or_default()
        )));
    }
    if !required_scope.is_subset_of(&t.scope) {
        return Err(BearerError::InsufficientScope(format!(
            "the access token lacks the scope {required_scope}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scope: &str, resource: &str) -> AccessToken {
        AccessToken {
            token_hash: "h".into(),
            grant_id: "g".into(),
            client_id: ClientId::parse("c").unwrap(),
            user_id: Some("u".into()),
            scope: Scope::parse(scope).unwrap(),
            resource: ResourceUri::parse(resource).unwrap(),
            created_at: 0,
            expires_at: 100,
            revoked_at: None,
        }
    }

    const RES: &str = "https://gate.example/v1/ai/mcp";
    const PRM: &str = "https://gate.example/.well-known/oauth-protected-resource/v1/ai/mcp";

    #[test]
    fn the_missing_token_challenge_has_no_error_attribute() {
        assert_eq!(
            BearerError::Missing.challenge(PRM, "mcp"),
            format!("Bearer resource_metadata=\"{PRM}\", scope=\"mcp\"")
        );
    }

    #[test]
    fn invalid_and_insufficient_challenges_carry_their_codes() {
        let c =
            BearerError::InvalidToken("the access token has expired".into()).challenge(PRM, "mcp");
        assert!(c.starts_with(
            "Bearer error=\"invalid_token\", error_description=\"the access token has expired\""
        ));
        assert!(c.ends_with(&format!("resource_metadata=\"{PRM}\", scope=\"mcp\"")));
        let c = BearerError::InsufficientScope("x\"y".into()).challenge(PRM, "mcp");
        assert!(c.contains("error=\"insufficient_scope\"") && c.contains("x'y"));
        assert_eq!(BearerError::InsufficientScope(String::new()).status(), 403);
    }

    #[test]
    fn header_parsing() {
        assert_eq!(token_from_header(Some("Bearer mcp_abc")), Ok("mcp_abc"));
        assert_eq!(token_from_header(Some("bearer  mcp_abc ")), Ok("mcp_abc"));
        assert_eq!(token_from_header(None), Err(BearerError::Missing));
        assert_eq!(
            token_from_header(Some("Basic abc")),
            Err(BearerError::Missing)
        );
        assert!(matches!(
            token_from_header(Some("Bearer")),
            Err(BearerError::InvalidToken(_))
        ));
        assert!(matches!(
            token_from_header(Some("Bearer   ")),
            Err(BearerError::InvalidToken(_))
        ));
    }

    #[test]
    fn query_tokens_are_refused() {
        assert!(check_query(Some("access_token=mcp_x")).is_err());
        assert!(check_query(Some("session_id=1")).is_ok());
        assert!(check_query(None).is_ok());
    }

    #[test]
    fn token_checks() {
        let main = ResourceUri::parse(RES).unwrap();
        let sse = ResourceUri::parse("https://gate.example/sse").unwrap();
        let res: &[&ResourceUri] = &[&main, &sse];
        let mcp = Scope::parse("mcp").unwrap();
        assert!(
            check(
                Some(&token("mcp", "https://gate.example/sse")),
                res,
                &mcp,
                50
            )
            .is_ok()
        );
        assert!(check(Some(&token("mcp", RES)), res, &mcp, 50).is_ok());
        assert!(matches!(
            check(None, res, &mcp, 50),
            Err(BearerError::InvalidToken(_))
        ));
        let e = check(Some(&token("mcp", RES)), res, &mcp, 100).unwrap_err();
        assert!(e.description().contains("expired"));
        let mut revoked = token("mcp", RES);
        revoked.revoked_at = Some(1);
        assert!(
            check(Some(&revoked), res, &mcp, 50)
                .unwrap_err()
                .description()
                .contains("revoked")
        );
        let e = check(
            Some(&token("mcp", "https://other.example/v1/ai/mcp")),
            res,
            &mcp,
            50,
        )
        .unwrap_err();
        assert!(
            matches!(e, BearerError::InvalidToken(_)) && e.description().contains("other.example")
        );
        let e = check(Some(&token("other", RES)), res, &mcp, 50).unwrap_err();
        assert!(matches!(e, BearerError::InsufficientScope(_)));
        assert!(check_shape("mcp_0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_shape("nope").is_err());
    }

    #[test]
    fn service_and_user_owners_never_collide() {
        let user = Caller {
            subject: Subject::User {
                id: "6f1c0d1e-1111-4222-8333-944445555666".into(),
                username: "alice".into(),
            },
            client_id: ClientId::parse("c1").unwrap(),
            scope: Scope::parse("mcp").unwrap(),
            expires_at: 1,
            token_hash: "h".into(),
            groups: Default::default(),
        };
        let service = Caller {
            subject: Subject::Service {
                name: "alice".into(),
            },
            ..user.clone()
        };
        let other = Caller {
            client_id: ClientId::parse("c2").unwrap(),
            ..service.clone()
        };
        assert_eq!(service.owner(), "client:c1");
        assert_ne!(user.owner(), service.owner());
        assert_ne!(service.owner(), other.owner());
        assert!(service.user().is_none() && service.is_service());
        assert_eq!(
            user.user(),
            Some(("6f1c0d1e-1111-4222-8333-944445555666", "alice"))
        );
    }
}
