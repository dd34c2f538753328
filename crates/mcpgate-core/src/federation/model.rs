//! Records of federated sign-in that the store keeps.

use crate::model::UnixTime;

/// A sign-in that left for an identity provider and has not come back yet.
///
/// Keyed by the SHA-256 hash of our `state`; bound to the browser that
/// started it by the hash of a short-lived cookie. The PKCE verifier and
/// the nonce are derived from `state` ([`super::secrets`]), so the row
/// holds nothing that would let someone finish the sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub state_hash: String,
    pub provider_id: String,
    pub browser_hash: String,
    /// Where the browser continues afterwards: our authorization endpoint
    /// path with the original request's query (the MCP client's request).
    pub return_to: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A provider identity (provider id + the provider's subject) that signs
/// in as a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    pub provider_id: String,
    pub subject: String,
    pub user_id: String,
    /// The email the provider gave at the last sign-in, for display.
    pub email: Option<String>,
    pub created_at: UnixTime,
}
