//! The records mcpgate keeps: what the protocol rules read and decide on,
//! and what a `Store` persists. Times are Unix seconds (`i64`). Every
//! token, code and secret appears here only as its SHA-256 hash
//! ([`crate::crypto::hash_secret`]).
//!
//! A *grant* (`grant_id`) is one user's approval of one client, as carried
//! by one authorization code: the code, the tokens issued for it, and every
//! refresh token rotated from them share the grant id, so that code replay
//! (RFC 9700 §4.2.4) and refresh-token reuse (RFC 9700 §4.14.2) can revoke
//! the whole family at once.

use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, CodeChallenge, RedirectUri, ResourceUri, Scope, Username};

pub type UnixTime = i64;

/// A local user account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: Username,
    /// Argon2id PHC string; `None` for accounts that sign in only through an
    /// identity provider.
    pub password_hash: Option<String>,
    pub created_at: UnixTime,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[REDACTED]"),
            )
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2); the
    /// public keys are the client's `jwks` or `jwks_uri`.
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
    /// Whether the method uses a shared secret (`client_secret_*`).
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// Grant types a client may use (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    /// RFC 6749 §4.4, for machine clients (MCP's client-credentials
    /// extension, SEP-1046): only pre-registered confidential clients.
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }
}

/// Registered client metadata (RFC 7591 §2), as validated at registration.
/// Stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<RedirectUri>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// Where the client's public keys are (RFC 7591 §2), for
    /// `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The client's public keys inline (a JWK Set, RFC 7517 §5), for
    /// `private_key_jwt`. At most one of `jwks` and `jwks_uri` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
}

/// How a client came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Registered itself (RFC 7591); its name is only a claim.
    #[default]
    Dynamic,
    /// Its `client_id` is the https URL of its metadata document
    /// (draft-ietf-oauth-client-id-metadata-document): the metadata is
    /// fetched from there and kept as a cache.
    MetadataDocument,
    /// Added by the operator (`mcpgate client add`).
    Preregistered,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
            Self::Preregistered => "preregistered",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dynamic" => Some(Self::Dynamic),
            "metadata_document" => Some(Self::MetadataDocument),
            "preregistered" => Some(Self::Preregistered),
            _ => None,
        }
    }
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: ClientId,
    /// SHA-256 hex of the client secret, for confidential clients.
    pub secret_hash: Option<String>,
    pub metadata: ClientMetadata,
    pub issued_at: UnixTime,
    /// Last time the client was used in an authorization or token request;
    /// clients never used are removed after a configurable time.
    pub last_used_at: Option<UnixTime>,
    pub kind: ClientKind,
}

impl Client {
    pub fn display_name(&self) -> &str {
        self.metadata
            .client_name
            .as_deref()
            .unwrap_or(self.client_id.as_str())
    }
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.metadata.grant_types.contains(&g)
    }
}

/// A client identified by its metadata document, as the store caches it
/// (draft-ietf-oauth-client-id-metadata-document §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDocument {
    pub client: Client,
    /// When the document was last fetched.
    pub fetched_at: UnixTime,
    /// Until when it is used without fetching it again.
    pub fresh_until: UnixTime,
}

/// An authorization code (RFC 6749 §4.1.2), bound to everything the token
/// request must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: String,
    /// The redirect URI the code was sent to.
    pub redirect_uri: RedirectUri,
    /// Whether the authorization request named the redirect URI (then the
    /// token request must repeat it, RFC 6749 §4.1.3).
    pub redirect_uri_explicit: bool,
    pub scope: Scope,
    pub resource: ResourceUri,
    /// `None` only for the PKCE-exempt redirect hosts.
    pub code_challenge: Option<CodeChallenge>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: ClientId,
    /// The user the token acts for; `None` for a service token (the client
    /// credentials grant, RFC 6749 §4.4), whose subject is the client
    /// itself and never a user.
    pub user_id: Option<String>,
    pub scope: Scope,
    pub resource: ResourceUri,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

impl AccessToken {
    pub fn is_active(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// An issued refresh token. Rotation (RFC 9700 §4.14.2) marks the old token
/// `rotated_at` and records its successor, so reuse can be detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: String,
    pub scope: Scope,
    pub resource: ResourceUri,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
    pub successor_hash: Option<String>,
    pub revoked_at: Option<UnixTime>,
}

impl RefreshToken {
    pub fn is_active(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && self.rotated_at.is_none() && now < self.expires_at
    }
}

/// A user's remembered approval of a client for a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: String,
    pub client_id: ClientId,
    /// The redirect URI the consent was given for
    /// ([`RedirectUri::consent_key`](crate::domain::RedirectUri::consent_key)):
    /// consent is remembered per client and redirect URI.
    pub redirect_uri: String,
    pub scope: Scope,
    pub granted_at: UnixTime,
}

/// A signed-in browser session (the cookie holds the secret; this holds its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    pub session_hash: String,
    pub user_id: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// Where a user's membership of a group comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupSource {
    /// Added by the operator (`mcpgate user add --group`, `mcpgate user group add`).
    Local,
    /// An identity provider's groups claim (by the provider's id), replaced
    /// at each sign-in through that provider.
    Provider(String),
}

impl GroupSource {
    const PROVIDER_PREFIX: &'static str = "provider:";

    /// The stored form: `local` or `provider:<id>`.
    pub fn as_stored(&self) -> String {
        match self {
            Self::Local => "local".to_string(),
            Self::Provider(id) => format!("{}{id}", Self::PROVIDER_PREFIX),
        }
    }

    /// The stored form back; `None` if it is neither.
    pub fn from_stored(s: &str) -> Option<Self> {
        if s == "local" {
            return Some(Self::Local);
        }
        s.strip_prefix(Self::PROVIDER_PREFIX)
            .map(|id| Self::Provider(id.to_string()))
    }
}

impl std::fmt::Display for GroupSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_stored())
    }
}

/// One membership of a user in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    pub group: String,
    pub source: GroupSource,
}

/// A group with its number of members (distinct users, whatever the source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub name: String,
    pub members: u64,
    pub created_at: UnixTime,
}
