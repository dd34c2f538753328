//! The token vault: each user's tokens at each `auth = "oauth"` upstream,
//! sealed at rest (`mcpgate_core::upstream_oauth::vault`: AES-256-GCM, a
//! key per key id derived from the server key, the row bound in).
//!
//! - New rows are sealed with the newest key id in `upstream_vault_keys`
//!   (the first is made on first use); rows keep the key id they were sealed
//!   with, so every stored key id stays readable.
//! - [`Vault::rotate`] (`mcpgate rotate-vault-key`) adds a key id and
//!   re-seals every row under it, each with a compare-and-swap on the row's
//!   version (a row changed meanwhile is read again and re-sealed).
//! - Tokens leave the vault only as [`TokenSet`] (whose `Debug` redacts
//!   them) for the request that sends them to their upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcpgate_core::model::UnixTime;
use mcpgate_core::secret::Secret;
use mcpgate_core::upstream_oauth::tokens::{Secrets, TokenSet};
use mcpgate_core::upstream_oauth::vault::{Row, VaultKey, new_kid};

use crate::store::{Store, StoreError, UpstreamTokenRecord};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row that does not open (altered, moved, or its key's server key
    /// replaced): the connection must be made again.
    #[error("the stored tokens of {upstream} for this user cannot be opened")]
    Unreadable { upstream: String },
    #[error("the tokens could not be sealed")]
    Seal,
}

/// A connection as the vault holds it: the row (without secrets) and its
/// opened tokens.
#[derive(Debug, Clone)]
pub struct Connection {
    pub record: UpstreamTokenRecord,
    pub tokens: TokenSet,
}

pub struct Vault {
    store: Arc<dyn Store>,
    server_key: Secret<Vec<u8>>,
    keys: Mutex<HashMap<String, VaultKey>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(store: Arc<dyn Store>, server_key: &[u8]) -> Self {
        Self {
            store,
            server_key: Secret::new(server_key.to_vec()),
            keys: Mutex::default(),
        }
    }

    fn key(&self, kid: &str) -> VaultKey {
        let mut keys = match self.keys.lock() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.entry(kid.to_string())
            .or_insert_with(|| VaultKey::derive(self.server_key.expose(), kid))
            .clone()
    }

    /// The key new rows are sealed with (the newest key id; the first one
    /// is made now if there is none).
    async fn current_key(&self, now: UnixTime) -> Result<VaultKey, VaultError> {
        if let Some((kid, _)) = self.store.vault_keys().await?.into_iter().next() {
            return Ok(self.key(&kid));
        }
        let kid = new_kid();
        self.store.add_vault_key(&kid, now).await?;
        Ok(self.key(&kid))
    }

    fn seal(
        key: &VaultKey,
        user_id: &str,
        upstream: &str,
        secrets: &Secrets,
    ) -> Result<String, VaultError> {
        let json = serde_json::to_vec(secrets).map_err(|_| VaultError::Seal)?;
        key.seal(Row { user_id, upstream }, &json)
            .map_err(|_| VaultError::Seal)
    }

    fn open(&self, record: &UpstreamTokenRecord) -> Result<TokenSet, VaultError> {
        let unreadable = || VaultError::Unreadable {
            upstream: record.upstream.clone(),
        };
        let plain = self
            .key(&record.kid)
            .open(
                Row {
                    user_id: &record.user_id,
                    upstream: &record.upstream,
                },
                &record.sealed,
            )
            .map_err(|_| unreadable())?;
        let secrets: Secrets = serde_json::from_slice(&plain).map_err(|_| unreadable())?;
        Ok(TokenSet {
            secrets,
            expires_at: record.expires_at,
            scope: record.scope.clone(),
        })
    }

    /// Stores a new connection of `user_id` to `upstream` (at `url`, the
    /// URL the tokens were issued for), replacing any.
    pub async fn connect(
        &self,
        user_id: &str,
        upstream: &str,
        url: &str,
        tokens: &TokenSet,
        account: Option<String>,
        now: UnixTime,
    ) -> Result<UpstreamTokenRecord, VaultError> {
        let key = self.current_key(now).await?;
        let version = self
            .store
            .upstream_token(user_id, upstream)
            .await?
            .map_or(1, |r| r.version + 1);
        let record = UpstreamTokenRecord {
            user_id: user_id.to_string(),
            upstream: upstream.to_string(),
            url: Some(url.to_string()),
            kid: key.kid().to_string(),
            sealed: Self::seal(&key, user_id, upstream, &tokens.secrets)?,
            expires_at: tokens.expires_at,
            scope: tokens.scope.clone(),
            account,
            version,
            created_at: now,
            updated_at: now,
            last_used_at: None,
        };
        self.store.put_upstream_token(&record, None).await?;
        Ok(record)
    }

    /// The user's connection to `upstream`, opened; `None` if not connected.
    pub async fn connection(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<Connection>, VaultError> {
        let Some(record) = self.store.upstream_token(user_id, upstream).await? else {
            return Ok(None);
        };
        let tokens = self.open(&record)?;
        Ok(Some(Connection { record, tokens }))
    }

    /// Replaces the tokens of `old` (a refresh) if the row is still the
    /// version read; returns the new row, or `None` if another writer won.
    pub async fn replace(
        &self,
        old: &UpstreamTokenRecord,
        tokens: &TokenSet,
        now: UnixTime,
    ) -> Result<Option<UpstreamTokenRecord>, VaultError> {
        let key = self.current_key(now).await?;
        let record = UpstreamTokenRecord {
            kid: key.kid().to_string(),
            sealed: Self::seal(&key, &old.user_id, &old.upstream, &tokens.secrets)?,
            expires_at: tokens.expires_at,
            scope: tokens.scope.clone(),
            version: old.version + 1,
            updated_at: now,
            ..old.clone()
        };
        Ok(self
            .store
            .put_upstream_token(&record, Some(old.version))
            .await?
            .then_some(record))
    }

    /// Makes a new key id and re-seals every row under it. Returns the new
    /// key id and how many rows were re-sealed. Rows that cannot be opened
    /// are left as they are and counted in the second number.
    pub async fn rotate(&self, now: UnixTime) -> Result<(String, u64, u64), VaultError> {
        let kid = new_kid();
        // The new key must be the newest even if the clock went back.
        let newest = self
            .store
            .vault_keys()
            .await?
            .first()
            .map_or(now, |(_, at)| (*at + 1).max(now));
        self.store.add_vault_key(&kid, newest).await?;
        let key = self.key(&kid);
        let (mut resealed, mut unreadable) = (0, 0);
        for mut record in self.store.all_upstream_tokens().await? {
            loop {
                if record.kid == kid {
                    break;
                }
                let tokens = match self.open(&record) {
                    Ok(t) => t,
                    Err(VaultError::Unreadable { .. }) => {
                        unreadable += 1;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let next = UpstreamTokenRecord {
                    kid: kid.clone(),
                    sealed: Self::seal(&key, &record.user_id, &record.upstream, &tokens.secrets)?,
                    version: record.version + 1,
                    updated_at: now,
                    ..record.clone()
                };
                if self
                    .store
                    .put_upstream_token(&next, Some(record.version))
                    .await?
                {
                    resealed += 1;
                    break;
                }
                // Changed meanwhile (a refresh, a new connection): read it
                // again; gone (a disconnect): nothing to do.
                match self
                    .store
                    .upstream_token(&record.user_id, &record.upstream)
                    .await?
                {
                    Some(r) => record = r,
                    None => break,
                }
            }
        }
        Ok((kid, resealed, unreadable))
    }
}
