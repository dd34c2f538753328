//! mcpgate as an OAuth *client* of upstream MCP servers (`auth = "oauth"`
//! on an `[[upstream]]`): the rules, with no HTTP and no database.
//!
//! - [`connect`]: the authorization request mcpgate sends a user to at
//!   the upstream (PKCE S256, RFC 8707 `resource`), and the connect flow's
//!   failures with stable log events.
//! - [`client_key`]: mcpgate's own signing key (Ed25519 from the server
//!   key by HKDF), its public JWK Set, the `private_key_jwt` assertions it
//!   signs (RFC 7523), and which client authentication to use at an
//!   upstream.
//! - [`discovery`]: finding the upstream's authorization server the way an
//!   MCP client must (MCP 2025-11-25 "Authorization", §Authorization Server
//!   Discovery): the `resource_metadata` of a `401`'s `WWW-Authenticate`
//!   (RFC 9728 §5.1), the protected resource metadata URLs (RFC 9728 §3.1),
//!   the authorization server metadata URLs with path insertion and the
//!   OpenID Connect fallbacks (RFC 8414 §3.1, OIDC Discovery §4), and the
//!   checks of both documents.
//! - [`vault`]: the encryption at rest of each user's upstream tokens
//!   (AES-256-GCM, a key derived from the server key per key id, the row's
//!   owner bound in as associated data).
//! - [`tokens`]: the token set an upstream issued (RFC 6749 §5.1), when to
//!   refresh it, and the refresh response's rotation rule (RFC 6749 §6).

pub mod client_key;
pub mod connect;
pub mod discovery;
pub mod tokens;
pub mod vault;
