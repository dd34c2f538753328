//! Values with rules, each a newtype whose only constructor is `parse`
//! (parse, don't validate): once you hold a [`RedirectUri`], it is a valid
//! redirect URI, and so on.
//!
//! - [`ClientId`]: the identifier of a registered OAuth client.
//! - [`MetadataDocumentUrl`]: a `client_id` that is the https URL of a
//!   Client ID Metadata Document.
//! - [`RedirectUri`]: RFC 6749 §3.1.2 / RFC 9700 §2.1 redirect URIs, with the
//!   RFC 8252 §7.3 loopback any-port match.
//! - [`Scope`]: RFC 6749 §3.3 scope sets.
//! - [`ResourceUri`]: RFC 8707 resource indicators, compared with the
//!   tolerance the MCP spec allows (case of scheme and host, a trailing slash).
//! - [`CodeChallenge`], [`CodeVerifier`]: RFC 7636 PKCE values.
//! - [`Username`]: usernames, case-insensitive and normalised (Unicode NFKC,
//!   then lowercase).

mod client_id;
mod document_url;
mod pkce;
#[cfg(test)]
mod proptests;
mod redirect_uri;
mod resource;
mod scope;
mod username;

pub use client_id::ClientId;
pub use document_url::MetadataDocumentUrl;
pub use pkce::{CodeChallenge, CodeVerifier};
pub use redirect_uri::RedirectUri;
pub use resource::ResourceUri;
pub use scope::Scope;
pub use username::Username;

/// Why a value was refused; the text is written for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
