//! Clients the operator pre-registers (`mcpgate client add`): the rules for
//! the metadata they are given. The operator is trusted, but a mistake
//! must be refused with a clear message rather than stored.
//!
//! - Exactly one way to authenticate: public (`none`), a shared secret
//!   (`client_secret_basic`; `client_secret_post` is accepted as well), or
//!   `private_key_jwt` (RFC 7523 §2.2) with `jwks_uri` or an inline `jwks`
//!   (RFC 7591 §2: never both).
//! - An inline JWK Set (RFC 7517 §5) holds public keys only: asymmetric
//!   key types (`RSA`, `EC`, `OKP`) and none of the private members
//!   (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2: `d`, `p`, `q`, `dp`, `dq`,
//!   `qi`, `oth`), never a symmetric key (`oct`, `k`).
//! - Grant types (RFC 7591 §2): `authorization_code` needs a redirect URI
//!   (RFC 6749 §3.1.2); `refresh_token` only with `authorization_code`
//!   (there is nothing else to refresh); `client_credentials` only for
//!   confidential clients (RFC 6749 §4.4).
//! - The client's scopes must be among the server's (`offline_access` is
//!   always allowed, see [`super::policy::OFFLINE_ACCESS`]).
//! - A `client_id` may not be an https URL: those name Client ID Metadata
//!   Documents.

use serde_json::Value;

use super::client_assertion::PRIVATE_MEMBERS;
use super::policy::Policy;
use crate::domain::{ClientId, RedirectUri, Scope};
use crate::model::{ClientMetadata, GrantType, TokenEndpointAuthMethod};

/// How a pre-registered client authenticates.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    Public,
    /// A secret is generated and shown once.
    Secret,
    JwksUri(String),
    Jwks(Value),
}

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub auth: Auth,
    /// Empty: the default (see [`build`]).
    pub grant_types: Vec<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
}

/// Builds the metadata (and checks the client id) of a pre-registered
/// client. Grant types default to `authorization_code` and `refresh_token`
/// when redirect URIs are given, else to `client_credentials` for a
/// confidential client. The scope defaults to the server's default scope.
pub fn build(req: &Request, policy: &Policy) -> Result<(Option<ClientId>, ClientMetadata), String> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err("--name must not be empty".into());
    }
    let client_id = match &req.client_id {
        None => None,
        Some(id) if id.to_ascii_lowercase().starts_with("https://") => {
            return Err(format!(
                "--client-id {id:?} is an https URL: such client ids name Client ID Metadata Documents; choose another id"
            ));
        }
        Some(id) => Some(ClientId::parse(id).map_err(|e| format!("--client-id: {}", e.0))?),
    };
    let mut redirect_uris = Vec::new();
    for r in &req.redirect_uris {
        let uri = RedirectUri::parse(r).map_err(|e| format!("--redirect-uri {r}: {}", e.0))?;
        if !redirect_uris.contains(&uri) {
            redirect_uris.push(uri);
        }
    }
    let (method, jwks_uri, jwks) = match &req.auth {
        Auth::Public => (TokenEndpointAuthMethod::None, None, None),
        Auth::Secret => (TokenEndpointAuthMethod::ClientSecretBasic, None, None),
        Auth::JwksUri(u) => {
            check_jwks_uri(u)?;
            (
                TokenEndpointAuthMethod::PrivateKeyJwt,
                Some(u.clone()),
                None,
            )
        }
        Auth::Jwks(set) => {
            check_public_jwks(set)?;
            (
                TokenEndpointAuthMethod::PrivateKeyJwt,
                None,
                Some(set.clone()),
            )
        }
    };
    let confidential = method.is_confidential();
    let mut grant_types = Vec::new();
    for g in &req.grant_types {
        let gt = GrantType::parse(g.trim()).ok_or_else(|| {
            format!(
                "--grant-types {g:?} is not a grant type; use authorization_code, refresh_token or client_credentials"
            )
        })?;
        if !grant_types.contains(&gt) {
            grant_types.push(gt);
        }
    }
    if grant_types.is_empty() {
        grant_types = match (redirect_uris.is_empty(), confidential) {
            (false, _) => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            (true, true) => vec![GrantType::ClientCredentials],
            (true, false) => {
                return Err("a public client signs users in through a browser: give it at least one --redirect-uri".into());
            }
        };
    }
    let has = |g| grant_types.contains(&g);
    if has(GrantType::ClientCredentials) && !confidential {
        return Err("client_credentials is only for confidential clients (RFC 6749 §4.4): use --secret, --jwks-uri or --jwks-file instead of --public".into());
    }
    if has(GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(
            "the authorization_code grant needs at least one --redirect-uri (RFC 6749 §3.1.2)"
                .into(),
        );
    }
    if has(GrantType::RefreshToken) && !has(GrantType::AuthorizationCode) {
        return Err("refresh_token goes with authorization_code: the client_credentials grant issues no refresh token (RFC 6749 §4.4.3)".into());
    }
    if !redirect_uris.is_empty() && !has(GrantType::AuthorizationCode) {
        return Err(
            "--redirect-uri is only used by the authorization_code grant; add it to --grant-types or drop the redirect URIs"
                .into(),
        );
    }
    let scope = match req.scope.as_deref().map(str::trim) {
        None | Some("") => policy.default_scope.clone(),
        Some(s) => {
            let scope = Scope::parse(s).map_err(|e| format!("--scope: {}", e.0))?;
            let unknown = policy.unknown_scopes(&scope);
            if !unknown.is_empty() {
                return Err(format!(
                    "--scope {} is not offered by this server (scopes = {:?})",
                    unknown.join(" "),
                    policy.scopes_supported
                ));
            }
            scope
        }
    };
    let response_types = if has(GrantType::AuthorizationCode) {
        vec!["code".to_string()]
    } else {
        Vec::new()
    };
    Ok((
        client_id,
        ClientMetadata {
            redirect_uris,
            token_endpoint_auth_method: method,
            grant_types,
            response_types,
            client_name: Some(name.to_string()),
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            scope: Some(scope),
            contacts: Vec::new(),
            software_id: None,
            software_version: None,
            application_type: None,
            jwks_uri,
            jwks,
        },
    ))
}

/// An https URL (http only for a loopback host, for tests and local
/// services).
fn check_jwks_uri(u: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("--jwks-uri {u}: {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "--jwks-uri {u} must be an https URL (http only on localhost)"
        )),
    }
}

/// Checks that `set` is a JWK Set of public asymmetric keys.
pub fn check_public_jwks(set: &Value) -> Result<(), String> {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWK Set must be a JSON object with a \"keys\" array (RFC 7517 §5)")?;
    if keys.is_empty() {
        return Err("the JWK Set has no keys".into());
    }
    for (i, key) in keys.iter().enumerate() {
        let Some(obj) = key.as_object() else {
            return Err(format!("key {i} of the JWK Set is not a JSON object"));
        };
        let label = obj
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("key {i}"), |k| format!("key {k:?}"));
        match obj.get("kty").and_then(Value::as_str) {
            Some("RSA" | "EC" | "OKP") => {}
            Some("oct") => {
                return Err(format!(
                    "{label} is a symmetric key (kty oct): private_key_jwt needs public keys"
                ));
            }
            Some(other) => return Err(format!("{label} has an unknown kty {other:?}")),
            None => return Err(format!("{label} has no kty (RFC 7517 §4.1)")),
        }
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(format!(
                "{label} contains the private member {m:?}: give mcpgate the public keys only, and keep the private key with the client"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(auth: Auth, redirects: &[&str], grants: &[&str]) -> Request {
        Request {
            name: "Job".into(),
            redirect_uris: redirects.iter().map(|s| s.to_string()).collect(),
            auth,
            grant_types: grants.iter().map(|s| s.to_string()).collect(),
            scope: None,
            client_id: None,
        }
    }

    fn policy() -> Policy {
        let mut p = Policy::example();
        p.scopes_supported = vec!["mcp".into(), "admin".into()];
        p
    }

    fn rsa_public() -> Value {
        json!({"keys": [{"kty": "RSA", "kid": "k1", "n": "abc", "e": "AQAB", "alg": "RS256"}]})
    }

    #[test]
    fn defaults_follow_the_redirect_uris_and_the_auth_method() {
        let p = policy();
        let (_, m) = build(&req(Auth::Secret, &[], &[]), &p).unwrap();
        assert_eq!(m.grant_types, vec![GrantType::ClientCredentials]);
        assert_eq!(
            m.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(m.scope.unwrap().to_string(), "mcp");
        assert!(m.response_types.is_empty());
        let (_, m) = build(&req(Auth::Public, &["http://localhost/cb"], &[]), &p).unwrap();
        assert_eq!(
            m.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(m.response_types, vec!["code".to_string()]);
        assert!(build(&req(Auth::Public, &[], &[]), &p).is_err());
    }

    #[test]
    fn private_key_jwt_keeps_the_keys_or_their_uri() {
        let p = policy();
        let (_, m) = build(
            &req(Auth::JwksUri("https://svc.example/jwks".into()), &[], &[]),
            &p,
        )
        .unwrap();
        assert_eq!(
            m.token_endpoint_auth_method,
            TokenEndpointAuthMethod::PrivateKeyJwt
        );
        assert_eq!(m.jwks_uri.as_deref(), Some("https://svc.example/jwks"));
        let (_, m) = build(&req(Auth::Jwks(rsa_public()), &[], &[]), &p).unwrap();
        assert_eq!(m.jwks, Some(rsa_public()));
        assert!(
            build(
                &req(Auth::JwksUri("http://svc.example/jwks".into()), &[], &[]),
                &p
            )
            .is_err()
        );
        assert!(
            build(
                &req(Auth::JwksUri("http://localhost:9/jwks".into()), &[], &[]),
                &p
            )
            .is_ok()
        );
    }

    #[test]
    fn jwk_sets_with_private_or_symmetric_keys_are_refused() {
        assert!(check_public_jwks(&rsa_public()).is_ok());
        assert!(
            check_public_jwks(&json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "a"}]}))
                .is_ok()
        );
        for (bad, says) in [
            (
                json!({"keys": [{"kty": "RSA", "kid": "k", "n": "a", "e": "AQAB", "d": "x"}]}),
                "private member \"d\"",
            ),
            (
                json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]}),
                "private",
            ),
            (
                json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
                "symmetric",
            ),
            (json!({"keys": []}), "no keys"),
            (json!([{"kty": "RSA"}]), "\"keys\" array"),
            (json!({"keys": [{"n": "a"}]}), "no kty"),
            (json!({"keys": ["x"]}), "not a JSON object"),
        ] {
            let e = check_public_jwks(&bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn bad_combinations_are_refused_with_the_reason() {
        let p = policy();
        for (r, says) in [
            (
                req(
                    Auth::Public,
                    &["http://localhost/cb"],
                    &["client_credentials"],
                ),
                "only for confidential",
            ),
            (
                req(Auth::Secret, &[], &["authorization_code"]),
                "needs at least one --redirect-uri",
            ),
            (
                req(Auth::Secret, &[], &["client_credentials", "refresh_token"]),
                "refresh_token goes with",
            ),
            (
                req(
                    Auth::Secret,
                    &["http://localhost/cb"],
                    &["client_credentials"],
                ),
                "only used by the authorization_code",
            ),
            (req(Auth::Secret, &[], &["password"]), "not a grant type"),
            (req(Auth::Secret, &["not a uri"], &[]), "--redirect-uri"),
        ] {
            let e = build(&r, &p).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let mut r = req(Auth::Secret, &[], &[]);
        r.scope = Some("mcp other".into());
        assert!(build(&r, &p).unwrap_err().contains("other"));
        r.scope = Some("admin offline_access".into());
        assert_eq!(
            build(&r, &p).unwrap().1.scope.unwrap().to_string(),
            "admin offline_access"
        );
        r.client_id = Some("https://app.example/client.json".into());
        assert!(build(&r, &p).unwrap_err().contains("Client ID Metadata"));
        r.client_id = Some("ci-runner".into());
        assert_eq!(build(&r, &p).unwrap().0.unwrap().as_str(), "ci-runner");
        r.name = " ".into();
        assert!(build(&r, &p).is_err());
    }
}
