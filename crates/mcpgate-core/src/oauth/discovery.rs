//! Discovery documents: authorization server metadata (RFC 8414) and
//! protected resource metadata (RFC 9728), and the start-up check that every
//! advertised URL agrees (RFC 8414 §3.3: `issuer` must equal the URL the
//! document was fetched for; RFC 9728 §3.3: `resource` likewise).
//!
//! All URLs derive from one public URL; none comes from `Host` or
//! `X-Forwarded-*` headers.

use serde::Serialize;
use url::Url;

use super::policy::MCP_PATH;

/// Which OAuth endpoint paths the metadata advertises. Both sets are always
/// served; this only chooses which ones clients are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStyle {
    /// `/v1/oauth/{authorize,token,register,revoke}` (the backend guide).
    V1,
    /// `/{authorize,token,register,revoke}` (the ChatGPT flow document and
    /// the MCP 2025-03-26 fallback paths).
    Root,
}

/// Every URL mcpgate advertises, derived from the public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    /// The public URL with no trailing slash; also the issuer.
    pub issuer: String,
    /// The path part of the public URL (`""` or `/prefix`).
    pub base_path: String,
    pub resource: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: String,
    pub revocation_endpoint: String,
    /// RFC 8414 §3.1: `/.well-known/oauth-authorization-server` inserted
    /// between host and the issuer's path.
    pub as_metadata: String,
    /// RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted
    /// between host and the resource path.
    pub resource_metadata: String,
    /// The legacy SSE endpoint, a second resource identifier of the server.
    pub sse_resource: String,
    /// RFC 9728 §3.1 metadata URL of the SSE resource.
    pub sse_resource_metadata: String,
    /// Its path on this server.
    pub sse_resource_metadata_path: String,
    /// Path of the AS metadata document on this server.
    pub as_metadata_path: String,
    /// Path of the path-suffixed protected resource metadata on this server.
    pub resource_metadata_path: String,
}

/// Why a public URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublicUrlError(pub String);

impl Urls {
    /// Derives every URL from the public URL. A trailing slash is removed;
    /// a query, fragment, user info or a scheme other than http(s) is refused.
    pub fn derive(public_url: &str, style: EndpointStyle) -> Result<Self, PublicUrlError> {
        let trimmed = public_url.trim_end_matches('/');
        let url = Url::parse(trimmed).map_err(|e| {
            PublicUrlError(format!(
                "public_url {public_url:?} is not an absolute URL ({e})"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PublicUrlError(format!(
                "public_url {public_url:?} must start with https:// (or http:// for local use)"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PublicUrlError(format!(
                "public_url {public_url:?} must not have a query or fragment"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PublicUrlError(format!(
                "public_url {public_url:?} must not contain user credentials"
            )));
        }
        let origin = url.origin().ascii_serialization();
        let base_path = url.path().trim_end_matches('/').to_string();
        let issuer = format!("{origin}{base_path}");
        let oauth = match style {
            EndpointStyle::V1 => format!("{issuer}/v1/oauth"),
            EndpointStyle::Root => issuer.clone(),
        };
        let resource_path = format!("{base_path}{MCP_PATH}");
        let as_metadata_path = format!("/.well-known/oauth-authorization-server{base_path}");
        let resource_metadata_path =
            format!("/.well-known/oauth-protected-resource{resource_path}");
        let sse_resource_metadata_path =
            format!("/.well-known/oauth-protected-resource{base_path}/sse");
        Ok(Self {
            resource: format!("{origin}{resource_path}"),
            authorization_endpoint: format!("{oauth}/authorize"),
            token_endpoint: format!("{oauth}/token"),
            registration_endpoint: format!("{oauth}/register"),
            revocation_endpoint: format!("{oauth}/revoke"),
            as_metadata: format!("{origin}{as_metadata_path}"),
            resource_metadata: format!("{origin}{resource_metadata_path}"),
            sse_resource: format!("{origin}{base_path}/sse"),
            sse_resource_metadata: format!("{origin}{sse_resource_metadata_path}"),
            issuer,
            base_path,
            as_metadata_path,
            resource_metadata_path,
            sse_resource_metadata_path,
        })
    }

    /// The start-up consistency check: issuer, resource, metadata URLs and
    /// the challenge URL share scheme and host, have no trailing slash, and
    /// sit where RFC 8414 §3.1 and RFC 9728 §3.1 say clients will look.
    pub fn check_consistency(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let origin_of = |s: &str| Url::parse(s).map(|u| u.origin().ascii_serialization()).ok();
        let Some(origin) = origin_of(&self.issuer) else {
            return Err(vec![format!("issuer {:?} is not a URL", self.issuer)]);
        };
        for (name, value) in [
            ("resource", &self.resource),
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("registration_endpoint", &self.registration_endpoint),
            ("authorization server metadata URL", &self.as_metadata),
            (
                "resource_metadata (401 challenge) URL",
                &self.resource_metadata,
            ),
            ("legacy SSE resource", &self.sse_resource),
            (
                "legacy SSE resource_metadata URL",
                &self.sse_resource_metadata,
            ),
        ] {
            if origin_of(value).as_deref() != Some(origin.as_str()) {
                problems.push(format!(
                    "{name} {value:?} is not on the issuer's origin {origin}"
                ));
            }
            if value.ends_with('/') {
                problems.push(format!("{name} {value:?} ends with a slash"));
            }
        }
        if self.issuer.ends_with('/') {
            problems.push(format!("issuer {:?} ends with a slash", self.issuer));
        }
        // RFC 8414 §3.1: issuer path appended to the well-known prefix.
        let issuer_path = self.issuer.strip_prefix(&origin).unwrap_or_default();
        if self.as_metadata
            != format!("{origin}/.well-known/oauth-authorization-server{issuer_path}")
        {
            problems.push(
                "authorization server metadata URL is not the RFC 8414 §3.1 form of the issuer"
                    .into(),
            );
        }
        let resource_path = self.resource.strip_prefix(&origin).unwrap_or_default();
        if self.resource_metadata
            != format!("{origin}/.well-known/oauth-protected-resource{resource_path}")
        {
            problems
                .push("resource_metadata URL is not the RFC 9728 §3.1 form of the resource".into());
        }
        if !self.resource.starts_with(&self.issuer) {
            problems.push(format!(
                "resource {:?} is not below the issuer {:?}",
                self.resource, self.issuer
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// RFC 8414 §2 authorization server metadata.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// `None` when dynamic client registration is turned off
    /// (`dynamic_client_registration = false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 8414 §2: the algorithms of `private_key_jwt` assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
    /// draft-ietf-oauth-client-id-metadata-document §5: `Some(true)` when
    /// URL client ids are fetched as metadata documents; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
}

const AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

pub fn authorization_server_metadata(
    urls: &Urls,
    scopes: &[String],
    refresh_tokens: bool,
) -> AuthorizationServerMetadata {
    let mut grants = vec!["authorization_code"];
    if refresh_tokens {
        grants.push("refresh_token");
    }
    // RFC 6749 §4.4, MCP SEP-1046: for pre-registered machine clients.
    grants.push("client_credentials");
    AuthorizationServerMetadata {
        issuer: urls.issuer.clone(),
        authorization_endpoint: urls.authorization_endpoint.clone(),
        token_endpoint: urls.token_endpoint.clone(),
        registration_endpoint: Some(urls.registration_endpoint.clone()),
        revocation_endpoint: urls.revocation_endpoint.clone(),
        scopes_supported: scopes.to_vec(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: grants,
        code_challenge_methods_supported: vec!["S256"],
        token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        token_endpoint_auth_signing_alg_values_supported: super::client_assertion::ALGORITHMS
            .to_vec(),
        revocation_endpoint_auth_signing_alg_values_supported: super::client_assertion::ALGORITHMS
            .to_vec(),
        authorization_response_iss_parameter_supported: true,
        service_documentation: None,
        client_id_metadata_document_supported: None,
    }
}

/// RFC 9728 §2 protected resource metadata.
#[derive(Debug, Clone, Serialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: Vec<&'static str>,
    pub resource_name: String,
}

/// RFC 9728 metadata for `resource` (the MCP endpoint, or the SSE endpoint).
pub fn protected_resource_metadata(
    urls: &Urls,
    resource: &str,
    scopes: &[String],
    name: &str,
) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata {
        resource: resource.to_string(),
        authorization_servers: vec![urls.issuer.clone()],
        scopes_supported: scopes.to_vec(),
        bearer_methods_supported: vec!["header"],
        resource_name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_derive_from_a_host_only_public_url() {
        let u = Urls::derive("https://api.example.com/", EndpointStyle::V1).unwrap();
        assert_eq!(u.issuer, "https://api.example.com");
        assert_eq!(u.resource, "https://api.example.com/v1/ai/mcp");
        assert_eq!(
            u.authorization_endpoint,
            "https://api.example.com/v1/oauth/authorize"
        );
        assert_eq!(
            u.as_metadata,
            "https://api.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            u.resource_metadata,
            "https://api.example.com/.well-known/oauth-protected-resource/v1/ai/mcp"
        );
        u.check_consistency().unwrap();
    }

    #[test]
    fn a_public_url_with_a_path_inserts_it_after_the_well_known_prefix() {
        let u = Urls::derive("https://example.com/gate", EndpointStyle::Root).unwrap();
        assert_eq!(u.issuer, "https://example.com/gate");
        assert_eq!(u.token_endpoint, "https://example.com/gate/token");
        assert_eq!(
            u.as_metadata,
            "https://example.com/.well-known/oauth-authorization-server/gate"
        );
        assert_eq!(
            u.resource_metadata,
            "https://example.com/.well-known/oauth-protected-resource/gate/v1/ai/mcp"
        );
        u.check_consistency().unwrap();
    }

    #[test]
    fn bad_public_urls_are_refused() {
        for bad in [
            "ftp://x",
            "https://x/?a=1",
            "https://x/#f",
            "https://u:p@x",
            "x",
        ] {
            assert!(Urls::derive(bad, EndpointStyle::V1).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_consistency_check_catches_disagreeing_urls() {
        let mut u = Urls::derive("https://api.example.com", EndpointStyle::V1).unwrap();
        u.resource = "https://other.example.com/v1/ai/mcp".into();
        u.token_endpoint = "https://api.example.com/v1/oauth/token/".into();
        let problems = u.check_consistency().unwrap_err();
        assert!(problems.iter().any(|p| p.contains("resource")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("token_endpoint") && p.contains("slash"))
        );
    }

    #[test]
    fn metadata_documents_carry_the_required_fields() {
        let u = Urls::derive("https://api.example.com", EndpointStyle::V1).unwrap();
        let m =
            serde_json::to_value(authorization_server_metadata(&u, &["mcp".into()], true)).unwrap();
        assert_eq!(m["issuer"], "https://api.example.com");
        assert_eq!(
            m["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(
            m["registration_endpoint"],
            "https://api.example.com/v1/oauth/register"
        );
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "none",
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        assert_eq!(
            m["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["RS256", "PS256", "ES256", "EdDSA"])
        );
        assert_eq!(
            m["revocation_endpoint_auth_signing_alg_values_supported"],
            m["token_endpoint_auth_signing_alg_values_supported"]
        );
        let m = serde_json::to_value(authorization_server_metadata(&u, &["mcp".into()], false))
            .unwrap();
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!(["authorization_code", "client_credentials"])
        );
        let p = serde_json::to_value(protected_resource_metadata(
            &u,
            &u.resource,
            &["mcp".into()],
            "mcpgate",
        ))
        .unwrap();
        assert_eq!(p["resource"], "https://api.example.com/v1/ai/mcp");
        assert_eq!(
            p["authorization_servers"],
            serde_json::json!(["https://api.example.com"])
        );
        assert_eq!(p["bearer_methods_supported"], serde_json::json!(["header"]));
    }
}
