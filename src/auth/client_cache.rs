//! Registered clients as the token endpoint last read them, for at most
//! [`CACHE_TTL`](super::bearer::CACHE_TTL): every token and revocation
//! request authenticates its client (RFC 6749 §2.3), and a refresh grant
//! would otherwise pay a store round trip for a row that rarely changes.
//!
//! Staleness is harmless by construction: a client is never changed in
//! place, and removing one (`mcpgate client remove`, unused-client expiry)
//! deletes its codes, consents and tokens with it (`ON DELETE CASCADE`), so
//! a removed client still in the cache obtains nothing: its code or refresh
//! token is unknown (`invalid_grant`). The cache is cleared when the cluster
//! bus says `TokensRevoked` (as `mcpgate client remove` does with several
//! instances) or `Resync`, and after housekeeping removed clients.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::Client;

use super::bearer::CACHE_TTL;

const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<ClientId, (Client, Instant)>>,
}

impl ClientCache {
    /// The client, if it was read less than [`CACHE_TTL`] ago.
    pub fn get(&self, id: &ClientId) -> Option<Client> {
        let map = self.entries.read().ok()?;
        let (client, fetched) = map.get(id)?;
        (fetched.elapsed() < CACHE_TTL).then(|| client.clone())
    }

    /// Remembers a client just read from the store.
    pub fn put(&self, client: &Client) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, (_, fetched)| fetched.elapsed() < CACHE_TTL);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(client.client_id.clone(), (client.clone(), Instant::now()));
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
        cache.put(&client("c1"));
        assert_eq!(cache.get(&id).map(|c| c.client_id), Some(id.clone()));
        cache.clear();
        assert!(cache.get(&id).is_none());
    }
}
