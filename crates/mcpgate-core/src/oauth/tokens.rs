//! Minting tokens.
//!
//! Access tokens are opaque: `mcp_` followed by 32 lowercase hex characters
//! (128 random bits), the format of the ChatGPT flow document. Refresh
//! tokens are `mcpr_` followed by 64 hex characters (256 bits).
//!
//! Tokens issued for a code are random. Tokens issued by a refresh are
//! derived from the presented refresh token with HMAC-SHA256 under the
//! server key, so a client that repeats a refresh inside the grace window
//! (it lost the response, or refreshed twice at once) receives the very
//! same successor, although the server stores only hashes.

use crate::crypto::{hash_secret, hmac_sha256, random_bytes};
use crate::domain::Scope;
use crate::model::{AccessToken, AuthCode, RefreshToken, UnixTime};
use crate::oauth::policy::Policy;
use crate::secret::Secret;

pub const ACCESS_PREFIX: &str = "mcp_";
pub const REFRESH_PREFIX: &str = "mcpr_";

/// Newly minted tokens: plaintext for the response, records for the store.
#[derive(Debug, Clone)]
pub struct Minted {
    pub access_token: Secret<String>,
    pub access: AccessToken,
    pub refresh_token: Option<Secret<String>>,
    pub refresh: Option<RefreshToken>,
}

fn access_value(bytes: &[u8]) -> String {
    format!("{ACCESS_PREFIX}{}", hex::encode(&bytes[..16]))
}

fn refresh_value(bytes: &[u8; 32]) -> String {
    format!("{REFRESH_PREFIX}{}", hex::encode(bytes))
}

/// Tokens for a redeemed code. A refresh token is included when the policy
/// issues them and the client registered the refresh_token grant.
pub fn for_code(code: &AuthCode, with_refresh: bool, policy: &Policy, now: UnixTime) -> Minted {
    let access_token = access_value(&random_bytes::<16>());
    let refresh_token = with_refresh.then(|| refresh_value(&random_bytes::<32>()));
    build(
        access_token,
        refresh_token,
        &code.grant_id,
        code,
        &code.scope,
        policy,
        now,
    )
}

/// The successor tokens of a refresh, derived from the presented token.
pub fn for_refresh(
    old: &RefreshToken,
    presented: &str,
    scope: &Scope,
    key: &[u8],
    policy: &Policy,
    now: UnixTime,
) -> Minted {
    let (access_token, refresh_token) = derived_values(presented, key);
    build(
        access_token,
        Some(refresh_token),
        &old.grant_id,
        old,
        scope,
        policy,
        now,
    )
}

/// The plaintext successors of a presented refresh token.
pub fn derived_values(presented: &str, key: &[u8]) -> (String, String) {
    let a = hmac_sha256(key, format!("mcpgate/access\0{presented}").as_bytes());
    let r = hmac_sha256(key, format!("mcpgate/refresh\0{presented}").as_bytes());
    (access_value(&a), refresh_value(&r))
}

/// Fields shared by codes and refresh tokens that tokens inherit.
pub trait GrantSource {
    fn client_id(&self) -> &crate::domain::ClientId;
    fn user_id(&self) -> &str;
    fn resource(&self) -> &crate::domain::ResourceUri;
}

impl GrantSource for AuthCode {
    fn client_id(&self) -> &crate::domain::ClientId {
        &self.client_id
    }
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn resource(&self) -> &crate::domain::ResourceUri {
        &self.resource
    }
}

impl GrantSource for RefreshToken {
    fn client_id(&self) -> &crate::domain::ClientId {
        &self.client_id
    }
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn resource(&self) -> &crate::domain::ResourceUri {
        &self.resource
    }
}

fn build(
    access_token: String,
    refresh_token: Option<String>,
    grant_id: &str,
    src: &impl GrantSource,
    scope: &Scope,
    policy: &Policy,
    now: UnixTime,
) -> Minted {
    let access = AccessToken {
        token_hash: hash_secret(&access_token),
        grant_id: grant_id.to_string(),
        client_id: src.client_id().clone(),
        user_id: Some(src.user_id().to_string()),
        scope: scope.clone(),
        resource: src.resource().clone(),
        created_at: now,
        expires_at: now.saturating_add(policy.access_token_ttl),
        revoked_at: None,
    };
    let refresh = refresh_token.as_ref().map(|t| RefreshToken {
        token_hash: hash_secret(t),
        grant_id: grant_id.to_string(),
        client_id: src.client_id().clone(),
        user_id: src.user_id().to_string(),
        scope: scope.clone(),
        resource: src.resource().clone(),
        created_at: now,
        expires_at: now.saturating_add(policy.refresh_token_ttl),
        rotated_at: None,
        successor_hash: None,
        revoked_at: None,
    });
    Minted {
        access_token: Secret::new(access_token),
        access,
        refresh_token: refresh_token.map(Secret::new),
        refresh,
    }
}

/// A service token of the client credentials grant (RFC 6749 §4.4): random,
/// a grant of its own, no user and never a refresh token (§4.4.3).
pub fn for_client(
    client: &crate::model::Client,
    scope: &Scope,
    resource: &crate::domain::ResourceUri,
    policy: &Policy,
    now: UnixTime,
) -> Minted {
    let access_token = access_value(&random_bytes::<16>());
    let access = AccessToken {
        token_hash: hash_secret(&access_token),
        grant_id: crate::crypto::random_uuid(),
        client_id: client.client_id.clone(),
        user_id: None,
        scope: scope.clone(),
        resource: resource.clone(),
        created_at: now,
        expires_at: now.saturating_add(policy.access_token_ttl),
        revoked_at: None,
    };
    Minted {
        access_token: Secret::new(access_token),
        access,
        refresh_token: None,
        refresh: None,
    }
}

/// Whether a string has the shape of an access token (cheap pre-check
/// before hashing and a store lookup).
pub fn looks_like_access_token(s: &str) -> bool {
    s.len() == ACCESS_PREFIX.len() + 32
        && s.starts_with(ACCESS_PREFIX)
        && s[ACCESS_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_have_the_seed_format() {
        let (a, r) = derived_values("mcpr_x", b"key");
        assert!(looks_like_access_token(&a), "{a}");
        assert!(r.starts_with("mcpr_") && r.len() == 5 + 64);
        let random = access_value(&random_bytes::<16>());
        assert!(looks_like_access_token(&random));
        assert!(!looks_like_access_token("mcp_XYZ"));
    }

    #[test]
    fn derivation_is_deterministic_per_token_and_key() {
        assert_eq!(derived_values("t1", b"k"), derived_values("t1", b"k"));
        assert_ne!(derived_values("t1", b"k"), derived_values("t2", b"k"));
        assert_ne!(derived_values("t1", b"k"), derived_values("t1", b"k2"));
    }
}
