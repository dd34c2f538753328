//! Using a connection: the user's access token for each upstream request,
//! refreshed shortly before it expires or after the upstream refused it,
//! and the disconnect.
//!
//! Refresh is single-flight per (user, upstream):
//! - in one process, callers queue on a mutex per (user, upstream) and find
//!   the row already refreshed when their turn comes;
//! - across instances, the refresher first takes the row's lease
//!   (`Store::lease_upstream_refresh`: a compare-and-swap on the row's
//!   version, atomic on both backends); the others wait for the row's
//!   version to change (or the lease to run out) and use the new tokens;
//! - the new tokens (with the rotated refresh token, OAuth 2.1 §4.3.1) are
//!   stored (compare-and-swap on the version) before anyone uses them, so
//!   an old refresh token is never sent twice.
//!
//! A refresh the upstream refuses (`invalid_grant`: revoked or expired)
//! ends the connection: the tokens are deleted and the user sees the
//! `<prefix>_connect` tool again.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::upstream_oauth::tokens::TokenSet;

use super::service::UpstreamOAuth;
use super::upstreams::issued_for;
use super::vault::{Connection, VaultError};

/// How long one instance holds the refresh of a row.
const LEASE: i64 = 30;
/// How often a waiting caller looks at the row again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("not connected")]
    NotConnected,
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("refreshing the token failed: {0}")]
    Refresh(String),
}

impl UpstreamOAuth {
    fn flight(&self, user_id: &str, upstream: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut f = match self.flights.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        f.entry((user_id.to_string(), upstream.to_string()))
            .or_default()
            .clone()
    }

    /// The user's connection to `upstream` if it counts: the upstream is
    /// configured at `url`, the URL its tokens were issued for
    /// (`super::upstreams`).
    async fn usable(
        &self,
        user_id: &str,
        upstream: &str,
        url: &str,
    ) -> Result<Connection, TokenError> {
        let cfg = self
            .upstream(upstream)
            .filter(|c| c.url.as_deref() == Some(url))
            .ok_or(TokenError::NotConnected)?;
        self.vault
            .connection(user_id, upstream)
            .await?
            .filter(|c| issued_for(&c.record, &cfg))
            .ok_or(TokenError::NotConnected)
    }

    /// The access token to send `upstream` (at `url`, where the request
    /// goes) for `user_id` now. `refused`: the token the upstream just
    /// answered `401` to (it is refreshed even if not near its expiry).
    pub async fn access_token(
        &self,
        user_id: &str,
        upstream: &str,
        url: &str,
        refused: Option<&str>,
    ) -> Result<String, TokenError> {
        let conn = self.usable(user_id, upstream, url).await?;
        let now = self.clock.now();
        let stale = refused.is_some_and(|r| r == conn.tokens.secrets.access_token.expose());
        let conn = if stale || conn.tokens.needs_refresh(now) {
            self.refresh(user_id, upstream, url, conn.record.version)
                .await?
        } else {
            conn
        };
        let _ = self
            .store
            .touch_upstream_token(user_id, upstream, now)
            .await;
        Ok(conn.tokens.secrets.access_token.expose().clone())
    }

    /// Refreshes the connection read at `version`, or waits for whoever
    /// does; returns the connection after it.
    async fn refresh(
        &self,
        user_id: &str,
        upstream: &str,
        url: &str,
        version: i64,
    ) -> Result<Connection, TokenError> {
        let flight = self.flight(user_id, upstream);
        let _turn = flight.lock().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(LEASE as u64);
        loop {
            let conn = self.usable(user_id, upstream, url).await?;
            if conn.record.version != version {
                return Ok(conn);
            }
            let now = self.clock.now();
            if self
                .store
                .lease_upstream_refresh(user_id, upstream, version, now, now + LEASE)
                .await
                .map_err(VaultError::from)?
            {
                return self.refresh_now(conn).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::Refresh(
                    "another instance is refreshing and did not finish".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn refresh_now(&self, conn: Connection) -> Result<Connection, TokenError> {
        let upstream = conn.record.upstream.clone();
        let user_id = conn.record.user_id.clone();
        let Some(refresh_token) = conn.tokens.secrets.refresh_token.clone() else {
            let _ = self.store.delete_upstream_token(&user_id, &upstream).await;
            return Err(TokenError::NotConnected);
        };
        let cfg = self
            .upstream(&upstream)
            .filter(|c| issued_for(&conn.record, c))
            .ok_or(TokenError::NotConnected)?;
        let found = self
            .discovered(&cfg)
            .await
            .map_err(|e| TokenError::Refresh(e.to_string()))?;
        let client = self
            .client_for(&cfg, &found)
            .await
            .map_err(|e| TokenError::Refresh(e.to_string()))?;
        let form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.expose().clone()),
            ("resource", found.resource.clone()),
        ];
        let new = match self
            .token_request(
                &cfg,
                &found.server.token_endpoint,
                &client,
                &found.server.issuer,
                form,
                conn.tokens.scope.as_deref(),
            )
            .await
        {
            Ok(t) => t,
            Err(e) if e.contains("invalid_grant") => {
                tracing::warn!(event = "upstream_oauth.refresh_refused", upstream = %upstream, user = %user_id, "the upstream refused the refresh token; the user must connect again");
                if let Ok(true) = self.store.delete_upstream_token(&user_id, &upstream).await {
                    self.announce(&user_id, &upstream, false).await;
                }
                return Err(TokenError::NotConnected);
            }
            Err(e) => {
                tracing::warn!(event = "upstream_oauth.refresh_failed", upstream = %upstream, user = %user_id, error = %e, "refreshing an upstream token failed");
                return Err(TokenError::Refresh(e));
            }
        };
        let tokens: TokenSet = conn.tokens.refreshed(new);
        let now = self.clock.now();
        match self.vault.replace(&conn.record, &tokens, now).await? {
            Some(record) => {
                tracing::info!(event = "upstream_oauth.refreshed", upstream = %upstream, user = %user_id, "upstream token refreshed");
                Ok(Connection { record, tokens })
            }
            // The row changed under the lease (a new connection): use it.
            None => self
                .vault
                .connection(&user_id, &upstream)
                .await?
                .ok_or(TokenError::NotConnected),
        }
    }

    /// Ends the user's connection: revokes the refresh token (else the
    /// access token) at the upstream if it has a revocation endpoint
    /// (RFC 7009; a failure is logged, the tokens are deleted anyway), and
    /// deletes them. Returns whether there was a connection.
    pub async fn disconnect(&self, user_id: &str, upstream: &str) -> Result<bool, TokenError> {
        let conn = match self.vault.connection(user_id, upstream).await {
            Ok(c) => c,
            Err(VaultError::Unreadable { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        // Revoked only at the upstream the tokens were issued for: never
        // sent to a server a reload put in its place.
        if let (Some(conn), Some(cfg)) = (&conn, self.upstream(upstream))
            && issued_for(&conn.record, &cfg)
            && let Ok(found) = self.discovered(&cfg).await
            && let Some(endpoint) = found.server.revocation_endpoint.clone()
            && let Ok(client) = self.client_for(&cfg, &found).await
        {
            let (token, hint) = match &conn.tokens.secrets.refresh_token {
                Some(r) => (r.expose().clone(), "refresh_token"),
                None => (
                    conn.tokens.secrets.access_token.expose().clone(),
                    "access_token",
                ),
            };
            let mut form = vec![("token", token), ("token_type_hint", hint.to_string())];
            let req = self.authenticate(
                &cfg,
                self.http.post(&endpoint),
                &mut form,
                &client,
                &found.server.issuer,
            );
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            let sent = match req {
                Ok(req) => req
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| crate::outbound::error_chain(&e)),
                Err(e) => Err(e),
            };
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(event = "upstream_oauth.revoke_failed", upstream = %upstream, status = %r.status(), "revocation at the upstream failed")
                }
                Err(e) => {
                    tracing::warn!(event = "upstream_oauth.revoke_failed", upstream = %upstream, error = %e, "revocation at the upstream failed")
                }
            }
        }
        let deleted = self
            .store
            .delete_upstream_token(user_id, upstream)
            .await
            .map_err(VaultError::from)?;
        if deleted {
            tracing::info!(event = "upstream_oauth.disconnected", upstream = %upstream, user = %user_id, "upstream account disconnected");
            self.announce(user_id, upstream, false).await;
        }
        Ok(deleted)
    }
}
