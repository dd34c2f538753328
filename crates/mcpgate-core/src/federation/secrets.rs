//! Values derived from our `state` under the server key.
//!
//! The PKCE `code_verifier` (RFC 7636 §4.1) and the OpenID Connect `nonce`
//! (OpenID Connect Core 1.0 §3.1.2.1) must be unguessable and must be
//! available again when the browser comes back, possibly at another
//! instance. Deriving them as `HMAC(server key, purpose, state)` gives
//! both without storing them: the store keeps only a hash of `state`, and
//! `state` itself exists only in the browser's round trip.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::hmac_sha256;

/// `BASE64URL(HMAC-SHA256(key, "mcpgate-federation\0" purpose "\0" state))`:
/// 43 characters of the PKCE verifier alphabet.
fn derive(key: &[u8], purpose: &str, state: &str) -> String {
    let msg = format!("mcpgate-federation\0{purpose}\0{state}");
    URL_SAFE_NO_PAD.encode(hmac_sha256(key, msg.as_bytes()))
}

/// The PKCE code verifier for the sign-in with this `state`.
pub fn pkce_verifier(key: &[u8], state: &str) -> String {
    derive(key, "pkce", state)
}

/// The OpenID Connect nonce for the sign-in with this `state`.
pub fn nonce(key: &[u8], state: &str) -> String {
    derive(key, "nonce", state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CodeVerifier;

    #[test]
    fn derived_values_depend_on_key_state_and_purpose_and_are_valid_verifiers() {
        let v = pkce_verifier(b"key", "state-1");
        assert_eq!(v.len(), 43);
        assert!(CodeVerifier::parse(&v).is_ok());
        assert_eq!(v, pkce_verifier(b"key", "state-1"));
        assert_ne!(v, pkce_verifier(b"key", "state-2"));
        assert_ne!(v, pkce_verifier(b"other key", "state-1"));
        assert_ne!(v, nonce(b"key", "state-1"));
    }
}
