//! The refresh_token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1).
//!
//! Every refresh rotates the token. Presenting a rotated token again is
//! reuse: the whole grant is revoked, because either the client or an
//! attacker holds a stolen copy. One exception keeps honest clients alive:
//! within the grace window after the rotation, while the successor is still
//! unused, the same successor is handed out again ([`Decision::Replay`]).

use super::check_resource;
use crate::domain::Scope;
use crate::model::{Client, GrantType, RefreshToken, UnixTime};
use crate::oauth::policy::Policy;
use crate::oauth::token::RefreshRequest;
use crate::oauth::{OAuthError, SecurityEvent};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Rotate: issue a successor with this scope.
    Rotate { scope: Scope },
    /// Inside the grace window: return the existing successor again.
    Replay,
}

/// Decides on a refresh. `successor` is the stored successor of `token`
/// when it has been rotated. An error carrying
/// [`SecurityEvent::RefreshTokenReuse`] means the caller must revoke the
/// grant.
pub fn decide(
    token: &RefreshToken,
    successor: Option<&RefreshToken>,
    req: &RefreshRequest,
    client: &Client,
    policy: &Policy,
    now: UnixTime,
) -> Result<Decision, OAuthError> {
    if token.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "this refresh token was issued to another client",
        ));
    }
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client(
            "this client did not register the refresh_token grant",
        ));
    }
    if token.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "this refresh token has been revoked; sign in again",
        ));
    }
    if now >= token.expires_at {
        return Err(OAuthError::invalid_grant(
            "this refresh token has expired; sign in again",
        ));
    }
    check_resource(req.resource.as_deref(), &token.resource, policy)?;
    let scope = match &req.scope {
        None => token.scope.clone(),
        Some(s) if s.is_subset_of(&token.scope) => s.clone(),
        Some(s) => {
            return Err(OAuthError::invalid_scope(format!(
                "scope {s} goes beyond the scope of this grant ({})",
                token.scope
            )));
        }
    };
    match token.rotated_at {
        None => Ok(Decision::Rotate { scope }),
        Some(rotated_at) => {
            let within_grace = policy.refresh_grace > 0 && now - rotated_at <= policy.refresh_grace;
            let successor_unused = successor.is_some_and(|s| s.is_active(now));
            if within_grace && successor_unused {
                Ok(Decision::Replay)
            } else {
                Err(OAuthError::invalid_grant(
                    "this refresh token was already used; for safety every token of this grant is now revoked, sign in again",
                )
                .with_event(SecurityEvent::RefreshTokenReuse))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientId, RedirectUri};
    use crate::model::{ClientMetadata, TokenEndpointAuthMethod};
    use crate::secret::Secret;

    fn client() -> Client {
        Client {
            client_id: ClientId::parse("c1").unwrap(),
            secret_hash: None,
            metadata: ClientMetadata {
                redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
                token_endpoint_auth_method: TokenEndpointAuthMethod::None,
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                response_types: vec!["code".into()],
                client_name: None,
                client_uri: None,
                logo_uri: None,
                tos_uri: None,
                policy_uri: None,
                scope: None,
                contacts: vec![],
                software_id: None,
                software_version: None,
                application_type: None,
                jwks_uri: None,
                jwks: None,
            },
            issued_at: 0,
            last_used_at: None,
            kind: crate::model::ClientKind::Dynamic,
        }
    }

    fn token(hash: &str) -> RefreshToken {
        RefreshToken {
            token_hash: hash.into(),
            grant_id: "g".into(),
            client_id: ClientId::parse("c1").unwrap(),
            user_id: "u".into(),
            scope: Scope::parse("mcp").unwrap(),
            resource: Policy::example().resource,
            created_at: 0,
            expires_at: 10_000,
            rotated_at: None,
            successor_hash: None,
            revoked_at: None,
        }
    }

    fn req(scope: Option<&str>) -> RefreshRequest {
        RefreshRequest {
            refresh_token: Secret::new("t".into()),
            scope: scope.map(|s| Scope::parse(s).unwrap()),
            resource: None,
        }
    }

    #[test]
    fn an_active_token_rotates_with_its_scope_or_a_narrower_one() {
        let p = Policy::example();
        assert_eq!(
            decide(&token("a"), None, &req(None), &client(), &p, 100).unwrap(),
            Decision::Rotate {
                scope: Scope::parse("mcp").unwrap()
            }
        );
        let e = decide(
            &token("a"),
            None,
            &req(Some("mcp admin")),
            &client(),
            &p,
            100,
        )
        .unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_scope");
    }

    #[test]
    fn reuse_within_grace_replays_and_after_grace_revokes() {
        let p = Policy::example();
        let mut old = token("a");
        old.rotated_at = Some(100);
        old.successor_hash = Some("b".into());
        let succ = token("b");
        assert_eq!(
            decide(
                &old,
                Some(&succ),
                &req(None),
                &client(),
                &p,
                100 + p.refresh_grace
            )
            .unwrap(),
            Decision::Replay
        );
        let e = decide(
            &old,
            Some(&succ),
            &req(None),
            &client(),
            &p,
            101 + p.refresh_grace,
        )
        .unwrap_err();
        assert_eq!(e.event, Some(SecurityEvent::RefreshTokenReuse));
        // The successor was itself used: replaying the old one is reuse even inside the window.
        let mut used = succ.clone();
        used.rotated_at = Some(101);
        let e = decide(&old, Some(&used), &req(None), &client(), &p, 102).unwrap_err();
        assert_eq!(e.event, Some(SecurityEvent::RefreshTokenReuse));
    }

    #[test]
    fn a_zero_grace_period_turns_replay_off() {
        let mut p = Policy::example();
        p.refresh_grace = 0;
        let mut old = token("a");
        old.rotated_at = Some(100);
        let e = decide(&old, Some(&token("b")), &req(None), &client(), &p, 100).unwrap_err();
        assert_eq!(e.event, Some(SecurityEvent::RefreshTokenReuse));
    }

    #[test]
    fn revoked_expired_or_foreign_tokens_fail() {
        let p = Policy::example();
        let mut t = token("a");
        t.revoked_at = Some(1);
        assert!(
            decide(&t, None, &req(None), &client(), &p, 100)
                .unwrap_err()
                .description
                .contains("revoked")
        );
        assert!(
            decide(&token("a"), None, &req(None), &client(), &p, 10_000)
                .unwrap_err()
                .description
                .contains("expired")
        );
        let mut t = token("a");
        t.client_id = ClientId::parse("c2").unwrap();
        assert!(
            decide(&t, None, &req(None), &client(), &p, 100)
                .unwrap_err()
                .description
                .contains("another client")
        );
    }
}
