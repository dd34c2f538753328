//! Sign-in through upstream identity providers (`[[identity_provider]]`).
//!
//! The flow, all in the browser of the person signing in:
//! 1. Our login page (an MCP client's authorization request) offers one
//!    button per provider. Pressing it POSTs the login form (CSRF-checked)
//!    with `provider=<id>`: [`Federation::start`] stores a
//!    [`PendingLogin`] (the hash of a fresh random `state`, the hash of a
//!    browser-binding cookie, and our authorization request to come back
//!    to) and sends the browser to the provider with our `state`, a PKCE
//!    challenge and (OIDC) a `nonce`, both derived from `state` under the
//!    server key (`mcpgate_core::federation::secrets`). The provider only
//!    sees our callback URL, `<public_url>/oauth/callback`, never the MCP
//!    client's redirect URI.
//! 2. The provider sends the browser to `GET /oauth/callback?code&state`.
//!    [`Federation::finish`] takes the pending sign-in (once: an atomic
//!    delete, and only with the browser-binding cookie that started it,
//!    which stops login CSRF with a stolen callback URL), checks its age,
//!    exchanges the code (with the PKCE verifier), validates the ID token
//!    (OIDC) or reads the user-info endpoint (plain OAuth 2.0), applies the
//!    provider's restrictions and maps the identity to a local user
//!    ([`users`]); then a login session is opened as for a password
//!    sign-in and the browser continues to our consent page.
//!
//! The pending sign-in lives in the database, so the two steps may land on
//! different instances.
//!
//! - [`config`]: the `[[identity_provider]]` settings.
//! - [`oidc`]: OpenID Connect providers (`openidconnect` crate).
//! - [`plain`]: plain OAuth 2.0 providers (`oauth2` crate).
//! - [`http_client`]: reqwest behind the crates' HTTP interface.
//! - [`users`]: identity → local user; `mcpgate user link/unlink`.

pub mod config;
pub mod http_client;
pub mod oidc;
pub mod plain;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::crypto::{hash_secret, random_b64};
use mcpgate_core::federation::error::sanitize_code;
use mcpgate_core::federation::{FederationError, Identity, PendingLogin, Restrictions, secrets};
use mcpgate_core::model::User;
use mcpgate_core::oauth::params::Params;
use mcpgate_core::secret::Secret;
use serde_json::{Map, Value};

use crate::auth::AuthServer;
use config::{IdentityProviderConfig, ProviderKind};

/// How long a sign-in at a provider may take.
pub const PENDING_TTL: i64 = 600;
/// Timeout of every request to a provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// One configured provider.
pub struct Provider {
    pub config: IdentityProviderConfig,
    secret: Option<Secret<String>>,
    restrictions: Restrictions,
    oidc: Option<oidc::Oidc>,
}

impl Provider {
    pub fn id(&self) -> &str {
        &self.config.id
    }
    pub fn display_name(&self) -> &str {
        self.config.display_name()
    }
}

/// What a provider call needs.
pub struct ProviderRequest<'a> {
    pub config: &'a IdentityProviderConfig,
    pub secret: Option<&'a Secret<String>>,
    pub http: &'a reqwest::Client,
    pub callback_url: &'a str,
}

/// The identity providers and the HTTP client that talks to them.
pub struct Federation {
    providers: Vec<Arc<Provider>>,
    http: reqwest::Client,
    callback_url: String,
    password_login: bool,
}

/// A sign-in that left for a provider.
pub struct Started {
    /// The provider's authorization URL.
    pub location: String,
    /// The browser-binding cookie value (random; its hash is stored).
    pub browser_cookie: String,
}

/// A finished sign-in.
pub struct Finished {
    pub user: User,
    /// The new login session's cookie value.
    pub session_cookie: String,
    pub return_to: String,
}

/// A failed callback, with what the error page needs.
pub struct Failed {
    pub error: FederationError,
    pub provider_name: String,
    /// Our authorization request to start again from, when known.
    pub return_to: Option<String>,
}

impl Federation {
    /// Builds the providers, reading their client secrets. `callback_url`
    /// is `<public_url>/oauth/callback`.
    pub fn new(
        configs: &[IdentityProviderConfig],
        password_login: bool,
        callback_url: String,
        outbound: &crate::outbound::OutboundSettings,
    ) -> Result<Self, String> {
        config::validate(configs, password_login)?;
        let mut providers = Vec::new();
        for c in configs {
            let oidc = match c.kind {
                ProviderKind::Oidc => Some(
                    oidc::Oidc::new(c.issuer.as_deref().unwrap_or_default())
                        .map_err(|e| format!("identity_provider {:?}: issuer: {e}", c.id))?,
                ),
                ProviderKind::Oauth2 => None,
            };
            providers.push(Arc::new(Provider {
                secret: c.load_secret()?,
                restrictions: c.restrictions(),
                config: c.clone(),
                oidc,
            }));
        }
        Ok(Self {
            providers,
            http: http_client::build(PROVIDER_TIMEOUT, outbound)?,
            callback_url,
            password_login,
        })
    }

    /// No providers; password sign-in only.
    pub fn none() -> Self {
        Self {
            providers: Vec::new(),
            // No providers: the client is never used (and a client that
            // cannot be built leaves the default, which is never used either).
            http: http_client::build(PROVIDER_TIMEOUT, &Default::default()).unwrap_or_default(),
            callback_url: String::new(),
            password_login: true,
        }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// Whether the login page shows the username and password form.
    pub fn password_login(&self) -> bool {
        self.password_login
    }

    pub fn callback_url(&self) -> &str {
        &self.callback_url
    }

    pub fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.id() == id)
    }

    fn request<'a>(&'a self, p: &'a Provider) -> ProviderRequest<'a> {
        ProviderRequest {
            config: &p.config,
            secret: p.secret.as_ref(),
            http: &self.http,
            callback_url: &self.callback_url,
        }
    }

    /// Step 1: records the pending sign-in and returns where to send the
    /// browser. `return_to` is our authorization request (path and query).
    pub async fn start(
        &self,
        auth: &AuthServer,
        provider_id: &str,
        return_to: &str,
    ) -> Result<Started, FederationError> {
        let provider = self
            .provider(provider_id)
            .ok_or(FederationError::UnknownProvider)?;
        let state = random_b64::<32>();
        let browser_cookie = random_b64::<32>();
        let verifier = secrets::pkce_verifier(auth.key(), &state);
        let req = self.request(provider);
        let location = match &provider.oidc {
            Some(o) => {
                let nonce = secrets::nonce(auth.key(), &state);
                o.authorization_url(&req, state.clone(), verifier, nonce)
                    .await?
            }
            None => plain::authorization_url(&req, state.clone(), verifier)?,
        };
        let now = auth.now();
        auth.store
            .create_pending_login(&PendingLogin {
                state_hash: hash_secret(&state),
                provider_id: provider.id().to_string(),
                browser_hash: hash_secret(&browser_cookie),
                return_to: return_to.to_string(),
                created_at: now,
                expires_at: now + PENDING_TTL,
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure");
                FederationError::Server
            })?;
        tracing::info!(event = "federation.started", provider = %provider.id(), "sign-in sent to the identity provider");
        Ok(Started {
            location,
            browser_cookie,
        })
    }

    /// Step 2: the provider sent the browser back with `query`.
    pub async fn finish(
        &self,
        auth: &AuthServer,
        query: &Params,
        browser_cookie: Option<&str>,
    ) -> Result<Finished, Failed> {
        let text = |k: &str| query.get(k);
        let fail = |error, provider: Option<&Provider>, return_to: Option<&str>| Failed {
            error,
            provider_name: provider
                .map(|p| p.display_name().to_string())
                .unwrap_or_else(|| "The identity provider".into()),
            return_to: return_to.map(str::to_string),
        };
        let (Some(state), Some(browser)) = (text("state"), browser_cookie) else {
            return Err(fail(FederationError::BadState, None, None));
        };
        let pending = match auth
            .store
            .take_pending_login(&hash_secret(state), &hash_secret(browser))
            .await
        {
            Ok(Some(p)) => p,
            Ok(None) => return Err(fail(FederationError::BadState, None, None)),
            Err(e) => {
                tracing::error!(error = %e, "store failure");
                return Err(fail(FederationError::Server, None, None));
            }
        };
        let back = Some(pending.return_to.as_str());
        let now = auth.now();
        let Some(provider) = self.provider(&pending.provider_id) else {
            return Err(fail(FederationError::UnknownProvider, None, back));
        };
        let p = Some(provider.as_ref());
        if now > pending.expires_at {
            return Err(fail(FederationError::Expired, p, back));
        }
        if let Some(code) = text("error") {
            let e = if code == "access_denied" {
                FederationError::Denied
            } else {
                FederationError::ProviderError {
                    code: sanitize_code(code),
                }
            };
            return Err(fail(e, p, back));
        }
        // RFC 9207: a provider that names itself must be the one we asked.
        if let (Some(o), Some(iss)) = (&provider.oidc, text("iss"))
            && iss.trim_end_matches('/') != o.issuer().trim_end_matches('/')
        {
            return Err(fail(FederationError::BadState, p, back));
        }
        let Some(code) = text("code").filter(|c| !c.is_empty()) else {
            return Err(fail(
                FederationError::ProviderError {
                    code: "no_code".into(),
                },
                p,
                back,
            ));
        };
        let verifier = secrets::pkce_verifier(auth.key(), state);
        let req = self.request(provider);
        let identity = match &provider.oidc {
            Some(o) => {
                let nonce = secrets::nonce(auth.key(), state);
                o.finish(&req, code.to_string(), verifier, nonce, now).await
            }
            None => plain::finish(&req, code.to_string(), verifier).await,
        }
        .map_err(|e| fail(e, p, back))?;
        let user = users::resolve(auth, provider, &provider.restrictions, &identity)
            .await
            .map_err(|e| fail(e, p, back))?;
        users::refresh_groups(auth, provider, &user, &identity)
            .await
            .map_err(|e| fail(e, p, back))?;
        let session_cookie = auth
            .open_login_session(&user)
            .await
            .map_err(|_| fail(FederationError::Server, p, back))?;
        tracing::info!(event = "federation.login", provider = %provider.id(), username = ?user.username, "signed in through the identity provider");
        Ok(Finished {
            user,
            session_cookie,
            return_to: pending.return_to,
        })
    }
}

/// The identity in a claims object (ID token + user-info, or user-info
/// alone), reading the given field names.
pub(crate) fn claims_identity(
    claims: Map<String, Value>,
    subject: &str,
    email: &str,
    username: &str,
    name: &str,
) -> Identity {
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s == "true"),
        _ => None,
    };
    Identity {
        subject: plain::subject_text(claims.get(subject)),
        email: text(email),
        email_verified,
        preferred_username: text(username),
        name: text(name),
        claims: claims.clone(),
    }
}

/// A failed code exchange: the provider's refusal, or the provider being
/// unreachable.
pub(crate) fn exchange_error<
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponse + 'static,
>(
    e: oauth2::RequestTokenError<RE, T>,
) -> FederationError {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => FederationError::CodeExchangeFailed {
            reason: format!(
                "the token endpoint refused the code: {}",
                oidc::short(&r.to_string())
            ),
        },
        oauth2::RequestTokenError::Request(e) => FederationError::ProviderUnavailable {
            reason: format!("token request: {}", oidc::short(&e.to_string())),
        },
        oauth2::RequestTokenError::Parse(_, body) => {
            // The body may be an HTML error page of a provider that is down.
            let _ = body;
            FederationError::ProviderUnavailable {
                reason: "the token endpoint's answer is not a token response".into(),
            }
        }
        oauth2::RequestTokenError::Other(s) => FederationError::CodeExchangeFailed {
            reason: oidc::short(&s),
        },
    }
}

/// GETs a JSON object with a bearer token (a user-info endpoint).
pub(crate) async fn fetch_json(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
) -> Result<Map<String, Value>, FederationError> {
    fetch(http, url, access_token).await
}

/// GETs a JSON document of type `T` with a bearer token.
pub(crate) async fn fetch<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
) -> Result<T, FederationError> {
    let r = http
        .get(url)
        .bearer_auth(access_token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| FederationError::ProviderUnavailable {
            reason: format!("user-info request: {}", http_client::describe(&e)),
        })?;
    let status = r.status();
    if status.is_server_error() {
        return Err(FederationError::ProviderUnavailable {
            reason: format!("the user-info endpoint answered {status}"),
        });
    }
    if !status.is_success() {
        return Err(FederationError::InvalidUserInfo {
            reason: format!("the user-info endpoint answered {status}"),
        });
    }
    r.json::<T>()
        .await
        .map_err(|_| FederationError::InvalidUserInfo {
            reason: "the user-info response is not the expected JSON".into(),
        })
}

/// The browser-binding cookie's value: the random binding, then our
/// authorization request (base64url) for a "Try again" link when the
/// pending sign-in cannot be found.
pub fn binding_cookie_value(binding: &str, return_to: &str) -> String {
    format!("{binding}.{}", URL_SAFE_NO_PAD.encode(return_to))
}

/// Splits a binding cookie value into the binding and the return path.
pub fn parse_binding_cookie(value: &str) -> (String, Option<String>) {
    match value.split_once('.') {
        Some((b, rest)) => (
            b.to_string(),
            URL_SAFE_NO_PAD
                .decode(rest)
                .ok()
                .and_then(|v| String::from_utf8(v).ok()),
        ),
        None => (value.to_string(), None),
    }
}
