//! Records of the admin console (docs/operations.md "Admin console"): the
//! admin role of users, and the live grants an operator reviews and revokes.
//!
//! A grant is one authorization a user gave a client (RFC 6749 §1.3.1):
//! the tokens sharing a `grant_id` (the code's access and refresh tokens
//! and every rotation of them). It is live while one of its access or
//! refresh tokens is neither revoked nor expired.

use mcpgate_core::model::UnixTime;

/// One live grant, as [`Store::live_grants`](super::Store::live_grants)
/// reads it from the grant's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSummary {
    pub grant_id: String,
    pub client_id: String,
    /// `None` for a service token (the client credentials grant).
    pub user_id: Option<String>,
    /// The scope of the grant's newest token.
    pub scope: String,
    /// When its first token was issued.
    pub created_at: UnixTime,
    /// When its newest token was issued (the grant's last use at the token
    /// endpoint).
    pub last_used_at: UnixTime,
    /// Its tokens (access and refresh) that are neither revoked nor expired.
    pub live_tokens: u64,
}
