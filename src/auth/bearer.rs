//! Checking bearer tokens at the MCP endpoint, with a small in-memory cache
//! in front of the store. A cache entry lives at most
//! [`CACHE_TTL`]; every revocation made through this process (revocation
//! endpoint, code replay, refresh reuse) clears the cache at once, so
//! revocation takes effect immediately on this instance. Expiry is checked
//! against the clock on every request, cached or not.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use mcpgate_core::crypto::hash_secret;
use mcpgate_core::mcp::bearer::{self, BearerError, Caller};
use mcpgate_core::model::AccessToken;

use super::AuthServer;

/// How long a token looked up in the store is trusted without a new lookup.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Entry>>,
}

struct Entry {
    token: AccessToken,
    username: String,
    fetched: Instant,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<(AccessToken, String)> {
        let map = self.entries.read().ok()?;
        let e = map.get(hash)?;
        (e.fetched.elapsed() < CACHE_TTL).then(|| (e.token.clone(), e.username.clone()))
    }

    fn put(&self, hash: String, token: AccessToken, username: String) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, e| e.fetched.elapsed() < CACHE_TTL);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(
                hash,
                Entry {
                    token,
                    username,
                    fetched: Instant::now(),
                },
            );
        }
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

impl AuthServer {
    /// Validates the bearer token of a request to the MCP endpoint.
    pub async fn authenticate_bearer(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> Result<Caller, BearerError> {
        bearer::check_query(query)?;
        let token = bearer::token_from_header(authorization)?;
        bearer::check_shape(token)?;
        let hash = hash_secret(token);
        let now = self.now();
        let resources: Vec<&mcpgate_core::domain::ResourceUri> = self.policy.resources().collect();
        let (record, username) = match self.token_cache.get(&hash) {
            Some(hit) => hit,
            None => {
                let record = self.store.access_token(&hash).await.map_err(|e| {
                    tracing::error!(error = %e, "store failure while checking a token");
                    BearerError::InvalidToken("the token could not be checked; try again".into())
                })?;
                bearer::check(record.as_ref(), &resources, &self.policy.default_scope, now)?;
                let Some(record) = record else {
                    return Err(BearerError::InvalidToken(
                        "the access token is unknown".into(),
                    ));
                };
                let user = self
                    .store
                    .user_by_id(&record.user_id)
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        BearerError::InvalidToken("the user of this token no longer exists".into())
                    })?;
                self.token_cache
                    .put(hash.clone(), record.clone(), user.username.clone());
                (record, user.username)
            }
        };
        bearer::check(Some(&record), &resources, &self.policy.default_scope, now)?;
        Ok(Caller {
            user_id: record.user_id,
            username,
            client_id: record.client_id,
            scope: record.scope,
            expires_at: record.expires_at,
            token_hash: hash,
        })
    }
}
