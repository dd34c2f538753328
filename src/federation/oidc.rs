//! OpenID Connect providers (OpenID Connect Core 1.0 §3.1, the
//! authorization code flow; Discovery 1.0), through the `openidconnect`
//! crate: discovery and JWKS, the authorization URL with `state`, `nonce`
//! and PKCE, the code exchange, and ID token validation (signature against
//! the provider's JWKS, `iss`, `aud`, `exp`, `nonce`: Core §3.1.3.7).
//!
//! Discovery happens on first use, not at start-up, so a provider that is
//! down does not stop mcpgate; the document (with the JWKS) is cached for
//! [`REFRESH_AFTER`], and a stale copy is used while the provider cannot be
//! reached.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::federation::{FederationError, Identity};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Map, Value};

use super::http_client::Http;
use super::{ProviderRequest, claims_identity, exchange_error, fetch_json};
use crate::federation::config::ClientAuth;

/// How long discovery metadata and keys are reused.
pub const REFRESH_AFTER: Duration = Duration::from_secs(3600);

pub struct Oidc {
    issuer: IssuerUrl,
    cache: Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

fn unavailable(reason: impl Into<String>) -> FederationError {
    FederationError::ProviderUnavailable {
        reason: reason.into(),
    }
}

impl Oidc {
    pub fn new(issuer: &str) -> Result<Self, String> {
        Ok(Self {
            issuer: IssuerUrl::new(issuer.to_string()).map_err(|e| e.to_string())?,
            cache: Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The provider's metadata: cached, else discovered now.
    async fn metadata(
        &self,
        http: &reqwest::Client,
    ) -> Result<CoreProviderMetadata, FederationError> {
        let cached = self.cache.lock().ok().and_then(|c| c.clone());
        if let Some((m, at)) = &cached
            && at.elapsed() < REFRESH_AFTER
        {
            return Ok(m.clone());
        }
        let client = Http(http);
        match CoreProviderMetadata::discover_async(self.issuer.clone(), &client).await {
            Ok(m) => {
                if let Ok(mut c) = self.cache.lock() {
                    *c = Some((m.clone(), Instant::now()));
                }
                Ok(m)
            }
            Err(e) => {
                let reason = format!(
                    "discovery of {} failed: {}",
                    self.issuer.as_str(),
                    short(&e.to_string())
                );
                match cached {
                    Some((m, _)) => {
                        tracing::warn!(event = "federation.discovery_stale", issuer = %self.issuer.as_str(), "{reason}; using the cached metadata");
                        Ok(m)
                    }
                    None => Err(unavailable(reason)),
                }
            }
        }
    }

    /// Forgets the cached metadata (after a key the JWKS does not have).
    fn forget(&self) {
        if let Ok(mut c) = self.cache.lock() {
            *c = None;
        }
    }

    async fn client(
        &self,
        req: &ProviderRequest<'_>,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        FederationError,
    > {
        let metadata = self.metadata(req.http).await?;
        let redirect = RedirectUrl::new(req.callback_url.to_string())
            .map_err(|e| unavailable(format!("invalid callback URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(req.config.client_id.clone()),
            req.secret.map(|s| ClientSecret::new(s.expose().clone())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(match req.config.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Post => AuthType::RequestBody,
        }))
    }

    /// The provider's authorization URL for this sign-in.
    pub async fn authorization_url(
        &self,
        req: &ProviderRequest<'_>,
        state: String,
        verifier: String,
        nonce: String,
    ) -> Result<String, FederationError> {
        let client = self.client(req).await?;
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier));
        let mut auth = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for s in req.config.scopes() {
            if s != "openid" {
                auth = auth.add_scope(Scope::new(s));
            }
        }
        Ok(auth.url().0.to_string())
    }

    /// Exchanges the code and validates the ID token; returns the identity.
    pub async fn finish(
        &self,
        req: &ProviderRequest<'_>,
        code: String,
        verifier: String,
        nonce: String,
        now: i64,
    ) -> Result<Identity, FederationError> {
        let client = self.client(req).await?;
        let http = req.http;
        let http_client = Http(http);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unavailable(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&http_client)
            .await
            .map_err(exchange_error)?;
        let Some(id_token) = token.id_token() else {
            return Err(FederationError::InvalidIdToken {
                reason: "the token response has no id_token".into(),
            });
        };
        let verifier = client
            .id_token_verifier()
            .set_time_fn(move || chrono::DateTime::from_timestamp(now, 0).unwrap_or_default());
        let claims = match id_token.claims(&verifier, &Nonce::new(nonce)) {
            Ok(c) => c,
            Err(e) => {
                if matches!(
                    e,
                    openidconnect::ClaimsVerificationError::SignatureVerification(_)
                ) {
                    // Perhaps the provider rotated its keys: rediscover next time.
                    self.forget();
                }
                return Err(FederationError::InvalidIdToken {
                    reason: short(&e.to_string()),
                });
            }
        };
        let subject = claims.subject().as_str().to_string();
        // The claims were verified above; read them all (for required_claim).
        let mut all = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
            .unwrap_or_default();
        let rule = req.config.required_claim.as_ref().map(|c| c.name.as_str());
        let wants_more = !all.contains_key("email") || rule.is_some_and(|r| !all.contains_key(r));
        let metadata = self.metadata(req.http).await?;
        if wants_more && let Some(endpoint) = metadata.userinfo_endpoint() {
            // OpenID Connect Core §5.3: the user-info claims, for a subject
            // that must be the ID token's (§5.3.2).
            let info = fetch_json(
                req.http,
                endpoint.url().as_str(),
                token.access_token().secret(),
            )
            .await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(FederationError::InvalidUserInfo {
                    reason: "the user-info subject is not the ID token's".into(),
                });
            }
            for (k, v) in info {
                all.entry(k).or_insert(v);
            }
        }
        let mut identity = claims_identity(all, "sub", "email", "preferred_username", "name");
        identity.subject = subject;
        Ok(identity)
    }
}

/// A provider message, cut to a loggable length.
pub(crate) fn short(s: &str) -> String {
    s.chars().take(300).collect()
}
