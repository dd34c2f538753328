//! Per-user OAuth to upstream MCP servers (`auth = "oauth"` on an
//! `[[upstream]]`, issue #19; docs/upstream-oauth.md).
//!
//! - [`vault`]: the token vault: each user's tokens per upstream, sealed
//!   with AES-256-GCM under a key derived from the server key
//!   (`mcpgate_core::upstream_oauth::vault`), and the key rotation of
//!   `mcpgate rotate-vault-key`.
//! - [`service`]: the connect flow (link, authorization request, callback).
//! - [`client`]: mcpgate's client identity at the upstream (configured,
//!   metadata document, or dynamic registration).
//! - [`tokens`]: the access token of each request, single-flight refresh,
//!   disconnect with revocation.
//! - [`step_up`]: a larger scope when an upstream answers `403
//!   insufficient_scope`.
//! - [`upstreams`]: the upstreams in force (a reload swaps them), and the
//!   rule that a token is used only with the upstream URL it was issued for.
//! - [`news`]: a connection made or ended, told to every instance (the
//!   cluster bus), whose sessions of that user learn that tools changed.
//! - [`discovery`]: finding an upstream's authorization server through the
//!   outbound client (the rules: `mcpgate_core::upstream_oauth::discovery`).
//!
//! Upstream tokens never reach a client, and a client's mcpgate token never
//! reaches an upstream: the gateway sends each upstream only the token the
//! vault holds for the calling user.

pub mod client;
pub mod discovery;
pub mod http_client;
pub mod news;
pub mod service;
pub mod step_up;
pub mod tokens;
pub mod upstreams;
pub mod vault;

pub use service::UpstreamOAuth;
