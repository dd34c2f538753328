//! The authorization_code grant (RFC 6749 §4.1.3).

use super::check_resource;
use crate::model::{AuthCode, Client, GrantType, UnixTime};
use crate::oauth::policy::Policy;
use crate::oauth::token::CodeRequest;
use crate::oauth::{OAuthError, SecurityEvent};

/// Checks a token request against the stored code. An error carrying
/// [`SecurityEvent::CodeReplay`] means the code was already used: the
/// caller must revoke every token issued from it (RFC 9700 §4.2.4).
pub fn check(
    code: &AuthCode,
    req: &CodeRequest,
    client: &Client,
    policy: &Policy,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if code.used_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "this authorization code was already used; the tokens issued from it are now revoked",
        )
        .with_event(SecurityEvent::CodeReplay));
    }
    if code.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "this authorization code was issued to another client",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this client did not register the authorization_code grant",
        ));
    }
    if now >= code.expires_at {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired; start the authorization again",
        ));
    }
    match (&req.redirect_uri, code.redirect_uri_explicit) {
        (None, true) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request included one (RFC 6749 §4.1.3)",
            ));
        }
        (Some(sent), _) if sent != code.redirect_uri.as_str() => {
            return Err(OAuthError::invalid_grant(format!(
                "redirect_uri {sent} differs from the one used in the authorization request"
            ))
            .with_event(SecurityEvent::RedirectUriMismatch));
        }
        _ => {}
    }
    match (&code.code_challenge, &req.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !challenge.verify(verifier) {
                return Err(OAuthError::invalid_grant(
                    "PKCE verification failed: code_verifier does not match the code_challenge",
                )
                .with_event(SecurityEvent::PkceMismatch));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required: the authorization request used PKCE",
            )
            .with_event(SecurityEvent::PkceMismatch));
        }
        (None, Some(_)) => {
            // RFC 9700 §2.1.1: refuse a verifier for a code issued without a challenge.
            return Err(OAuthError::invalid_grant(
                "code_verifier was sent, but the authorization request had no code_challenge",
            )
            .with_event(SecurityEvent::PkceDowngrade));
        }
        (None, None) => {}
    }
    check_resource(req.resource.as_deref(), &code.resource, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkce_s256;
    use crate::domain::{ClientId, CodeChallenge, CodeVerifier, RedirectUri, Scope};
    use crate::model::{ClientMetadata, TokenEndpointAuthMethod};
    use crate::secret::Secret;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn client(id: &str) -> Client {
        Client {
            client_id: ClientId::parse(id).unwrap(),
            secret_hash: None,
            metadata: ClientMetadata {
                redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
                token_endpoint_auth_method: TokenEndpointAuthMethod::None,
                grant_types: vec![GrantType::AuthorizationCode],
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

    fn code(challenge: bool) -> AuthCode {
        let p = Policy::example();
        AuthCode {
            code_hash: "h".into(),
            grant_id: "g".into(),
            client_id: ClientId::parse("c1").unwrap(),
            user_id: "u".into(),
            redirect_uri: RedirectUri::parse("https://app.example/cb").unwrap(),
            redirect_uri_explicit: true,
            scope: Scope::parse("mcp").unwrap(),
            resource: p.resource.clone(),
            code_challenge: challenge
                .then(|| CodeChallenge::parse(&pkce_s256(VERIFIER), Some("S256")).unwrap()),
            created_at: 100,
            expires_at: 160,
            used_at: None,
        }
    }

    fn req(verifier: Option<&str>, redirect: Option<&str>, resource: Option<&str>) -> CodeRequest {
        CodeRequest {
            code: Secret::new("c".into()),
            redirect_uri: redirect.map(str::to_string),
            code_verifier: verifier.map(|v| CodeVerifier::parse(v).unwrap()),
            resource: resource.map(str::to_string),
        }
    }

    const CB: Option<&str> = Some("https://app.example/cb");

    #[test]
    fn a_matching_request_passes() {
        let p = Policy::example();
        check(
            &code(true),
            &req(Some(VERIFIER), CB, Some("https://gate.example/v1/ai/mcp")),
            &client("c1"),
            &p,
            120,
        )
        .unwrap();
    }

    #[test]
    fn each_mismatch_fails_with_its_code_and_event() {
        let p = Policy::example();
        let c = client("c1");
        let e = check(
            &code(true),
            &req(Some(&"x".repeat(43)), CB, None),
            &c,
            &p,
            120,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.event),
            ("invalid_grant", Some(SecurityEvent::PkceMismatch))
        );
        let e = check(&code(true), &req(None, CB, None), &c, &p, 120).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_grant");
        let e = check(&code(false), &req(Some(VERIFIER), CB, None), &c, &p, 120).unwrap_err();
        assert_eq!(e.event, Some(SecurityEvent::PkceDowngrade));
        let e = check(
            &code(true),
            &req(Some(VERIFIER), Some("https://app.example/other"), None),
            &c,
            &p,
            120,
        )
        .unwrap_err();
        assert_eq!(e.event, Some(SecurityEvent::RedirectUriMismatch));
        let e = check(&code(true), &req(Some(VERIFIER), None, None), &c, &p, 120).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
        let e = check(&code(true), &req(Some(VERIFIER), CB, None), &c, &p, 160).unwrap_err();
        assert!(e.description.contains("expired"));
        let e = check(
            &code(true),
            &req(Some(VERIFIER), CB, None),
            &client("other"),
            &p,
            120,
        )
        .unwrap_err();
        assert!(e.description.contains("another client"));
        let e = check(
            &code(true),
            &req(Some(VERIFIER), CB, Some("https://gate.example/x")),
            &c,
            &p,
            120,
        )
        .unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
        let mut used = code(true);
        used.used_at = Some(110);
        let e = check(&used, &req(Some(VERIFIER), CB, None), &c, &p, 120).unwrap_err();
        assert_eq!(e.event, Some(SecurityEvent::CodeReplay));
    }

    #[test]
    fn a_pkce_exempt_code_needs_no_verifier() {
        check(
            &code(false),
            &req(None, CB, None),
            &client("c1"),
            &Policy::example(),
            120,
        )
        .unwrap();
    }
}
