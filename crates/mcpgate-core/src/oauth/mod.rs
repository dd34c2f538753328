//! The OAuth 2.1 authorization server rules.
//!
//! - [`error`]: `OAuthError`, whose `Display` is the RFC error code, and the
//!   security events logged under stable names.
//! - [`policy`]: the server's settings as the rules see them.
//! - [`params`]: request parameters; RFC 6749 §3.1: none may be repeated.
//! - [`discovery`]: RFC 8414 and RFC 9728 documents and the URL consistency check.
//! - [`register`]: RFC 7591 dynamic client registration.
//! - [`preregister`]: clients the operator adds (`mcpgate client add`).
//! - [`authorize`]: the authorization request and response (RFC 6749 §4.1,
//!   RFC 7636, RFC 8707, RFC 9207), consent, code issuance.
//! - [`cimd`]: Client ID Metadata Documents: which client ids are document
//!   URLs, validating a fetched document, how long it stays fresh.
//! - [`client_auth`]: client authentication (RFC 6749 §2.3).
//! - [`client_assertion`]: `private_key_jwt` assertions (RFC 7523 §2.2, §3).
//! - [`token`]: the token request enum and the token response.
//! - [`grant`]: one file per grant type.
//! - [`tokens`]: minting access and refresh tokens.
pub mod authorize;
pub mod cimd;
pub mod client_assertion;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod params;
pub mod policy;
pub mod preregister;
pub mod register;
pub mod token;
pub mod tokens;

pub use error::{ErrorCode, OAuthError, SecurityEvent};
