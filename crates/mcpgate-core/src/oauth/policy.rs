//! The authorization server's settings, as the protocol rules see them.

use crate::domain::{RedirectUri, ResourceUri, Scope};
use crate::model::{ClientKind, TokenEndpointAuthMethod};

/// Where the MCP endpoint lives below the public URL.
pub const MCP_PATH: &str = "/v1/ai/mcp";

/// The scope a client asks for to get a refresh token (OpenID Connect Core
/// §11, which MCP clients follow). Always accepted in authorization and
/// token requests, whatever `scopes` lists; granted only when a refresh
/// token is issued (refresh tokens on, and the client registered the
/// refresh_token grant), otherwise left out of the granted scope
/// (RFC 6749 §3.3: the server may grant less and says so). It names no
/// permission at the MCP endpoint, so it is never in a `WWW-Authenticate`
/// challenge nor in the protected resource metadata (MCP 2025-11-25,
/// "Scope Selection Strategy").
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Settings that the rules depend on. Built once from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The issuer: the public URL, no trailing slash (RFC 8414 §2).
    pub issuer: String,
    /// The protected resource: `<public_url>/v1/ai/mcp`.
    pub resource: ResourceUri,
    /// Other identifiers of the same MCP server: the legacy SSE endpoint
    /// `<public_url>/sse`, which clients treat as a resource of its own
    /// (RFC 9728 §3.3: the metadata's `resource` must match the URL they
    /// connect to). Tokens for any of them are valid at every MCP route.
    pub other_resources: Vec<ResourceUri>,
    /// Scopes clients may ask for: `scopes`, then the names of `[[scope]]`
    /// tables not already among them.
    pub scopes_supported: Vec<String>,
    /// What each declared scope (`[[scope]]`) allows, in plain words, for
    /// the consent page.
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// The scope granted when a request names none (RFC 6749 §3.3).
    pub default_scope: Scope,
    /// Refuse authorization requests that carry no `resource` (RFC 8707).
    pub require_resource: bool,
    /// Redirect hosts that may omit PKCE (the ChatGPT compatibility
    /// exception of the seed document). Exact host names, lowercase.
    pub pkce_exempt_redirect_hosts: Vec<String>,
    /// Authorization code lifetime, seconds (at most 600).
    pub auth_code_ttl: i64,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl: i64,
    /// Whether refresh tokens are issued at all.
    pub issue_refresh_tokens: bool,
    /// How long after a rotation the old refresh token still yields the
    /// same successor instead of counting as reuse, seconds.
    pub refresh_grace: i64,
    /// Whether clients that register themselves (RFC 7591) or identify
    /// with a metadata document may be public (`none`). `false`: they must
    /// authenticate (`private_key_jwt`, or a secret for registered ones);
    /// operator-added clients are not affected.
    pub public_clients: bool,
}

impl Policy {
    /// Every resource identifier of this server, the main one first.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceUri> {
        std::iter::once(&self.resource).chain(self.other_resources.iter())
    }

    /// The resource a requested `resource` value names, if it is ours.
    pub fn resource_named(&self, requested: &str) -> Option<&ResourceUri> {
        self.resources().find(|r| r.names(requested))
    }

    /// Whether a stored resource is one of ours.
    pub fn is_own_resource(&self, resource: &ResourceUri) -> bool {
        self.resources().any(|r| r == resource)
    }

    /// Whether a client may ask for this scope token: one of `scopes`, or
    /// [`OFFLINE_ACCESS`].
    pub fn offers_scope(&self, token: &str) -> bool {
        token == OFFLINE_ACCESS || self.scopes_supported.iter().any(|s| s == token)
    }

    /// The tokens of `scope` this server does not offer.
    pub fn unknown_scopes<'a>(&self, scope: &'a Scope) -> Vec<&'a str> {
        scope.tokens().filter(|t| !self.offers_scope(t)).collect()
    }

    /// The scopes the authorization server metadata lists (RFC 8414 §2):
    /// `scopes`, plus [`OFFLINE_ACCESS`] when refresh tokens are issued.
    pub fn as_scopes_supported(&self) -> Vec<String> {
        let mut v = self.scopes_supported.clone();
        if self.issue_refresh_tokens && !v.iter().any(|s| s == OFFLINE_ACCESS) {
            v.push(OFFLINE_ACCESS.into());
        }
        v
    }

    /// The scopes the protected resource metadata lists (RFC 9728 §2):
    /// `scopes` without [`OFFLINE_ACCESS`].
    pub fn resource_scopes_supported(&self) -> Vec<String> {
        self.scopes_supported
            .iter()
            .filter(|s| *s != OFFLINE_ACCESS)
            .cloned()
            .collect()
    }

    /// The scope the MCP endpoints need (RFC 6750 §3): the default scope
    /// without [`OFFLINE_ACCESS`]. Named in every challenge and checked in
    /// every token.
    pub fn required_scope(&self) -> Scope {
        self.default_scope
            .without(OFFLINE_ACCESS)
            .unwrap_or_else(|| self.default_scope.clone())
    }

    /// What is granted of a requested (and allowed) scope: without
    /// [`OFFLINE_ACCESS`] unless a refresh token will be issued with it; a
    /// scope left empty by that falls back to `default`.
    pub fn granted_scope(&self, requested: Scope, refresh: bool, default: &Scope) -> Scope {
        if refresh || !requested.contains(OFFLINE_ACCESS) {
            return requested;
        }
        requested.without(OFFLINE_ACCESS).unwrap_or_else(|| {
            default
                .without(OFFLINE_ACCESS)
                .unwrap_or_else(|| default.clone())
        })
    }

    /// Whether a client gets refresh tokens: the server issues them and the
    /// client registered the refresh_token grant.
    pub fn refreshes_for(&self, client: &crate::model::Client) -> bool {
        self.issue_refresh_tokens && client.allows_grant(crate::model::GrantType::RefreshToken)
    }

    /// The description of a declared scope, if the operator gave one.
    pub fn scope_description(&self, token: &str) -> Option<&str> {
        self.scope_descriptions.get(token).map(String::as_str)
    }

    /// Whether a redirect URI's host is allowed to skip PKCE.
    pub fn pkce_exempt(&self, redirect_uri: &RedirectUri) -> bool {
        let host = redirect_uri.host();
        !redirect_uri.is_loopback()
            && redirect_uri.as_str().starts_with("https://")
            && self
                .pkce_exempt_redirect_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }

    /// `public_clients = false`: refuses a public (`none`) client that
    /// registered itself or is a metadata document (`invalid_client`,
    /// RFC 6749 §5.2). Operator-added clients always pass.
    pub fn admits_client(
        &self,
        kind: ClientKind,
        method: TokenEndpointAuthMethod,
    ) -> Result<(), super::OAuthError> {
        if self.public_clients
            || kind == ClientKind::Preregistered
            || method != TokenEndpointAuthMethod::None
        {
            return Ok(());
        }
        Err(super::OAuthError::invalid_client(
            "this server takes no public clients (public_clients = false): the client must authenticate at the token endpoint with private_key_jwt (or a client secret)",
        ))
    }

    /// The example policy used by this crate's tests.
    #[cfg(test)]
    pub(crate) fn example() -> Self {
        Self {
            issuer: "https://gate.example".into(),
            resource: ResourceUri::parse("https://gate.example/v1/ai/mcp").expect("valid"),
            other_resources: vec![ResourceUri::parse("https://gate.example/sse").expect("valid")],
            scopes_supported: vec!["mcp".into()],
            scope_descriptions: Default::default(),
            default_scope: Scope::parse("mcp").expect("valid"),
            require_resource: false,
            pkce_exempt_redirect_hosts: vec!["chatgpt.com".into(), "chat.openai.com".into()],
            auth_code_ttl: 60,
            access_token_ttl: 86_400,
            refresh_token_ttl: 30 * 86_400,
            issue_refresh_tokens: true,
            refresh_grace: 30,
            public_clients: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_access_is_offered_but_never_required_nor_listed_for_the_resource() {
        let mut p = Policy::example();
        p.scopes_supported = vec!["mcp".into(), OFFLINE_ACCESS.into()];
        p.default_scope = Scope::parse("mcp offline_access").unwrap();
        assert_eq!(p.required_scope().to_string(), "mcp");
        assert_eq!(p.resource_scopes_supported(), vec!["mcp".to_string()]);
        assert_eq!(p.as_scopes_supported(), vec!["mcp", OFFLINE_ACCESS]);
        let mut plain = Policy::example();
        assert!(plain.offers_scope(OFFLINE_ACCESS) && !plain.offers_scope("admin"));
        assert_eq!(plain.as_scopes_supported(), vec!["mcp", OFFLINE_ACCESS]);
        plain.issue_refresh_tokens = false;
        assert_eq!(plain.as_scopes_supported(), vec!["mcp"]);
    }

    #[test]
    fn without_public_clients_only_operator_added_or_authenticating_clients_pass() {
        use TokenEndpointAuthMethod as M;
        let mut p = Policy::example();
        for kind in [
            ClientKind::Dynamic,
            ClientKind::MetadataDocument,
            ClientKind::Preregistered,
        ] {
            assert!(p.admits_client(kind, M::None).is_ok());
        }
        p.public_clients = false;
        for kind in [ClientKind::Dynamic, ClientKind::MetadataDocument] {
            let e = p.admits_client(kind, M::None).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_client");
            assert!(e.description.contains("public_clients = false"));
            assert!(p.admits_client(kind, M::PrivateKeyJwt).is_ok());
        }
        assert!(
            p.admits_client(ClientKind::Dynamic, M::ClientSecretBasic)
                .is_ok()
        );
        assert!(p.admits_client(ClientKind::Preregistered, M::None).is_ok());
    }

    #[test]
    fn offline_access_is_granted_only_with_a_refresh_token() {
        let p = Policy::example();
        let asked = Scope::parse("mcp offline_access").unwrap();
        let default = Scope::parse("mcp").unwrap();
        assert_eq!(p.granted_scope(asked.clone(), true, &default), asked);
        assert_eq!(p.granted_scope(asked, false, &default), default);
        let alone = Scope::parse("offline_access").unwrap();
        assert_eq!(p.granted_scope(alone, false, &default), default);
    }
}
