//! Records of per-user OAuth to upstream MCP servers (`crate::upstream_oauth`):
//! the vault's key ids, each user's sealed tokens per upstream, the clients
//! mcpgate registered at upstream authorization servers, and connect flows
//! under way. The store never sees a plaintext token: `sealed` values are
//! encrypted by `mcpgate_core::upstream_oauth::vault` before they get here.

use mcpgate_core::model::UnixTime;

/// One user's tokens at one upstream, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTokenRecord {
    pub user_id: String,
    pub upstream: String,
    /// The upstream URL the tokens were issued for (the connect flow's
    /// `resource`, RFC 8707); `None` on rows from before it was recorded.
    /// A token is only used while the upstream still has this URL.
    pub url: Option<String>,
    /// The vault key `sealed` was sealed with.
    pub kid: String,
    pub sealed: String,
    pub expires_at: Option<UnixTime>,
    pub scope: Option<String>,
    /// The account at the upstream, if it revealed one.
    pub account: Option<String>,
    /// Grows with every write (compare-and-swap, see
    /// [`Store::put_upstream_token`](super::Store::put_upstream_token)).
    pub version: i64,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl std::fmt::Debug for UpstreamTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokenRecord")
            .field("user_id", &self.user_id)
            .field("upstream", &self.upstream)
            .field("url", &self.url)
            .field("kid", &self.kid)
            .field("sealed", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A client mcpgate registered (RFC 7591) at an authorization server.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamClientRecord {
    pub issuer: String,
    pub redirect_uri: String,
    pub client_id: String,
    /// The client secret, sealed (row: user `""`, upstream = the issuer).
    pub kid: Option<String>,
    pub sealed_secret: Option<String>,
    /// Its `token_endpoint_auth_method`: `none` or `private_key_jwt`
    /// (`mcpgate_core::upstream_oauth::client_key::ClientAuthMethod`).
    pub auth_method: String,
    pub created_at: UnixTime,
}

impl std::fmt::Debug for UpstreamClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClientRecord")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("has_secret", &self.sealed_secret.is_some())
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

/// A connect flow under way: a one-time link (`kind` `"link"`) or a sent
/// authorization request (`kind` `"state"`, bound to `browser_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConnectRecord {
    /// SHA-256 of the link's ticket or of the `state`.
    pub key_hash: String,
    pub kind: String,
    pub user_id: String,
    pub upstream: String,
    pub browser_hash: Option<String>,
    /// JSON the flow needs back (scope, endpoints, client id).
    pub details: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}
