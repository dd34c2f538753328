//! The token endpoint (RFC 6749 §3.2) and revocation (RFC 7009).
//!
//! Client authentication: the methods of RFC 6749 §2.3 and
//! `private_key_jwt` (RFC 7523 §2.2, verified in [`super::assertion`]), at
//! both endpoints.
//!
//! Code exchange: authenticate the client, load the code, let the rules
//! check it, then redeem it and store the tokens in one transaction. A code
//! used twice revokes its grant (RFC 9700 §4.2.4).
//!
//! Refresh: authenticate, load the token (and its successor), let the rules
//! decide between rotation, grace-window replay and reuse. Rotation is a
//! conditional update, so of two concurrent refreshes one rotates and the
//! other sees the rotation and replays the same successor.
//!
//! Client credentials (RFC 6749 §4.4, MCP SEP-1046): the authenticated
//! client (by secret or `private_key_jwt`, whichever it registered) is
//! checked by `grant::client_credentials`, then gets a service token, whose
//! subject is the client itself, and no refresh token (§4.4.3).

use mcpgate_core::crypto::hash_secret;
use mcpgate_core::model::Client;
use mcpgate_core::oauth::client_auth::{self, Authentication, ClientAuthError};
use mcpgate_core::oauth::grant::refresh_token::Decision;
use mcpgate_core::oauth::grant::{authorization_code, client_credentials, refresh_token};
use mcpgate_core::oauth::params::Params;
use mcpgate_core::oauth::token::{
    self, ClientCredentialsRequest, CodeRequest, RefreshRequest, TokenRequest, TokenResponse,
};
use mcpgate_core::oauth::tokens::{self, Minted};
use mcpgate_core::oauth::{ErrorCode, OAuthError, SecurityEvent};
use mcpgate_core::secret::Secret;

use super::assertion::Endpoint;
use super::{AuthServer, log_security, store_failure};
use crate::audit::{Event, Kind, Outcome};

/// A token endpoint failure: a plain OAuth error, or a client
/// authentication failure (which may need `WWW-Authenticate: Basic`).
#[derive(Debug)]
pub enum TokenError {
    OAuth(OAuthError),
    ClientAuth(ClientAuthError),
}

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

/// How many times a refresh that lost a race re-reads and decides again.
const MAX_RACE_RETRIES: usize = 3;

impl AuthServer {
    async fn authenticate_client(
        &self,
        params: &Params,
        authorization: Option<&str>,
        endpoint: Endpoint,
    ) -> Result<Client, TokenError> {
        let creds =
            client_auth::credentials(params, authorization).map_err(TokenError::ClientAuth)?;
        let document = self.documents.policy.recognise(&creds.client_id);
        let client = match (document, self.client_cache.get(&creds.client_id)) {
            // A metadata document: the store-backed document cache decides
            // (not the in-memory client cache, which knows no freshness).
            (Some(Ok(url)), _) => Some(
                self.document_client(&url)
                    .await
                    .map_err(TokenError::OAuth)?,
            ),
            (Some(Err(e)), _) => return Err(TokenError::OAuth(e)),
            (None, Some(hit)) => Some(hit),
            (None, None) => {
                let read = self
                    .store
                    .client(&creds.client_id)
                    .await
                    .map_err(|e| TokenError::OAuth(store_failure(e)))?;
                if let Some(c) = &read {
                    self.client_cache.put(c.client_id.clone(), c.clone());
                }
                read
            }
        };
        match client_auth::authenticate(&creds, client.as_ref()) {
            Err(e) => {
                log_security(&e.error, creds.client_id.as_str());
                return Err(TokenError::ClientAuth(e));
            }
            Ok(Authentication::Done) => {}
            Ok(Authentication::VerifyAssertion(assertion)) => {
                if let Some(c) = &client
                    && let Err(e) = self
                        .verify_client_assertion(c, assertion.expose(), endpoint)
                        .await
                {
                    if let TokenError::ClientAuth(a) = &e {
                        log_security(&a.error, creds.client_id.as_str());
                    }
                    return Err(e);
                }
            }
        }
        let client = client
            .ok_or_else(|| TokenError::OAuth(OAuthError::invalid_client("unknown client")))?;
        self.policy
            .admits_client(client.kind, client.metadata.token_endpoint_auth_method)
            .map_err(|error| {
                TokenError::ClientAuth(ClientAuthError {
                    error,
                    basic: false,
                })
            })?;
        Ok(client)
    }

    /// Handles a token request (counted in the metrics by grant type and
    /// outcome: `ok` or the OAuth error code).
    pub async fn token(
        &self,
        params: &Params,
        authorization: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let result = self.token_request(params, authorization).await;
        if let Some(m) = crate::telemetry::metrics::get() {
            let grant = crate::telemetry::labels::GrantType::of(params.get("grant_type"));
            let outcome = match &result {
                Ok(_) => "ok",
                Err(TokenError::OAuth(e)) => {
                    if e.event == Some(SecurityEvent::RefreshTokenReuse) {
                        m.refresh_token_reuse.inc();
                    }
                    e.code.as_str()
                }
                Err(TokenError::ClientAuth(e)) => e.error.code.as_str(),
            };
            m.token_request(grant, outcome);
        }
        result
    }

    async fn token_request(
        &self,
        params: &Params,
        authorization: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let client = self
            .authenticate_client(params, authorization, Endpoint::Token)
            .await?;
        let request = token::parse(params)?;
        let result = match request {
            TokenRequest::AuthorizationCode(req) => self.exchange_code(&client, &req).await,
            TokenRequest::RefreshToken(_) if !self.policy.issue_refresh_tokens => {
                Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    "refresh tokens are turned off on this server (issue_refresh_tokens = false); sign in again",
                ))
            }
            TokenRequest::RefreshToken(req) => self.refresh(&client, &req).await,
            TokenRequest::ClientCredentials(req) => self.client_credentials(&client, &req).await,
        };
        if let Err(e) = &result {
            log_security(e, client.client_id.as_str());
        }
        Ok(result?)
    }

    async fn exchange_code(
        &self,
        client: &Client,
        req: &CodeRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.now();
        let code_hash = hash_secret(req.code.expose());
        let code = self
            .store
            .code(&code_hash)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| {
                OAuthError::invalid_grant("the authorization code is unknown or has expired")
            })?;
        if let Err(e) = authorization_code::check(&code, req, client, &self.policy, now) {
            if e.event == Some(SecurityEvent::CodeReplay) {
                self.revoke_grant(&code.grant_id, "code replay").await?;
                self.audit_reuse(client, &code.user_id, "authorization_code")
                    .await;
            } else if code.client_id == client.client_id {
                // A failed attempt by the right client burns the code, so
                // that a verifier cannot be guessed by retrying.
                self.store
                    .mark_code_used(&code_hash, now)
                    .await
                    .map_err(store_failure)?;
            }
            return Err(e);
        }
        let with_refresh = self.policy.refreshes_for(client);
        let minted = tokens::for_code(&code, with_refresh, &self.policy, now);
        let won = self
            .store
            .redeem_code(&code_hash, now, &minted.access, minted.refresh.as_ref())
            .await
            .map_err(store_failure)?;
        if !won {
            // Another request redeemed the code between our read and write.
            self.revoke_grant(&code.grant_id, "code replay").await?;
            self.audit_reuse(client, &code.user_id, "authorization_code")
                .await;
            return Err(OAuthError::invalid_grant("this authorization code was already used; the tokens issued from it are now revoked")
                .with_event(SecurityEvent::CodeReplay));
        }
        self.store
            .touch_client(&client.client_id, now)
            .await
            .map_err(store_failure)?;
        tracing::info!(event = "oauth.token_issued", grant = "authorization_code", client_id = ?client.client_id, "tokens issued");
        if self.audit.is_enabled() {
            let event = Event::new(Kind::TokenIssued, Outcome::Ok)
                .client(client.client_id.as_str())
                .detail("grant", "authorization_code")
                .detail("scope", minted.access.scope.to_string())
                .detail("refresh_token", minted.refresh.is_some());
            self.audit
                .record(self.with_user(event, &code.user_id).await);
        }
        Ok(self.response(minted, now))
    }

    async fn client_credentials(
        &self,
        client: &Client,
        req: &ClientCredentialsRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.now();
        let granted = client_credentials::decide(client, req, &self.policy)?;
        let minted =
            tokens::for_client(client, &granted.scope, &granted.resource, &self.policy, now);
        self.store
            .create_access_token(&minted.access)
            .await
            .map_err(store_failure)?;
        self.store
            .touch_client(&client.client_id, now)
            .await
            .map_err(store_failure)?;
        tracing::info!(event = "oauth.token_issued", grant = "client_credentials", client_id = ?client.client_id, scope = %granted.scope, "service token issued");
        self.audit.record(
            Event::new(Kind::TokenIssued, Outcome::Ok)
                .client(client.client_id.as_str())
                .detail("grant", "client_credentials")
                .detail("scope", granted.scope.to_string())
                .detail_text("service", client.display_name()),
        );
        Ok(self.response(minted, now))
    }

    async fn refresh(
        &self,
        client: &Client,
        req: &RefreshRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = req.refresh_token.expose();
        let hash = hash_secret(presented);
        for _ in 0..MAX_RACE_RETRIES {
            let now = self.now();
            let token = self
                .store
                .refresh_token(&hash)
                .await
                .map_err(store_failure)?
                .ok_or_else(|| {
                    OAuthError::invalid_grant(
                        "the refresh token is unknown or has expired; sign in again",
                    )
                })?;
            let successor = match &token.successor_hash {
                Some(s) => self.store.refresh_token(s).await.map_err(store_failure)?,
                None => None,
            };
            match refresh_token::decide(&token, successor.as_ref(), req, client, &self.policy, now)
            {
                Err(e) => {
                    if e.event == Some(SecurityEvent::RefreshTokenReuse) {
                        self.revoke_grant(&token.grant_id, "refresh token reuse")
                            .await?;
                        self.audit_reuse(client, &token.user_id, "refresh_token")
                            .await;
                    }
                    return Err(e);
                }
                Ok(Decision::Rotate { scope }) => {
                    let minted = tokens::for_refresh(
                        &token,
                        presented,
                        &scope,
                        self.key(),
                        &self.policy,
                        now,
                    );
                    let Some(new_refresh) = &minted.refresh else {
                        return Err(OAuthError::server_error("no refresh token was minted"));
                    };
                    if self
                        .store
                        .rotate_refresh_token(&hash, now, &minted.access, new_refresh)
                        .await
                        .map_err(store_failure)?
                    {
                        tracing::info!(event = "oauth.token_issued", grant = "refresh_token", client_id = ?client.client_id, "tokens rotated");
                        self.audit_refreshed(client, &token.user_id, &scope.to_string(), false)
                            .await;
                        return Ok(self.response(minted, now));
                    }
                    // Lost a race with a concurrent refresh: decide again.
                }
                Ok(Decision::Replay) => {
                    let (access, refresh) = tokens::derived_values(presented, self.key());
                    let access_record = self
                        .store
                        .access_token(&hash_secret(&access))
                        .await
                        .map_err(store_failure)?
                        .filter(|a| a.is_active(now))
                        .ok_or_else(|| OAuthError::invalid_grant("this refresh token was already used and its successor is no longer valid; sign in again"))?;
                    tracing::info!(event = "oauth.refresh_replayed", client_id = ?client.client_id, "refresh repeated within the grace period; same successor returned");
                    self.audit_refreshed(
                        client,
                        &token.user_id,
                        &access_record.scope.to_string(),
                        true,
                    )
                    .await;
                    return Ok(TokenResponse {
                        access_token: Secret::new(access),
                        token_type: "Bearer",
                        expires_in: (access_record.expires_at - now).max(0),
                        refresh_token: Some(Secret::new(refresh)),
                        scope: access_record.scope.to_string(),
                    });
                }
            }
        }
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the refresh token is being used by concurrent requests; try again",
        ))
    }

    /// `event` with the user's id and, if the user still exists, username
    /// (read only when the audit log is on).
    pub(crate) async fn with_user(&self, event: Event, user_id: &str) -> Event {
        if !self.audit.is_enabled() {
            return event;
        }
        if let Some(name) = self.user_names.get(user_id) {
            return event.user(user_id, &name);
        }
        match self.store.user_by_id(user_id).await {
            Ok(Some(u)) => {
                self.user_names
                    .put(u.id.clone(), u.username.as_str().to_string());
                event.user(&u.id, u.username.as_str())
            }
            _ => event.detail_text("user_id", user_id),
        }
    }

    /// A used code or refresh token presented again (its grant revoked).
    async fn audit_reuse(&self, client: &Client, user_id: &str, token_type: &'static str) {
        if !self.audit.is_enabled() {
            return;
        }
        let event = Event::new(Kind::TokenReuseDetected, Outcome::Denied)
            .client(client.client_id.as_str())
            .detail("token_type", token_type)
            .detail("grant_revoked", true);
        self.audit.record(self.with_user(event, user_id).await);
    }

    async fn audit_refreshed(&self, client: &Client, user_id: &str, scope: &str, replay: bool) {
        if !self.audit.is_enabled() {
            return;
        }
        let event = Event::new(Kind::TokenRefreshed, Outcome::Ok)
            .client(client.client_id.as_str())
            .detail("grant", "refresh_token")
            .detail("scope", scope)
            .detail("replay", replay);
        self.audit.record(self.with_user(event, user_id).await);
    }

    fn response(&self, minted: Minted, now: i64) -> TokenResponse {
        TokenResponse {
            token_type: "Bearer",
            expires_in: minted.access.expires_at - now,
            scope: minted.access.scope.to_string(),
            access_token: minted.access_token,
            refresh_token: minted.refresh_token,
        }
    }

    pub(crate) async fn revoke_grant(&self, grant_id: &str, why: &str) -> Result<(), OAuthError> {
        let n = self
            .store
            .revoke_grant(grant_id, self.now())
            .await
            .map_err(store_failure)?;
        self.token_cache.clear();
        tracing::warn!(
            event = "oauth.grant_revoked",
            grant_id,
            tokens = n,
            reason = why,
            "grant revoked"
        );
        Ok(())
    }

    /// RFC 7009 revocation. Unknown tokens succeed silently (§2.2); a token
    /// of another client is refused.
    pub async fn revoke(
        &self,
        params: &Params,
        authorization: Option<&str>,
    ) -> Result<(), TokenError> {
        let client = self
            .authenticate_client(params, authorization, Endpoint::Revocation)
            .await?;
        let token = params.require("token")?;
        let hash = hash_secret(token);
        let now = self.now();
        let hint = params.get("token_type_hint");
        if let Some(h) = hint
            && !matches!(h, "access_token" | "refresh_token")
        {
            return Err(TokenError::OAuth(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                format!(
                    "token_type_hint {h:?} is not supported; use access_token or refresh_token"
                ),
            )));
        }
        if let Some(access) = self
            .store
            .access_token(&hash)
            .await
            .map_err(|e| TokenError::OAuth(store_failure(e)))?
        {
            if access.client_id != client.client_id {
                return Err(TokenError::OAuth(OAuthError::unauthorized_client(
                    "this token was issued to another client",
                )));
            }
            self.store
                .revoke_access_token(&hash, now)
                .await
                .map_err(|e| TokenError::OAuth(store_failure(e)))?;
            self.token_cache.clear();
            tracing::info!(event = "oauth.token_revoked", kind = "access_token", client_id = ?client.client_id, "token revoked");
            let event = Event::new(Kind::TokenRevoked, Outcome::Ok)
                .client(client.client_id.as_str())
                .detail("token_type", "access_token");
            let event = match &access.user_id {
                Some(u) => self.with_user(event, u).await,
                None => event,
            };
            self.audit.record(event);
            return Ok(());
        }
        if let Some(refresh) = self
            .store
            .refresh_token(&hash)
            .await
            .map_err(|e| TokenError::OAuth(store_failure(e)))?
        {
            if refresh.client_id != client.client_id {
                return Err(TokenError::OAuth(OAuthError::unauthorized_client(
                    "this token was issued to another client",
                )));
            }
            // RFC 7009 §2.1: revoking a refresh token revokes its grant.
            self.revoke_grant(&refresh.grant_id, "revoked by the client")
                .await?;
            let event = Event::new(Kind::TokenRevoked, Outcome::Ok)
                .client(client.client_id.as_str())
                .detail("token_type", "refresh_token");
            self.audit
                .record(self.with_user(event, &refresh.user_id).await);
        }
        Ok(())
    }
}
