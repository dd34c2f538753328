//! Protocol rules of mcpgate, free of HTTP and databases.
//!
//! This crate imports neither axum nor sqlx (its manifest does not list
//! them), takes the current time as an argument, and is unit-tested in
//! process. The `mcpgate` crate wires it to HTTP and storage.
//!
//! # Layout
//! - [`secret`]: `Secret<T>`, which prints `[REDACTED]` in `Debug` and `Display`.
//! - [`crypto`]: random values, SHA-256 hashing of stored secrets, HMAC,
//!   constant-time comparison, the PKCE S256 transform.
//! - [`domain`]: newtypes with `parse` for every value with rules (client ids,
//!   redirect URIs, scopes, resource indicators, PKCE challenge and verifier,
//!   usernames).
//! - [`cache_control`]: the lifetime a fetched document's `Cache-Control`
//!   allows (metadata documents, JWK Sets).
//! - [`client_address`]: the client's address behind trusted proxies
//!   (`X-Forwarded-For`), and the key of per-address limits.
//! - [`login_limits`]: failed sign-ins per account and per address (hard
//!   limits and the account's growing delay).
//! - [`outbound_address`]: the SSRF rule of client-controlled fetches
//!   (which resolved addresses are not public), with the operator's
//!   exempt networks.
//! - [`model`]: the records the rules decide on and the store keeps.
//! - [`oauth`]: the authorization server: metadata (RFC 8414, RFC 9728),
//!   registration (RFC 7591), the authorization request (RFC 6749 §4.1,
//!   RFC 7636, RFC 8707, RFC 9207), client authentication and the token
//!   grants (RFC 6749 §4.1.3, §6; RFC 9700), revocation (RFC 7009).
//! - [`federation`]: sign-in through upstream identity providers (OpenID
//!   Connect, plain OAuth 2.0): restrictions, usernames, derived PKCE
//!   verifier and nonce, failures with stable event names.
//! - [`upstream_oauth`]: mcpgate as an OAuth client of upstream MCP
//!   servers: discovery (RFC 9728, RFC 8414), the token vault's cipher
//!   (AES-256-GCM), token responses and refresh (RFC 6749 §5.1, §6).
//! - [`mcp`]: the resource-server rules of the MCP endpoint (bearer
//!   tokens, audience, scope, RFC 6750 / RFC 9728 challenges).
//! - [`policy`]: `[[policy]]` rules (who may use which tool, prompt and
//!   resource), name globs, rate-limit buckets.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cache_control;
pub mod client_address;
pub mod crypto;
pub mod domain;
pub mod federation;
pub mod login_limits;
pub mod mcp;
pub mod model;
pub mod oauth;
pub mod outbound_address;
pub mod policy;
pub mod secret;
pub mod upstream_oauth;
