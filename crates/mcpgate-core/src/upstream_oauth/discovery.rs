//! Discovery of an upstream MCP server's authorization server, as an MCP
//! client does it (MCP 2025-11-25, Authorization, §Authorization Server
//! Discovery):
//!
//! 1. the upstream answers `401` with `WWW-Authenticate: Bearer
//!    resource_metadata="…"` ([`Challenge::parse`], RFC 9728 §5.1); without
//!    that parameter the client tries the well-known URLs of the resource
//!    ([`resource_metadata_urls`], RFC 9728 §3.1: the well-known suffix
//!    inserted between host and path, then at the root);
//! 2. the protected resource metadata names the authorization servers
//!    ([`ResourceMetadata::parse`], RFC 9728 §3.3: its `resource` must be
//!    the upstream's URL);
//! 3. the authorization server's metadata is tried at
//!    [`authorization_server_metadata_urls`] (RFC 8414 §3.1 path insertion,
//!    then OpenID Connect Discovery with path insertion and appended), and
//!    checked by [`ServerMetadata::parse`] (RFC 8414 §3.3: same `issuer`;
//!    MCP: PKCE `S256` must be advertised).

use serde::Deserialize;
use url::Url;

/// Why discovery failed, for the operator's log and the user's page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{0} is not a usable URL")]
    BadUrl(String),
    #[error("the document is not valid metadata: {0}")]
    BadDocument(String),
    #[error("the metadata is for {found:?}, not {expected:?}")]
    Mismatch { expected: String, found: String },
    #[error("the authorization server does not advertise PKCE S256")]
    NoPkce,
    #[error("the protected resource metadata names no authorization server")]
    NoAuthorizationServer,
}

/// The parameters of a `Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// The `Bearer` challenge of a `WWW-Authenticate` value (other schemes
    /// in the same header are skipped); `None` if there is none.
    pub fn parse(header: &str) -> Option<Self> {
        let mut rest = header.trim();
        let mut found: Option<Challenge> = None;
        while !rest.is_empty() {
            // A scheme token, then its parameters up to the next scheme.
            let (scheme, after) = split_token(rest);
            if scheme.is_empty() {
                return found;
            }
            rest = after.trim_start();
            let mut params = Challenge::default();
            loop {
                let (name, after_name) = split_token(rest);
                let after_name = after_name.trim_start();
                if name.is_empty() || !after_name.starts_with('=') {
                    break;
                }
                let (value, after_value) = split_value(after_name[1..].trim_start())?;
                match name.to_ascii_lowercase().as_str() {
                    "resource_metadata" => params.resource_metadata = Some(value),
                    "scope" => params.scope = Some(value),
                    "error" => params.error = Some(value),
                    _ => {}
                }
                rest = after_value.trim_start();
                match rest.strip_prefix(',') {
                    Some(r) => rest = r.trim_start(),
                    None => break,
                }
            }
            if scheme.eq_ignore_ascii_case("bearer") && found.is_none() {
                found = Some(params);
            }
        }
        found
    }
}

fn split_token(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| c.is_whitespace() || c == '=' || c == ',' || c == '"')
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// A token or a quoted string (with `\` escapes); the rest after it.
fn split_value(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, &body[i + 1..])),
                c => out.push(c),
            }
        }
        None
    } else {
        let (t, rest) = split_token(s);
        Some((t.to_string(), rest))
    }
}

fn parse_http_url(s: &str) -> Result<Url, DiscoveryError> {
    let url = Url::parse(s).map_err(|_| DiscoveryError::BadUrl(s.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(DiscoveryError::BadUrl(s.to_string()));
    }
    Ok(url)
}

/// `origin` + `/.well-known/<suffix>` + `path` (RFC 8414 §3.1, RFC 9728
/// §3.1), the path's trailing `/` dropped.
fn inserted(url: &Url, suffix: &str) -> Url {
    let path = url.path().trim_end_matches('/');
    let mut out = url.clone();
    out.set_path(&format!("/.well-known/{suffix}{path}"));
    out.set_query(None);
    out.set_fragment(None);
    out
}

/// Where to look for the protected resource metadata of the MCP server at
/// `resource`: with the path inserted, then at the root (MCP 2025-11-25);
/// one URL if the resource has no path.
pub fn resource_metadata_urls(resource: &str) -> Result<Vec<Url>, DiscoveryError> {
    let url = parse_http_url(resource)?;
    let mut urls = vec![inserted(&url, "oauth-protected-resource")];
    let mut root = url.clone();
    root.set_path("/");
    let root = inserted(&root, "oauth-protected-resource");
    if !urls.contains(&root) {
        urls.push(root);
    }
    Ok(urls)
}

/// Where to look for an authorization server's metadata, in the order MCP
/// 2025-11-25 gives: for an issuer with a path, RFC 8414 with path
/// insertion, OpenID Connect with path insertion, OpenID Connect appended;
/// for one without, RFC 8414, then OpenID Connect.
pub fn authorization_server_metadata_urls(issuer: &str) -> Result<Vec<Url>, DiscoveryError> {
    let url = parse_http_url(issuer)?;
    let path = url.path().trim_end_matches('/').to_string();
    let mut urls = vec![
        inserted(&url, "oauth-authorization-server"),
        inserted(&url, "openid-configuration"),
    ];
    if !path.is_empty() {
        let mut appended = url.clone();
        appended.set_path(&format!("{path}/.well-known/openid-configuration"));
        appended.set_query(None);
        appended.set_fragment(None);
        urls.push(appended);
    }
    Ok(urls)
}

/// Equal as resource identifiers: the same URL but for a trailing `/`.
fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The protected resource metadata (RFC 9728 §2) as a client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    pub resource: String,
    /// The first authorization server listed (the one mcpgate uses).
    pub authorization_server: String,
    pub scopes_supported: Vec<String>,
}

impl ResourceMetadata {
    /// Checks the document fetched for the MCP server at `resource`.
    pub fn parse(body: &[u8], resource: &str) -> Result<Self, DiscoveryError> {
        #[derive(Deserialize)]
        struct Doc {
            resource: String,
            #[serde(default)]
            authorization_servers: Vec<String>,
            #[serde(default)]
            scopes_supported: Vec<String>,
        }
        let doc: Doc =
            serde_json::from_slice(body).map_err(|e| DiscoveryError::BadDocument(e.to_string()))?;
        if !same_resource(&doc.resource, resource) {
            return Err(DiscoveryError::Mismatch {
                expected: resource.to_string(),
                found: doc.resource,
            });
        }
        let authorization_server = doc
            .authorization_servers
            .into_iter()
            .next()
            .ok_or(DiscoveryError::NoAuthorizationServer)?;
        parse_http_url(&authorization_server)?;
        Ok(Self {
            resource: doc.resource,
            authorization_server,
            scopes_supported: doc.scopes_supported,
        })
    }
}

/// An authorization server's metadata (RFC 8414 §2) as a client needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Client ID Metadata Documents are accepted as `client_id`s.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
}

impl ServerMetadata {
    /// Checks the document fetched for `issuer`: the same issuer (RFC 8414
    /// §3.3), usable endpoints, and PKCE `S256` (MCP 2025-11-25: a client
    /// must refuse an authorization server that does not advertise it).
    pub fn parse(body: &[u8], issuer: &str) -> Result<Self, DiscoveryError> {
        let doc: ServerMetadata =
            serde_json::from_slice(body).map_err(|e| DiscoveryError::BadDocument(e.to_string()))?;
        if !same_resource(&doc.issuer, issuer) {
            return Err(DiscoveryError::Mismatch {
                expected: issuer.to_string(),
                found: doc.issuer,
            });
        }
        parse_http_url(&doc.authorization_endpoint)?;
        parse_http_url(&doc.token_endpoint)?;
        for u in [&doc.registration_endpoint, &doc.revocation_endpoint]
            .into_iter()
            .flatten()
        {
            parse_http_url(u)?;
        }
        if !doc
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
        {
            return Err(DiscoveryError::NoPkce);
        }
        Ok(doc)
    }

    /// Whether the server takes `client_secret_basic` (its default when
    /// the list is absent, RFC 8414 §2).
    pub fn takes_basic_auth(&self) -> bool {
        self.token_endpoint_auth_methods_supported.is_empty()
            || self
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn the_bearer_challenge_is_read_among_others() {
        let c = Challenge::parse(
            r#"Basic realm="x", Bearer error="insufficient_scope", scope="read write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#,
        )
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(c.scope.as_deref(), Some("read write"));
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://mcp.example/.well-known/oauth-protected-resource/mcp")
        );
        let c = Challenge::parse(r#"Bearer realm=mcp, error=invalid_token"#).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.resource_metadata, None);
        let c = Challenge::parse(r#"bearer scope="a \"b\"""#).unwrap();
        assert_eq!(c.scope.as_deref(), Some("a \"b\""));
        assert_eq!(Challenge::parse("Basic realm=\"x\""), None);
        assert_eq!(Challenge::parse("Bearer scope=\"unterminated"), None);
        assert_eq!(Challenge::parse("Bearer").unwrap(), Challenge::default());
    }

    #[test]
    fn resource_metadata_is_looked_for_with_the_path_then_at_the_root() {
        assert_eq!(
            strs(resource_metadata_urls("https://api.example/v1/mcp?x=1").unwrap()),
            [
                "https://api.example/.well-known/oauth-protected-resource/v1/mcp",
                "https://api.example/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            strs(resource_metadata_urls("http://127.0.0.1:3000/").unwrap()),
            ["http://127.0.0.1:3000/.well-known/oauth-protected-resource"]
        );
        assert!(resource_metadata_urls("ftp://x/").is_err());
    }

    #[test]
    fn server_metadata_urls_follow_the_mcp_order() {
        assert_eq!(
            strs(authorization_server_metadata_urls("https://auth.example/tenant1").unwrap()),
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example/.well-known/openid-configuration/tenant1",
                "https://auth.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            strs(authorization_server_metadata_urls("https://auth.example/").unwrap()),
            [
                "https://auth.example/.well-known/oauth-authorization-server",
                "https://auth.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn resource_metadata_must_be_for_the_upstream() {
        let doc = br#"{"resource":"https://api.example/mcp","authorization_servers":["https://auth.example"],"scopes_supported":["mcp"]}"#;
        let m = ResourceMetadata::parse(doc, "https://api.example/mcp/").unwrap();
        assert_eq!(m.authorization_server, "https://auth.example");
        assert_eq!(m.scopes_supported, ["mcp"]);
        assert!(matches!(
            ResourceMetadata::parse(doc, "https://evil.example/mcp"),
            Err(DiscoveryError::Mismatch { .. })
        ));
        assert_eq!(
            ResourceMetadata::parse(
                br#"{"resource":"https://api.example/mcp"}"#,
                "https://api.example/mcp"
            ),
            Err(DiscoveryError::NoAuthorizationServer)
        );
        assert!(matches!(
            ResourceMetadata::parse(b"[]", "https://api.example/mcp"),
            Err(DiscoveryError::BadDocument(_))
        ));
    }

    #[test]
    fn server_metadata_needs_its_issuer_and_s256() {
        let good = br#"{"issuer":"https://auth.example","authorization_endpoint":"https://auth.example/a","token_endpoint":"https://auth.example/t","code_challenge_methods_supported":["plain","S256"],"client_id_metadata_document_supported":true}"#;
        let m = ServerMetadata::parse(good, "https://auth.example/").unwrap();
        assert!(m.client_id_metadata_document_supported);
        assert!(m.takes_basic_auth());
        assert!(matches!(
            ServerMetadata::parse(good, "https://other.example"),
            Err(DiscoveryError::Mismatch { .. })
        ));
        let no_pkce = br#"{"issuer":"https://auth.example","authorization_endpoint":"https://auth.example/a","token_endpoint":"https://auth.example/t"}"#;
        assert_eq!(
            ServerMetadata::parse(no_pkce, "https://auth.example"),
            Err(DiscoveryError::NoPkce)
        );
        let bad_endpoint = br#"{"issuer":"https://auth.example","authorization_endpoint":"javascript:alert(1)","token_endpoint":"https://auth.example/t","code_challenge_methods_supported":["S256"]}"#;
        assert!(matches!(
            ServerMetadata::parse(bad_endpoint, "https://auth.example"),
            Err(DiscoveryError::BadUrl(_))
        ));
    }
}
