//! Checking bearer tokens at the MCP endpoint, with a small in-memory cache
//! in front of the store. A cache entry lives at most [`CACHE_TTL`].
//!
//! Revocation takes effect at once on this instance and within a second on
//! the others: every revocation made through this process (revocation
//! endpoint, code replay, refresh reuse) clears the cache and publishes
//! [`Event::TokensRevoked`] on the cluster bus; every instance clears its
//! cache when that event (or a `Resync`) arrives. While the bus is not
//! receiving (its PostgreSQL listener is reconnecting) the cache is not
//! used. A lookup that started before a clear does not put its (possibly
//! stale) result into the cache (a generation counter). Expiry is checked
//! against the clock on every request, cached or not.
//!
//! The caller's groups (`[[policy]]` rules) are loaded and cached with the
//! token, so a group change made elsewhere (the CLI writes the database
//! directly) reaches requests at the latest [`CACHE_TTL`] later.
//!
//! Every clear, local or announced by the bus, is also signalled to
//! [`AuthServer::token_changes`]: the MCP layer re-checks the tokens of its
//! open streams at once (`mcp::streams`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use mcpgate_core::crypto::hash_secret;
use mcpgate_core::mcp::bearer::{self, BearerError, Caller, Groups, Subject};
use mcpgate_core::model::AccessToken;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::AuthServer;
use crate::cluster::bus::{self as cluster_bus, Bus, Event};
use crate::store::StoreError;

/// How long a token looked up in the store is trusted without a new lookup.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Entry>>,
    /// Bumped by every clear.
    generation: AtomicU64,
    bus: OnceLock<Arc<dyn Bus>>,
    /// Counts the clears, for those who wait for one.
    changes: watch::Sender<u64>,
}

struct Entry {
    token: AccessToken,
    subject: Subject,
    /// The user's groups, loaded with the subject: as fresh as the entry.
    groups: Groups,
    fetched: Instant,
}

impl TokenCache {
    /// Connects the cache to the cluster bus: clears on `TokensRevoked` and
    /// `Resync` until `cancel` (and then calls `also`, which clears the
    /// token endpoint's caches), and
    /// announces this instance's clears.
    pub fn attach(
        self: &Arc<Self>,
        bus: Arc<dyn Bus>,
        cancel: CancellationToken,
        also: Option<Box<dyn Fn() + Send + Sync>>,
    ) {
        let mut rx = bus.subscribe();
        if self.bus.set(bus).is_err() {
            return;
        }
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = cancel.cancelled() => return,
                    e = cluster_bus::next(&mut rx) => e,
                };
                let Some(cache) = cache.upgrade() else { return };
                match event {
                    Some(Event::TokensRevoked | Event::Resync) => {
                        cache.clear_local();
                        if let Some(also) = &also {
                            also();
                        }
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        });
    }

    fn usable(&self) -> bool {
        self.bus.get().is_none_or(|b| b.connected())
    }

    fn get(&self, hash: &str) -> Option<(AccessToken, Subject, Groups)> {
        if !self.usable() {
            return None;
        }
        let map = self.entries.read().ok()?;
        let e = map.get(hash)?;
        (e.fetched.elapsed() < CACHE_TTL)
            .then(|| (e.token.clone(), e.subject.clone(), e.groups.clone()))
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches a lookup made at `generation`, unless the cache was cleared since.
    fn put(
        &self,
        generation: u64,
        hash: String,
        token: AccessToken,
        subject: Subject,
        groups: Groups,
    ) {
        if let Ok(mut map) = self.entries.write() {
            if self.generation() != generation || !self.usable() {
                return;
            }
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
                    subject,
                    groups,
                    fetched: Instant::now(),
                },
            );
        }
    }

    /// Forgets every cached token here and tells the other instances to do
    /// the same.
    pub fn clear(&self) {
        self.clear_local();
        if let Some(bus) = self.bus.get().filter(|b| b.shared()).cloned() {
            tokio::spawn(async move {
                if let Err(e) = bus.publish(Event::TokensRevoked).await {
                    tracing::error!(error = %e, "cannot tell the other instances about a revocation");
                }
            });
        }
    }

    /// Forgets every cached token on this instance only.
    pub fn clear_local(&self) {
        if let Ok(mut map) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            map.clear();
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl AuthServer {
    /// Changes each time tokens may have been revoked, here or (through the
    /// cluster bus) on another instance.
    pub fn token_changes(&self) -> watch::Receiver<u64> {
        self.token_cache.changes.subscribe()
    }

    /// Forgets the tokens cached on this instance (a revocation this
    /// instance learnt of by itself, e.g. from the store).
    pub fn forget_cached_tokens(&self) {
        self.token_cache.clear_local();
    }

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
        let required = self.policy.required_scope();
        let (record, subject, groups) = match self.token_cache.get(&hash) {
            Some(hit) => hit,
            None => {
                let generation = self.token_cache.generation();
                let record = self.store.access_token(&hash).await.map_err(unchecked)?;
                bearer::check(record.as_ref(), &resources, &required, now)?;
                let Some(record) = record else {
                    return Err(BearerError::InvalidToken(
                        "the access token is unknown".into(),
                    ));
                };
                let subject = self.subject_of(&record).await?;
                let groups = self.groups_of(&subject).await?;
                self.token_cache.put(
                    generation,
                    hash.clone(),
                    record.clone(),
                    subject.clone(),
                    groups.clone(),
                );
                (record, subject, groups)
            }
        };
        bearer::check(Some(&record), &resources, &required, now)?;
        Ok(Caller {
            subject,
            client_id: record.client_id,
            scope: record.scope,
            expires_at: record.expires_at,
            token_hash: hash,
            groups,
        })
    }

    /// The groups of a user (every source), for `[[policy]]` rules; none
    /// for a service. Loaded with the token on a cache miss, so a change
    /// (`mcpgate user group ...`, a sign-in through an identity provider)
    /// reaches requests within [`CACHE_TTL`].
    async fn groups_of(&self, subject: &Subject) -> Result<Groups, BearerError> {
        let Subject::User { id, .. } = subject else {
            return Ok(Groups::default());
        };
        let mut names: Vec<String> = self
            .store
            .groups_of_user(id)
            .await
            .map_err(unchecked)?
            .into_iter()
            .map(|m| m.group)
            .collect();
        names.dedup();
        Ok(names.into())
    }

    /// Who a token acts for: its user, or (a service token) its client,
    /// named as the operator registered it.
    async fn subject_of(&self, record: &AccessToken) -> Result<Subject, BearerError> {
        match &record.user_id {
            Some(user_id) => {
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await
                    .map_err(unchecked)?
                    .ok_or_else(|| {
                        BearerError::InvalidToken("the user of this token no longer exists".into())
                    })?;
                Ok(Subject::User {
                    id: user.id,
                    username: user.username.into_string(),
                })
            }
            None => {
                let client = self
                    .store
                    .client(&record.client_id)
                    .await
                    .map_err(unchecked)?
                    .ok_or_else(|| {
                        BearerError::InvalidToken(
                            "the client of this service token no longer exists".into(),
                        )
                    })?;
                Ok(Subject::Service {
                    name: client.display_name().to_string(),
                })
            }
        }
    }
}

/// A store failure while checking a token. An unreachable database is a
/// 503: the token may well be good. Anything else stays a 401 that asks the
/// client to try again.
fn unchecked(e: StoreError) -> BearerError {
    if let StoreError::Unavailable(_) = e {
        tracing::warn!(event = "store.unavailable", error = %e, "database unavailable while checking a token");
        return BearerError::Unavailable(
            "the database is unavailable; try again in a few seconds".into(),
        );
    }
    tracing::error!(error = %e, "store failure while checking a token");
    BearerError::InvalidToken("the token could not be checked; try again".into())
}
