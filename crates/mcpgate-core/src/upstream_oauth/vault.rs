//! The token vault's cipher: each user's upstream tokens are encrypted at
//! rest with AES-256-GCM (NIST SP 800-38D).
//!
//! - **Key.** One key per key id (`kid`): `HMAC-SHA256(server key,
//!   "mcpgate upstream token vault v1" 0x00 kid)` ([`VaultKey::derive`]).
//!   The server key never leaves the database row it is kept in; the
//!   derived keys live only in memory. Rotation (`mcpgate
//!   rotate-vault-key`) makes a new random `kid` and re-encrypts every row
//!   under it; each row keeps the `kid` it was sealed with, so rows of an
//!   older key stay readable while a rotation runs.
//! - **Nonce.** 96 random bits per sealing (SP 800-38D §8.2.2: random
//!   nonces are safe far beyond the number of rows a vault holds).
//! - **Associated data.** The `kid`, the user id and the upstream name:
//!   a sealed value copied into another user's row (or another upstream's)
//!   does not open there.
//!
//! A sealed value is `base64url(nonce ‖ ciphertext ‖ tag)`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::hmac_sha256;

const NONCE_LEN: usize = 12;
const LABEL: &[u8] = b"mcpgate upstream token vault v1\0";

/// A sealed value that does not open: another key, another row, or altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sealed value does not open with this key for this row")]
pub struct OpenError;

/// A value too large to seal (AES-GCM's limit is 64 GiB).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value is too large to seal")]
pub struct SealError;

/// The row a sealed value belongs to (bound in as associated data).
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub user_id: &'a str,
    pub upstream: &'a str,
}

/// A derived vault key and its id. `Debug` shows only the id.
#[derive(Clone)]
pub struct VaultKey {
    kid: String,
    key: [u8; 32],
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKey")
            .field("kid", &self.kid)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl VaultKey {
    /// The key of `kid`, derived from the server key.
    pub fn derive(server_key: &[u8], kid: &str) -> Self {
        let mut message = LABEL.to_vec();
        message.extend_from_slice(kid.as_bytes());
        Self {
            kid: kid.to_string(),
            key: hmac_sha256(server_key, &message),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn aad(&self, row: Row<'_>) -> Vec<u8> {
        // Each part is NUL-terminated: no two rows give the same bytes
        // (user ids, upstream names and key ids contain no NUL).
        let mut aad = Vec::new();
        for part in [self.kid.as_str(), row.user_id, row.upstream] {
            aad.extend_from_slice(part.as_bytes());
            aad.push(0);
        }
        aad
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.key))
    }

    /// Seals `plaintext` for `row` with a fresh random nonce.
    pub fn seal(&self, row: Row<'_>, plaintext: &[u8]) -> Result<String, SealError> {
        self.seal_with_nonce(row, plaintext, crate::crypto::random_bytes::<NONCE_LEN>())
    }

    fn seal_with_nonce(
        &self,
        row: Row<'_>,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, SealError> {
        let aad = self.aad(row);
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed by [`Self::seal`] for the same row.
    pub fn open(&self, row: Row<'_>, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let aad = self.aad(row);
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError)
    }
}

/// A new random key id.
pub fn new_kid() -> String {
    crate::crypto::random_hex::<8>()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Row<'static> = Row {
        user_id: "alice-id",
        upstream: "github",
    };

    #[test]
    fn a_sealed_value_opens_for_its_row_with_its_key_only() {
        let k = VaultKey::derive(&[7; 32], "k1");
        let sealed = k.seal(ALICE, b"gho_secret").unwrap();
        assert!(!sealed.contains("gho_secret"));
        assert_eq!(k.open(ALICE, &sealed).unwrap(), b"gho_secret");
        // Another user's row, another upstream, another key id, another
        // server key: none opens it.
        let bob = Row {
            user_id: "bob-id",
            upstream: "github",
        };
        let other_up = Row {
            user_id: "alice-id",
            upstream: "linear",
        };
        assert_eq!(k.open(bob, &sealed), Err(OpenError));
        assert_eq!(k.open(other_up, &sealed), Err(OpenError));
        assert_eq!(
            VaultKey::derive(&[7; 32], "k2").open(ALICE, &sealed),
            Err(OpenError)
        );
        assert_eq!(
            VaultKey::derive(&[8; 32], "k1").open(ALICE, &sealed),
            Err(OpenError)
        );
    }

    #[test]
    fn nonces_are_fresh_and_tampering_is_detected() {
        let k = VaultKey::derive(&[1; 32], "k");
        let a = k.seal(ALICE, b"same").unwrap();
        let b = k.seal(ALICE, b"same").unwrap();
        assert_ne!(a, b);
        let mut bytes = URL_SAFE_NO_PAD.decode(&a).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            k.open(ALICE, &URL_SAFE_NO_PAD.encode(&bytes)),
            Err(OpenError)
        );
        assert_eq!(k.open(ALICE, "short"), Err(OpenError));
        assert_eq!(k.open(ALICE, "not base64!"), Err(OpenError));
    }

    #[test]
    fn the_cipher_is_aes_256_gcm() {
        // The layout is nonce ‖ ciphertext ‖ 16-byte tag, and a plain
        // AES-256-GCM decryption with the documented key derivation and
        // associated data opens it.
        let k = VaultKey::derive(&[3; 32], "kid");
        let sealed = k.seal_with_nonce(ALICE, b"abc", [9; NONCE_LEN]).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        assert_eq!(bytes.len(), NONCE_LEN + 3 + 16);
        assert_eq!(&bytes[..NONCE_LEN], &[9; NONCE_LEN]);
        let raw = Aes256Gcm::new(&Key::<Aes256Gcm>::from(hmac_sha256(
            &[3; 32],
            b"mcpgate upstream token vault v1\0kid",
        )));
        let plain = raw
            .decrypt(
                &Nonce::from([9; NONCE_LEN]),
                Payload {
                    msg: &bytes[NONCE_LEN..],
                    aad: b"kid\0alice-id\0github\0",
                },
            )
            .unwrap();
        assert_eq!(plain, b"abc");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = VaultKey::derive(&[5; 32], "kid9");
        let shown = format!("{k:?}");
        assert!(shown.contains("kid9") && shown.contains("REDACTED"));
        assert!(!shown.contains(&format!("{:?}", k.key[0..4].to_vec())));
    }
}
