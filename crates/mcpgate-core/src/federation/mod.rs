//! Sign-in through an upstream identity provider: the rules, free of HTTP.
//!
//! An operator lists identity providers (OpenID Connect providers by
//! issuer, or plain OAuth 2.0 providers with a user-info endpoint). A
//! browser at our authorization endpoint may choose one; mcpgate then acts
//! as an OAuth 2.0 client of that provider (authorization code with PKCE,
//! RFC 6749 §4.1 + RFC 7636; OpenID Connect Core 1.0 §3.1 with `nonce`)
//! and maps the identity it gets back to a local user.
//!
//! - [`model`]: what the store keeps: the pending sign-in (only a hash of
//!   our `state`) and the link between a provider identity and a user.
//! - [`secrets`]: the PKCE verifier and the nonce, derived from `state`
//!   under the server key, so nothing secret is stored.
//! - [`rules`]: the identity a provider vouched for, the per-provider
//!   restrictions (email domain, email list, claim), and the username of a
//!   user created on first sign-in.
//! - [`error`]: every way a federated sign-in can fail, each with a stable
//!   event name for the logs.

pub mod error;
pub mod model;
pub mod rules;
pub mod secrets;

pub use error::FederationError;
pub use model::{PendingLogin, UserIdentity};
pub use rules::{ClaimRule, Identity, Restrictions};
