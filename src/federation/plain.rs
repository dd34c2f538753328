//! Plain OAuth 2.0 providers without ID tokens (GitHub's style): the
//! authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636) through the
//! `oauth2` crate, then one user-info request with the access token whose
//! fields (`subject_field`, `email_field`, ...) describe the account, and
//! optionally a list of the account's emails (`emails_endpoint`, GitHub's
//! `/user/emails`) for the primary verified address.

use mcpgate_core::federation::{FederationError, Identity};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

use super::http_client::Http;
use super::{ProviderRequest, claims_identity, exchange_error, fetch, fetch_json};
use crate::federation::config::ClientAuth;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(req: &ProviderRequest<'_>) -> Result<Client, FederationError> {
    let c = req.config;
    let bad = |e: oauth2::url::ParseError| FederationError::ProviderUnavailable {
        reason: format!("invalid endpoint URL: {e}"),
    };
    let mut client = BasicClient::new(ClientId::new(c.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(c.authorization_endpoint.clone().unwrap_or_default()).map_err(bad)?,
        )
        .set_token_uri(TokenUrl::new(c.token_endpoint.clone().unwrap_or_default()).map_err(bad)?)
        .set_redirect_uri(RedirectUrl::new(req.callback_url.to_string()).map_err(bad)?)
        .set_auth_type(match c.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Post => AuthType::RequestBody,
        });
    if let Some(secret) = req.secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().clone()));
    }
    Ok(client)
}

pub fn authorization_url(
    req: &ProviderRequest<'_>,
    state: String,
    verifier: String,
) -> Result<String, FederationError> {
    let client = client(req)?;
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier));
    let (url, _) = client
        .authorize_url(move || CsrfToken::new(state))
        .add_scopes(req.config.scopes().into_iter().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    Ok(url.to_string())
}

pub async fn finish(
    req: &ProviderRequest<'_>,
    code: String,
    verifier: String,
) -> Result<Identity, FederationError> {
    let client = client(req)?;
    let http = req.http;
    let http_client = Http(http);
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http_client)
        .await
        .map_err(exchange_error)?;
    let endpoint = req.config.userinfo_endpoint.clone().unwrap_or_default();
    let info = fetch_json(req.http, &endpoint, token.access_token().secret()).await?;
    let c = req.config;
    let mut identity = claims_identity(
        info,
        &c.subject_field,
        &c.email_field,
        &c.username_field,
        &c.name_field,
    );
    if identity.subject.is_empty() {
        return Err(FederationError::InvalidUserInfo {
            reason: format!("the user-info response has no {:?} field", c.subject_field),
        });
    }
    if let Some(emails) = &c.emails_endpoint {
        let list: Vec<Value> = fetch(req.http, emails, token.access_token().secret()).await?;
        let primary = list.iter().find(|e| {
            e.get("primary").and_then(Value::as_bool) == Some(true)
                && e.get("verified").and_then(Value::as_bool) == Some(true)
        });
        identity.email = primary
            .and_then(|e| e.get("email"))
            .and_then(Value::as_str)
            .map(str::to_string);
        identity.email_verified = identity.email.as_ref().map(|_| true);
    }
    Ok(identity)
}

/// A JSON value as a subject: strings as they are, numbers (GitHub's `id`)
/// in decimal.
pub(super) fn subject_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}
