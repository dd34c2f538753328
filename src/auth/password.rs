//! Passwords: Argon2id (the `argon2` crate's defaults: m=19456 KiB, t=2,
//! p=1) in PHC strings. Hashing runs on the blocking pool. A sign-in for an
//! unknown user still verifies against a dummy hash, so failures take the
//! same time whether or not the account exists.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password must be at least 8 characters long")]
    TooShort,
}

pub const MIN_LENGTH: usize = 8;

pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Verifies `password` against `phc`, or against a dummy hash when there is
/// no account (`None`), so that both take the same time.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    let target = phc.unwrap_or_else(|| dummy_hash());
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && phc.is_some()
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = mcpgate_core::crypto::random_hex::<16>();
        hash(&random).unwrap_or_default()
    })
}

pub async fn hash_async(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
}

pub async fn verify_async(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, phc.as_deref()))
        .await
        .unwrap_or(false)
}

/// A random password for the first `admin` account: 20 characters of
/// base64url (120 bits).
pub fn generate() -> String {
    mcpgate_core::crypto::random_b64::<15>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&h)));
        assert!(!verify("wrong horse", Some(&h)));
        assert!(!verify("correct horse", None));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }
}
