//! The browser side of the authorization endpoint: validating the request
//! against the stored client, browser sessions, CSRF tokens, sign-in with
//! rate limits, remembered consent, and issuing the code.
//!
//! Browser sessions: a random cookie value. Before sign-in it only anchors
//! the CSRF token (`HMAC(server key, cookie)`); signing in replaces it with a
//! fresh value whose hash is stored as a login session (no fixation).

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::crypto::{constant_time_eq, hash_secret, hmac_sha256, random_b64};
use mcpgate_core::domain::Username;
use mcpgate_core::model::{Client, LoginSession, User};
use mcpgate_core::oauth::authorize::{self, AuthorizationRequest, Rejection};
use mcpgate_core::oauth::params::Params;
use mcpgate_core::oauth::{OAuthError, SecurityEvent};

use super::lockout::Admission;
use super::{AuthServer, log_security, password, store_failure};
use crate::audit::{Event, Kind, Outcome};

/// A request that passed validation, with its client.
#[derive(Debug, Clone)]
pub struct Validated {
    pub client: Client,
    pub request: AuthorizationRequest,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failures from this address (on this account, or on all).
    #[error("too many failed sign-in attempts; wait {retry_after} seconds and try again")]
    RateLimited { retry_after: u64 },
    #[error("wrong username or password")]
    Invalid,
    /// The store failed (503 when it is out of reach, 500 otherwise).
    #[error("{}", .0.description)]
    Store(OAuthError),
}

/// What the user approved before for a client and redirect URI.
#[derive(Debug, Clone)]
pub struct PriorConsent {
    /// The request asks for nothing more: no consent page.
    pub covered: bool,
    /// The scope approved so far, if any.
    pub granted: Option<mcpgate_core::domain::Scope>,
}

/// A new browser-session cookie value.
pub fn new_cookie_value() -> String {
    random_b64::<32>()
}

impl AuthServer {
    /// Loads the client and validates the request (both stages).
    pub async fn validate_authorization(&self, params: &Params) -> Result<Validated, Rejection> {
        let client_id = authorize::client_id(params)?;
        let client = match self.documents.policy.recognise(&client_id) {
            // A Client ID Metadata Document: any failure is a page, never a
            // redirect (nothing about the client can be trusted yet).
            Some(Ok(url)) => self.document_client(&url).await.map_err(Rejection::Page)?,
            Some(Err(e)) => {
                tracing::warn!(event = "oauth.client_document_refused", client_id = ?client_id, reason = ?e.description, "client metadata document refused");
                return Err(Rejection::Page(e));
            }
            None => self
                .store
                .client(&client_id)
                .await
                .map_err(|e| Rejection::Page(store_failure(e)))?
                .ok_or_else(|| authorize::unknown_client(&client_id))?,
        };
        match authorize::validate(params, &client, &self.policy) {
            Ok(request) => Ok(Validated { client, request }),
            Err(rejection) => {
                let err = match &rejection {
                    Rejection::Page(e) => e,
                    Rejection::Redirect(r) => &r.error,
                };
                log_security(err, client_id.as_str());
                if matches!(rejection, Rejection::Redirect(_)) {
                    tracing::info!(client_id = ?client_id, error = %err.code, description = ?err.description, "authorization request refused");
                }
                Err(rejection)
            }
        }
    }

    /// The signed-in user of a browser session cookie, if any.
    pub async fn session_user(&self, cookie: Option<&str>) -> Result<Option<User>, OAuthError> {
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        let now = self.now();
        let Some(session) = self
            .store
            .login_session(&hash_secret(cookie), now)
            .await
            .map_err(store_failure)?
        else {
            return Ok(None);
        };
        self.store
            .user_by_id(&session.user_id)
            .await
            .map_err(store_failure)
    }

    /// The CSRF token that forms rendered for this browser must carry.
    pub fn csrf_token(&self, cookie: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(
            self.key(),
            format!("csrf\0{cookie}").as_bytes(),
        ))
    }

    /// Whether a posted form's CSRF token belongs to this browser.
    pub fn check_csrf(&self, cookie: Option<&str>, token: Option<&str>) -> bool {
        let ok = match (cookie, token) {
            (Some(c), Some(t)) => constant_time_eq(self.csrf_token(c).as_bytes(), t.as_bytes()),
            _ => false,
        };
        if !ok {
            tracing::warn!(
                event = SecurityEvent::CsrfRejected.as_str(),
                "form rejected: missing or wrong CSRF token"
            );
        }
        ok
    }

    /// Checks a password and opens a login session; returns the user and
    /// the new session cookie value. `username` is normalised (any case or
    /// width signs in). Failures are limited per (account, address) and per
    /// address, and an account over its own limit is only slowed down
    /// ([`super::lockout`]); failures take the same time whether or not the
    /// account exists.
    pub async fn sign_in(
        &self,
        username: &str,
        password_plain: &str,
        from: IpAddr,
    ) -> Result<(User, String), SignInError> {
        // A name that cannot name anyone is no account: only the address's
        // count applies.
        let account = Username::for_lookup(username);
        let delay = match self
            .sign_in_limits
            .admit(account.as_ref(), from, self.now())
        {
            Admission::Go { delay } => delay,
            Admission::Wait { seconds } => {
                tracing::warn!(event = "auth.login_rate_limited", username = ?username, address = %from, retry_after = seconds, "sign-in rate limit reached");
                self.audit.record(
                    Event::new(Kind::SignIn, Outcome::Denied)
                        .addr(from)
                        .detail("method", "password")
                        .detail("reason", "rate_limited"),
                );
                return Err(SignInError::RateLimited {
                    retry_after: seconds,
                });
            }
        };
        if !delay.is_zero() {
            // Holding no lock and no database connection.
            tracing::info!(event = "auth.login_delayed", username = ?username, address = %from, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "account over its failure limit: sign-in delayed");
            tokio::time::sleep(delay).await;
        }
        let user = match &account {
            Some(name) => self
                .store
                .user_by_username(name.as_str())
                .await
                .map_err(|e| SignInError::Store(store_failure(e)))?,
            None => None,
        };
        let phc = user.as_ref().and_then(|u| u.password_hash.clone());
        let known = user.as_ref().map(|u| (u.id.clone(), u.username.clone()));
        let known = known
            .as_ref()
            .map(|(id, name)| KnownUser { id, username: name });
        let ok = password::verify_async(password_plain.to_string(), phc).await;
        let (Some(user), true, Some(account)) = (user, ok, account) else {
            tracing::warn!(event = SecurityEvent::LoginFailed.as_str(), username = ?username, address = %from, "sign-in failed");
            // The name typed is recorded only if it is an account's (a
            // password typed into the name field must not be kept).
            let mut event = Event::new(Kind::SignIn, Outcome::Denied)
                .addr(from)
                .detail("method", "password");
            event = match known {
                Some(u) => event
                    .user(u.id, u.username.as_str())
                    .detail("reason", "wrong_password"),
                None => event.detail("reason", "unknown_user"),
            };
            self.audit.record(event);
            return Err(SignInError::Invalid);
        };
        self.sign_in_limits.succeeded(&account, from, self.now());
        let cookie = self
            .open_login_session(&user)
            .await
            .map_err(SignInError::Store)?;
        tracing::info!(event = "auth.login", username = ?user.username, "signed in");
        self.audit.record(
            Event::new(Kind::SignIn, Outcome::Ok)
                .user(&user.id, user.username.as_str())
                .addr(from)
                .detail("method", "password"),
        );
        Ok((user, cookie))
    }

    /// The wait the next sign-in as `username` would get before its
    /// password is checked (zero unless the account is over its limit).
    pub fn sign_in_delay(&self, username: &str) -> Duration {
        Username::for_lookup(username)
            .map(|u| self.sign_in_limits.delay(&u, self.now()))
            .unwrap_or_default()
    }

    /// Opens a login session for a user who has proved who they are (a
    /// password, or an identity provider); returns the new cookie value.
    /// A disabled account (the admin console) gets `access_denied`.
    pub async fn open_login_session(&self, user: &User) -> Result<String, OAuthError> {
        if self
            .store
            .disabled_user_ids()
            .await
            .map_err(store_failure)?
            .contains(&user.id)
        {
            tracing::warn!(event = "auth.login_disabled", username = ?user.username.as_str(), "sign-in to a disabled account refused");
            return Err(OAuthError::new(
                mcpgate_core::oauth::ErrorCode::AccessDenied,
                "this account is disabled; ask an administrator to enable it",
            ));
        }
        let cookie = new_cookie_value();
        let now = self.now();
        let session = LoginSession {
            session_hash: hash_secret(&cookie),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.login_session_ttl),
        };
        self.store
            .create_login_session(&session)
            .await
            .map_err(store_failure)?;
        Ok(cookie)
    }

    /// Ends a login session (one audit record if there was one).
    pub async fn sign_out(&self, cookie: &str) -> Result<(), OAuthError> {
        let hash = hash_secret(cookie);
        let session = self
            .store
            .login_session(&hash, self.now())
            .await
            .map_err(store_failure)?;
        self.store
            .delete_login_session(&hash)
            .await
            .map_err(store_failure)?;
        if let Some(session) = session {
            let mut event = Event::new(Kind::SignOut, Outcome::Ok);
            event = match self.store.user_by_id(&session.user_id).await {
                Ok(Some(u)) => event.user(&u.id, u.username.as_str()),
                _ => event.detail_text("user_id", &session.user_id),
            };
            self.audit.record(event);
        }
        Ok(())
    }

    /// Whether the user has already approved this client for this scope,
    /// and what they approved before (incremental consent: the page then
    /// shows only the scopes being added).
    pub async fn consent_given(
        &self,
        user: &User,
        v: &Validated,
    ) -> Result<PriorConsent, OAuthError> {
        let consent = self
            .store
            .consent(
                &user.id,
                &v.request.client_id,
                &v.request.redirect_uri.consent_key(),
            )
            .await
            .map_err(store_failure)?;
        let key = v.request.redirect_uri.consent_key();
        Ok(PriorConsent {
            covered: authorize::consent_covers(consent.as_ref(), &v.request),
            granted: consent.filter(|c| c.redirect_uri == key).map(|c| c.scope),
        })
    }

    /// The user approved: remember the consent, issue a code, and return the
    /// redirect `Location`.
    pub async fn approve(&self, user: &User, v: &Validated) -> Result<String, OAuthError> {
        let now = self.now();
        let previous = self
            .store
            .consent(
                &user.id,
                &v.request.client_id,
                &v.request.redirect_uri.consent_key(),
            )
            .await
            .map_err(store_failure)?;
        if !authorize::consent_covers(previous.as_ref(), &v.request) {
            let consent =
                authorize::consent_after_approval(previous.as_ref(), &v.request, &user.id, now);
            self.store
                .save_consent(&consent)
                .await
                .map_err(store_failure)?;
            self.audit.record(
                Event::new(Kind::Consent, Outcome::Ok)
                    .user(&user.id, user.username.as_str())
                    .client(v.request.client_id.as_str())
                    .detail("scope", v.request.scope.to_string()),
            );
        }
        let (code, record) = authorize::issue_code(&v.request, &user.id, &self.policy, now);
        self.store
            .create_code(&record)
            .await
            .map_err(store_failure)?;
        self.store
            .touch_client(&v.request.client_id, now)
            .await
            .map_err(store_failure)?;
        tracing::info!(
            event = "oauth.code_issued",
            client_id = ?v.request.client_id,
            user = %user.username,
            scope = %v.request.scope,
            pkce = v.request.code_challenge.is_some(),
            "authorization code issued"
        );
        Ok(authorize::success_location(
            &v.request,
            &code,
            &self.policy.issuer,
        ))
    }

    /// The user denied: the `Location` carrying `access_denied`.
    pub fn deny(&self, user: &User, v: &Validated) -> String {
        tracing::info!(event = "oauth.access_denied", client_id = ?v.request.client_id, "user denied access");
        self.audit.record(
            Event::new(Kind::Consent, Outcome::Denied)
                .user(&user.id, user.username.as_str())
                .client(v.request.client_id.as_str())
                .detail("scope", v.request.scope.to_string()),
        );
        authorize::denied_location(&v.request, &self.policy.issuer)
    }
}

/// The account a failed sign-in named, if it exists (for its audit record).
struct KnownUser<'a> {
    id: &'a str,
    username: &'a mcpgate_core::domain::Username,
}
