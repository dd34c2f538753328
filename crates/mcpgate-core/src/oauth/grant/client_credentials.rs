//! The client_credentials grant (RFC 6749 §4.4), for machine clients: MCP's
//! OAuth client credentials extension (SEP-1046,
//! `io.modelcontextprotocol/oauth-client-credentials`).
//!
//! - Only confidential clients (§4.4: "MUST only be used by confidential
//!   clients"): a client secret or `private_key_jwt` (RFC 7523 §2.2). A
//!   public client is refused with `invalid_client`; the caller has already
//!   authenticated the client by whichever method it registered.
//! - Only clients the operator pre-registered (`mcpgate client add`) and gave
//!   the `client_credentials` grant: a self-registered (RFC 7591) or
//!   metadata-document client names itself, so it cannot be trusted to act
//!   as a service. Others get `unauthorized_client` (§5.2).
//! - `scope` (§4.4.2, §3.3): optional, the client's scopes by default, never
//!   beyond them (`invalid_scope`). `offline_access` is dropped: no refresh
//!   token is issued (§4.4.3).
//! - `resource` (RFC 8707 §2.2): one of this server's resources, the MCP
//!   endpoint by default, like the authorization request.
//!
//! The token's subject is the client itself, never a user.

use crate::domain::{ResourceUri, Scope};
use crate::model::{Client, ClientKind, GrantType, TokenEndpointAuthMethod};
use crate::oauth::OAuthError;
use crate::oauth::policy::{OFFLINE_ACCESS, Policy};
use crate::oauth::token::ClientCredentialsRequest;

/// What a successful request is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub scope: Scope,
    pub resource: ResourceUri,
}

/// Whether a client can prove who it is without a user: a shared secret it
/// holds, or a key pair (`private_key_jwt`).
pub fn is_confidential(client: &Client) -> bool {
    match client.metadata.token_endpoint_auth_method {
        TokenEndpointAuthMethod::None => false,
        TokenEndpointAuthMethod::PrivateKeyJwt => true,
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost => {
            client.secret_hash.is_some()
        }
    }
}

/// Decides on a client credentials request of an authenticated client.
pub fn decide(
    client: &Client,
    req: &ClientCredentialsRequest,
    policy: &Policy,
) -> Result<Granted, OAuthError> {
    if !is_confidential(client) {
        return Err(OAuthError::invalid_client(
            "this is a public client: the client_credentials grant needs a client that authenticates (a client secret or private_key_jwt; RFC 6749 §4.4)",
        ));
    }
    if client.kind != ClientKind::Preregistered {
        return Err(OAuthError::unauthorized_client(
            "only clients added by the operator (mcpgate client add --grant-types client_credentials) may use the client_credentials grant; this client registered itself",
        ));
    }
    if !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "this client was not given the client_credentials grant (mcpgate client add --grant-types client_credentials)",
        ));
    }
    let given = client
        .metadata
        .scope
        .clone()
        .unwrap_or_else(|| policy.required_scope());
    let scope = match &req.scope {
        None => given.without(OFFLINE_ACCESS).unwrap_or(given),
        Some(asked) => {
            let unknown = policy.unknown_scopes(asked);
            if !unknown.is_empty() {
                return Err(OAuthError::invalid_scope(format!(
                    "unknown scope {}; this server offers: {}",
                    unknown.join(" "),
                    policy.scopes_supported.join(" ")
                )));
            }
            // No refresh token here (RFC 6749 §4.4.3): offline_access is
            // left out of the granted scope.
            let Some(asked) = asked.without(OFFLINE_ACCESS) else {
                return Err(OAuthError::invalid_scope(
                    "offline_access alone grants nothing here: the client_credentials grant issues no refresh token; ask for the scopes you need",
                ));
            };
            if !asked.is_subset_of(&given) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {asked} goes beyond the scopes this client was given ({given})"
                )));
            }
            asked
        }
    };
    let resource = match req.resource.as_deref() {
        None if policy.require_resource => {
            return Err(OAuthError::invalid_target(format!(
                "the resource parameter is required; set it to the MCP endpoint URL {}",
                policy.resource
            )));
        }
        None => policy.resource.clone(),
        Some(r) => {
            ResourceUri::parse(r).map_err(|e| OAuthError::invalid_target(e.0))?;
            policy.resource_named(r).cloned().ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "resource {r} is not served here; the resource must be the MCP endpoint URL {}",
                    policy.resource
                ))
            })?
        }
    };
    Ok(Granted { scope, resource })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClientId;
    use crate::model::ClientMetadata;

    fn client(
        method: TokenEndpointAuthMethod,
        kind: ClientKind,
        grants: &[GrantType],
        scope: Option<&str>,
    ) -> Client {
        Client {
            client_id: ClientId::parse("svc").unwrap(),
            secret_hash: method.uses_secret().then(|| "h".to_string()),
            metadata: ClientMetadata {
                redirect_uris: vec![],
                token_endpoint_auth_method: method,
                grant_types: grants.to_vec(),
                response_types: vec![],
                client_name: Some("Nightly job".into()),
                client_uri: None,
                logo_uri: None,
                tos_uri: None,
                policy_uri: None,
                scope: scope.map(|s| Scope::parse(s).unwrap()),
                contacts: vec![],
                software_id: None,
                software_version: None,
                application_type: None,
                jwks_uri: (method == TokenEndpointAuthMethod::PrivateKeyJwt)
                    .then(|| "https://svc.example/jwks".to_string()),
                jwks: None,
            },
            issued_at: 0,
            last_used_at: None,
            kind,
        }
    }

    fn machine(scope: Option<&str>) -> Client {
        client(
            TokenEndpointAuthMethod::ClientSecretBasic,
            ClientKind::Preregistered,
            &[GrantType::ClientCredentials],
            scope,
        )
    }

    fn policy() -> Policy {
        let mut p = Policy::example();
        p.scopes_supported = vec!["mcp".into(), "admin".into()];
        p
    }

    fn req(scope: Option<&str>, resource: Option<&str>) -> ClientCredentialsRequest {
        ClientCredentialsRequest {
            scope: scope.map(|s| Scope::parse(s).unwrap()),
            resource: resource.map(str::to_string),
        }
    }

    #[test]
    fn a_machine_client_gets_its_scopes_for_the_mcp_endpoint_by_default() {
        let p = policy();
        let g = decide(&machine(Some("mcp admin")), &req(None, None), &p).unwrap();
        assert_eq!(g.scope.to_string(), "admin mcp");
        assert_eq!(g.resource, p.resource);
        let g = decide(&machine(None), &req(None, None), &p).unwrap();
        assert_eq!(g.scope.to_string(), "mcp");
    }

    #[test]
    fn a_narrower_scope_and_an_explicit_resource_are_granted() {
        let p = policy();
        let g = decide(
            &machine(Some("mcp admin")),
            &req(Some("mcp offline_access"), Some("https://gate.example/sse")),
            &p,
        )
        .unwrap();
        assert_eq!(g.scope.to_string(), "mcp");
        assert_eq!(g.resource.as_str(), "https://gate.example/sse");
    }

    #[test]
    fn a_private_key_jwt_client_qualifies_without_a_secret() {
        let c = client(
            TokenEndpointAuthMethod::PrivateKeyJwt,
            ClientKind::Preregistered,
            &[GrantType::ClientCredentials],
            Some("mcp"),
        );
        assert!(c.secret_hash.is_none());
        assert!(decide(&c, &req(None, None), &policy()).is_ok());
    }

    #[test]
    fn public_self_registered_and_ungranted_clients_are_refused() {
        let p = policy();
        let public = client(
            TokenEndpointAuthMethod::None,
            ClientKind::Preregistered,
            &[GrantType::ClientCredentials],
            None,
        );
        assert_eq!(
            decide(&public, &req(None, None), &p)
                .unwrap_err()
                .code
                .as_str(),
            "invalid_client"
        );
        for kind in [ClientKind::Dynamic, ClientKind::MetadataDocument] {
            let c = client(
                TokenEndpointAuthMethod::ClientSecretPost,
                kind,
                &[GrantType::ClientCredentials],
                None,
            );
            let e = decide(&c, &req(None, None), &p).unwrap_err();
            assert_eq!(e.code.as_str(), "unauthorized_client");
            assert!(e.description.contains("registered itself"));
        }
        let c = client(
            TokenEndpointAuthMethod::ClientSecretBasic,
            ClientKind::Preregistered,
            &[GrantType::AuthorizationCode],
            None,
        );
        let e = decide(&c, &req(None, None), &p).unwrap_err();
        assert_eq!(e.code.as_str(), "unauthorized_client");
        assert!(e.description.contains("not given"));
        // A secret method without a stored secret is no confidential client.
        let mut broken = machine(None);
        broken.secret_hash = None;
        assert_eq!(
            decide(&broken, &req(None, None), &p)
                .unwrap_err()
                .code
                .as_str(),
            "invalid_client"
        );
    }

    #[test]
    fn scopes_beyond_the_clients_or_unknown_ones_are_invalid_scope() {
        let p = policy();
        for (given, asked) in [
            (Some("mcp"), "mcp admin"),
            (None, "admin"),
            (Some("mcp"), "other"),
            (Some("mcp"), "offline_access"),
        ] {
            let e = decide(&machine(given), &req(Some(asked), None), &p).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_scope", "{given:?} {asked}");
        }
    }

    #[test]
    fn resources_not_served_here_are_invalid_target() {
        let mut p = policy();
        let e = decide(
            &machine(None),
            &req(None, Some("https://other.example/mcp")),
            &p,
        )
        .unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
        p.require_resource = true;
        let e = decide(&machine(None), &req(None, None), &p).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
        assert!(
            decide(
                &machine(None),
                &req(None, Some("https://gate.example/v1/ai/mcp")),
                &p
            )
            .is_ok()
        );
    }
}
