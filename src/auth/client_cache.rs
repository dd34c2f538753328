//! Records the token endpoint last read, for at most
//! [`CACHE_TTL`](super::bearer::CACHE_TTL): [`ClientCache`] and
//! [`UserNames`], both a [`Recent`].
//!
//! **Clients.** Every token and revocation request authenticates its client
//! (RFC 6749 §2.3), and a refresh grant would otherwise pay a store round
//! trip for a row that rarely changes. Staleness is harmless by
//! construction: a client is never changed in place, and removing one
//! (`mcpgate client remove`, unused-client expiry) deletes its codes,
//! consents and tokens with it (`ON DELETE CASCADE`), so a removed client
//! still in the cache obtains nothing: its code or refresh token is unknown
//! (`invalid_grant`).
//!
//! **User names.** The audit records of the token endpoint (a code
//! redeemed, a token refreshed) name the user as well as its id; the name
//! comes from here, as the bearer check's cached user names the user of
//! every MCP call. A user renamed less than [`CACHE_TTL`] ago may be
//! recorded under the old name on an instance that read it before; the id,
//! which identifies the user, is always current. Authorization never reads
//! this cache.
//!
//! Both are cleared when the cluster bus says `TokensRevoked` (as the
//! command line announces a revocation to the instances on PostgreSQL) or
//! `Resync`; the client cache also after housekeeping removed clients.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::Instant;

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::Client;

use super::bearer::CACHE_TTL;

const MAX_ENTRIES: usize = 10_000;

/// Values read less than [`CACHE_TTL`] ago, at most `MAX_ENTRIES` of them.
pub struct Recent<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

/// Registered clients by id.
pub type ClientCache = Recent<ClientId, Client>;

/// User names by user id.
pub type UserNames = Recent<String, String>;

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// The value, if it was read less than [`CACHE_TTL`] ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let map = self.entries.read().ok()?;
        let (value, fetched) = map.get(key)?;
        (fetched.elapsed() < CACHE_TTL).then(|| value.clone())
    }

    /// Remembers a value just read from the store.
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, (_, fetched)| fetched.elapsed() < CACHE_TTL);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(key, (value, Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str) -> Client {
        let metadata = serde_json::from_value(serde_json::json!({
            "redirect_uris": ["https://example.com/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        }))
        .expect("metadata");
        Client {
            client_id: ClientId::parse(id).expect("client id"),
            secret_hash: None,
            metadata,
            issued_at: 0,
            last_used_at: None,
            kind: mcpgate_core::model::ClientKind::Dynamic,
        }
    }

    #[test]
    fn remembers_until_cleared() {
        let cache = ClientCache::default();
        let id = ClientId::parse("c1").expect("client id");
        assert!(cache.get(&id).is_none());
        cache.put(id.clone(), client("c1"));
        assert_eq!(cache.get(&id).map(|c| c.client_id), Some(id.clone()));
        cache.clear();
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn user_names_are_found_by_borrowed_id_until_cleared() {
        let names = UserNames::default();
        names.put("u1".to_string(), "alice".to_string());
        assert_eq!(names.get("u1").as_deref(), Some("alice"));
        assert_eq!(names.get("u2"), None);
        names.clear();
        assert_eq!(names.get("u1"), None);
    }
}
