//! The operator token, which unlocks the detailed health report
//! (`GET /healthz?details` with `Authorization: Bearer <token>`).
//!
//! The public `/healthz` says only `ok` or `degraded` and the version;
//! upstream names, states and error texts are for operators. The token is
//! `base64url(HMAC-SHA256(server key, label))`: every instance sharing a
//! database derives the same one, and `mcpgate status`, which reads the same
//! configuration and database, computes it without a separate secret. It
//! changes only with the server key. Compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::crypto::{constant_time_eq, hmac_sha256};

use super::AuthServer;

/// The name of the server key in the `server_keys` table.
pub const SERVER_KEY_NAME: &str = "server-key-v1";

/// What the server key signs to make the operator token.
const LABEL: &[u8] = b"mcpgate operator token v1";

/// The operator token derived from a server key.
pub fn operator_token(server_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(server_key, LABEL))
}

impl AuthServer {
    /// This server's operator token.
    pub fn operator_token(&self) -> String {
        operator_token(self.key())
    }

    /// Whether an `Authorization` header value carries the operator token.
    pub fn is_operator(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, token)) = authorization.and_then(|v| v.trim().split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && constant_time_eq(self.operator_token().as_bytes(), token.trim().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_depends_on_the_key_only() {
        assert_eq!(operator_token(b"k1"), operator_token(b"k1"));
        assert_ne!(operator_token(b"k1"), operator_token(b"k2"));
        assert_eq!(operator_token(b"k1").len(), 43);
    }
}
