//! The authorization server's service layer: it reads the clock once per
//! request, loads what the protocol rules need from the [`Store`], lets the
//! rules in `mcpgate_core::oauth` decide, and commits the outcome. HTTP
//! handlers call it; so do the CLI and the tests.
//!
//! - [`account`]: a user's own grants (the account page) and revoking one.
//! - [`password`]: Argon2id hashing and constant-time sign-in.
//! - [`register`]: dynamic client registration (RFC 7591).
//! - [`authorize`]: the authorization request, sign-in, consent, codes.
//! - [`documents`]: clients identified by a Client ID Metadata Document
//!   (fetching, the store-backed cache, stale copies).
//! - [`token`]: the token endpoint (code exchange, refresh) and revocation.
//! - [`assertion`]: `private_key_jwt` client assertions (RFC 7523), with
//!   [`client_keys`] (the clients' `jwks_uri` key sets, cached).
//! - [`bearer`]: checking access tokens at the MCP endpoint (with a cache).
//! - [`users`]: user accounts (used by the CLI and first start).
//! - [`operator`]: the operator token of the detailed health report.
//! - [`lockout`]: failed sign-ins per account and per address (in memory).

pub mod account;
pub mod assertion;
pub mod authorize;
pub mod bearer;
pub mod client_cache;
pub mod client_keys;
pub mod documents;
pub mod lockout;
pub mod operator;
pub mod password;
pub mod register;
pub mod token;
pub mod users;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mcpgate_core::client_address::TrustedProxies;
use mcpgate_core::oauth::OAuthError;
use mcpgate_core::oauth::discovery::Urls;
use mcpgate_core::oauth::policy::Policy;

use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// Shared state of the authorization server.
pub struct AuthServer {
    pub store: Arc<dyn Store>,
    pub policy: Policy,
    pub urls: Urls,
    pub clock: Arc<dyn Clock>,
    /// Server key: derives refresh successors and CSRF tokens.
    key: Vec<u8>,
    login_session_ttl: i64,
    unused_client_ttl: i64,
    registration_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Failed sign-ins per account and per address (see [`lockout`]).
    pub(crate) sign_in_limits: lockout::SignInLimits,
    /// Proxies whose `X-Forwarded-For` names the client (rate limits).
    pub trusted_proxies: TrustedProxies,
    pub(crate) token_cache: Arc<bearer::TokenCache>,
    /// Clients as the token endpoint last read them (see [`client_cache`]).
    pub(crate) client_cache: Arc<client_cache::ClientCache>,
    /// User names for the token endpoint's audit records (see [`client_cache`]).
    pub(crate) user_names: Arc<client_cache::UserNames>,
    /// Key sets of `private_key_jwt` clients with a `jwks_uri`.
    pub(crate) client_keys: client_keys::JwksCache,
    /// Client ID Metadata Documents (see [`documents`]); off until
    /// [`AuthServer::with_documents`].
    pub documents: documents::Documents,
    /// The audit log (`crate::audit`); off until [`AuthServer::with_audit`].
    pub audit: crate::audit::Audit,
}

/// Options of [`AuthServer::new`] that the rules do not need.
pub struct Limits {
    pub login_session_ttl: i64,
    pub unused_client_ttl: i64,
    pub registrations_per_minute: u32,
    pub logins_per_minute: u32,
    pub trusted_proxies: TrustedProxies,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl AuthServer {
    pub fn new(
        store: Arc<dyn Store>,
        policy: Policy,
        urls: Urls,
        clock: Arc<dyn Clock>,
        key: Vec<u8>,
        limits: Limits,
    ) -> Self {
        Self {
            store,
            policy,
            urls,
            clock,
            key,
            login_session_ttl: limits.login_session_ttl,
            unused_client_ttl: limits.unused_client_ttl,
            registration_limiter: RateLimiter::keyed(per_minute(limits.registrations_per_minute)),
            sign_in_limits: lockout::SignInLimits::new(
                limits.logins_per_minute,
                limits.logins_per_minute.saturating_mul(3),
            ),
            trusted_proxies: limits.trusted_proxies,
            token_cache: Default::default(),
            client_cache: Default::default(),
            user_names: Default::default(),
            client_keys: client_keys::JwksCache::new(Arc::new(client_keys::HttpJwksFetcher::new(
                &Default::default(),
            ))),
            documents: documents::Documents::disabled(),
            audit: crate::audit::Audit::disabled(),
        }
    }

    /// Records security events in `audit`.
    pub fn with_audit(mut self, audit: crate::audit::Audit) -> Self {
        self.audit = audit;
        self
    }

    /// Turns on Client ID Metadata Documents as configured.
    /// Also gives the `jwks_uri` fetches the same outbound settings.
    pub fn with_documents(mut self, documents: documents::Documents) -> Self {
        self.client_keys = client_keys::JwksCache::new(Arc::new(
            client_keys::HttpJwksFetcher::new(documents.outbound_settings()),
        ));
        self.documents = documents;
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Connects the token cache to the cluster bus (see [`bearer`]).
    pub fn attach_bus(
        &self,
        bus: Arc<dyn crate::cluster::Bus>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let (clients, names) = (self.client_cache.clone(), self.user_names.clone());
        self.token_cache.attach(
            bus,
            cancel,
            Some(Box::new(move || {
                clients.clear();
                names.clear();
            })),
        );
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// Periodic clean-up: expired codes, sessions and tokens, clients
    /// that were registered but never used, and audit records past their
    /// retention (`audit_retention_days`); returns the rows purged (audit
    /// records included) and the clients removed.
    pub async fn housekeeping(&self) -> Result<(u64, u64), StoreError> {
        let now = self.now();
        // Keep expired rows a day: refresh-token reuse detection and code
        // replay detection need the history for a while.
        let mut purged = self.store.purge_expired(now - 86_400).await?;
        if let Some(keep) = self.audit.retention_ms() {
            purged += self
                .store
                .prune_audit(self.clock.now_ms().saturating_sub(keep))
                .await?;
        }
        let clients = self
            .store
            .delete_unused_clients(now.saturating_sub(self.unused_client_ttl))
            .await?;
        if clients > 0 {
            self.client_cache.clear();
        }
        self.registration_limiter.retain_recent();
        self.sign_in_limits.prune(now);
        Ok((purged, clients))
    }
}

/// A store failure, as the OAuth error a client sees (details go to the log).
/// An unreachable database is `temporarily_unavailable` (503 with
/// `Retry-After`, RFC 6749 §5.2 / §4.1.2.1): the client should retry, not
/// give up on its grant; anything else is `server_error` (500).
pub(crate) fn store_failure(e: StoreError) -> OAuthError {
    if let StoreError::Unavailable(_) = e {
        tracing::warn!(event = "store.unavailable", error = %e, "database unavailable");
        return OAuthError::new(
            mcpgate_core::oauth::ErrorCode::TemporarilyUnavailable,
            "the database is unavailable; try again in a few seconds",
        );
    }
    tracing::error!(error = %e, "store failure");
    OAuthError::server_error("the server could not complete the request; try again later")
}

/// Logs a security-relevant failure under its stable event name.
pub(crate) fn log_security(err: &OAuthError, client_id: &str) {
    if let Some(event) = err.event {
        tracing::warn!(event = event.as_str(), client_id = ?client_id, error = %err.code, description = ?err.description, "request refused");
    }
}
