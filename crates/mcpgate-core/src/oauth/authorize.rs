//! The authorization request (RFC 6749 §4.1.1) and its response.
//!
//! Validation happens in two stages, because RFC 6749 §4.1.2.1 forbids
//! redirecting to an unverified URI:
//! 1. [`client_id`] and, once the client is loaded, the redirect URI: any
//!    failure here is shown to the user as a page ([`Rejection::Page`]).
//! 2. Everything else (`response_type`, PKCE per RFC 7636 and RFC 9700
//!    §2.1.1, `scope` per RFC 6749 §3.3, `resource` per RFC 8707): failures
//!    are sent back to the client's redirect URI with `error`,
//!    `error_description`, `state` and `iss` (RFC 9207) ([`Rejection::Redirect`]).
//!
//! The same validation runs again when the login and consent forms are
//! posted, so a tampered form cannot widen what was asked.

use super::policy::{OFFLINE_ACCESS, Policy};
use super::{ErrorCode, OAuthError, SecurityEvent, params::Params};
use crate::crypto::{hash_secret, random_b64, random_uuid};
use crate::domain::{ClientId, CodeChallenge, RedirectUri, ResourceUri, Scope};
use crate::model::{AuthCode, Client, Consent, GrantType, UnixTime};
use crate::secret::Secret;

/// The parameters of an authorization request that the login and consent
/// forms carry along.
pub const REQUEST_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub redirect_uri_explicit: bool,
    pub scope: Scope,
    pub resource: ResourceUri,
    pub state: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
}

/// Where an authorization error goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The client or redirect URI cannot be trusted: show an error page.
    Page(OAuthError),
    /// Send the error to the client's (verified) redirect URI.
    Redirect(Box<ErrorRedirect>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: RedirectUri,
    pub error: OAuthError,
    pub state: Option<String>,
}

impl ErrorRedirect {
    /// The `Location` of the error response (RFC 6749 §4.1.2.1, RFC 9207).
    pub fn location(&self, issuer: &str) -> String {
        let mut params = vec![
            ("error", self.error.code.as_str()),
            ("error_description", self.error.description.as_str()),
        ];
        if let Some(s) = &self.state {
            params.push(("state", s));
        }
        params.push(("iss", issuer));
        self.redirect_uri.with_params(params)
    }
}

/// Stage 1a: the `client_id` parameter.
pub fn client_id(params: &Params) -> Result<ClientId, Rejection> {
    if params.repeated() == Some("client_id") {
        return Err(Rejection::Page(OAuthError::invalid_request(
            "the parameter \"client_id\" was sent more than once",
        )));
    }
    let raw = params.get("client_id").ok_or_else(|| {
        Rejection::Page(OAuthError::invalid_request(
            "the client_id parameter is missing, so this request cannot be sent back to an application",
        ))
    })?;
    ClientId::parse(raw).map_err(|e| Rejection::Page(OAuthError::invalid_request(e.0)))
}

/// The page shown when the `client_id` names no registered client.
pub fn unknown_client(client_id: &ClientId) -> Rejection {
    Rejection::Page(OAuthError::invalid_client(format!(
        "no application is registered with client_id {client_id}; it may have expired or been removed: register the client again"
    )))
}

/// Stages 1b and 2: everything once the client is known.
pub fn validate(
    params: &Params,
    client: &Client,
    policy: &Policy,
) -> Result<AuthorizationRequest, Rejection> {
    let (redirect_uri, redirect_uri_explicit) = redirect_uri(params, client)?;
    let state = params.get("state").map(str::to_string);
    let fail = |error: OAuthError| {
        Rejection::Redirect(Box::new(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            error,
            state: state.clone(),
        }))
    };
    if let Some(e) = params.repeated_error() {
        return Err(fail(e));
    }

    match params.get("response_type") {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "the response_type parameter is missing; use response_type=code",
            )));
        }
        Some("code") => {}
        Some(other) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use response_type=code"),
            )));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::unauthorized_client(
            "this client did not register the authorization_code grant",
        )));
    }

    let scope = scope(params, client, policy).map_err(fail)?;
    let resource = resource(params, policy).map_err(fail)?;
    let code_challenge = pkce(params, &redirect_uri, policy).map_err(fail)?;

    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_explicit,
        scope,
        resource,
        state,
        code_challenge,
    })
}

fn redirect_uri(params: &Params, client: &Client) -> Result<(RedirectUri, bool), Rejection> {
    if params.repeated() == Some("redirect_uri") {
        return Err(Rejection::Page(OAuthError::invalid_request(
            "the parameter \"redirect_uri\" was sent more than once",
        )));
    }
    // The pages never list the registered redirect URIs: the page is shown
    // to whoever opens the link, and the list tells an attacker which
    // callbacks to aim at.
    let registered = &client.metadata.redirect_uris;
    match params.get("redirect_uri") {
        None => match registered.as_slice() {
            [only] => Ok((only.clone(), false)),
            _ => Err(Rejection::Page(OAuthError::invalid_request(
                "the redirect_uri parameter is required because this client registered more than one redirect URI",
            ))),
        },
        Some(raw) => {
            let requested = RedirectUri::parse(raw).map_err(|e| {
                Rejection::Page(OAuthError::invalid_request(format!(
                    "invalid redirect_uri: {}",
                    e.0
                )))
            })?;
            if registered.iter().any(|r| r.matches(&requested)) {
                Ok((requested, true))
            } else {
                Err(Rejection::Page(
                    OAuthError::invalid_request(format!(
                        "redirect URI mismatch: {raw} is not registered for this client; the application must send one of the redirect URIs it registered, exactly"
                    ))
                    .with_event(SecurityEvent::RedirectUriMismatch),
                ))
            }
        }
    }
}

fn scope(params: &Params, client: &Client, policy: &Policy) -> Result<Scope, OAuthError> {
    let default = client
        .metadata
        .scope
        .clone()
        .unwrap_or_else(|| policy.default_scope.clone());
    let refresh = policy.refreshes_for(client);
    let Some(raw) = params.get("scope").filter(|s| !s.trim().is_empty()) else {
        // RFC 6749 §3.3: a missing scope means the default.
        return Ok(policy.granted_scope(default.clone(), refresh, &default));
    };
    let requested = Scope::parse(raw).map_err(|e| OAuthError::invalid_scope(e.0))?;
    let unknown = policy.unknown_scopes(&requested);
    if !unknown.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "unknown scope {}; this server offers: {}",
            unknown.join(" "),
            policy.as_scopes_supported().join(" ")
        )));
    }
    // offline_access asks for a refresh token, not for a permission: it is
    // never beyond what a client registered. The registered scope limits
    // only clients the operator added: a client that registered itself (or
    // describes itself in a metadata document) chose its `scope` itself and
    // could register again with more, so there it limits nothing, and it
    // must not stop a step-up (MCP 2025-11-25): clients register with the
    // scope of the first challenge, then ask for more when a call needs
    // it. The user's consent is what bounds them.
    if client.kind == crate::model::ClientKind::Preregistered
        && let Some(registered) = &client.metadata.scope
        && let Some(asked) = requested.without(OFFLINE_ACCESS)
        && !asked.is_subset_of(registered)
    {
        return Err(OAuthError::invalid_scope(format!(
            "scope {requested} goes beyond what this client registered ({registered})"
        )));
    }
    Ok(policy.granted_scope(requested, refresh, &default))
}

/// RFC 8707 §2: the resource the token is for: the MCP endpoint (or the
/// legacy SSE endpoint, another name of the same server).
pub fn resource(params: &Params, policy: &Policy) -> Result<ResourceUri, OAuthError> {
    let expected = &policy.resource;
    let values: Vec<&str> = params.get_all("resource").collect();
    match values.as_slice() {
        [] if policy.require_resource => Err(OAuthError::invalid_target(format!(
            "the resource parameter is required; set it to the MCP endpoint URL {expected}"
        ))),
        [] => Ok(expected.clone()),
        [one] => {
            ResourceUri::parse(one).map_err(|e| OAuthError::invalid_target(e.0))?;
            if let Some(ours) = policy.resource_named(one) {
                Ok(ours.clone())
            } else {
                Err(OAuthError::invalid_target(format!(
                    "resource {one} is not served here; the resource must be the MCP endpoint URL {expected}"
                )))
            }
        }
        _ => Err(OAuthError::invalid_target(format!(
            "tokens here are for one resource only; send resource={expected} once"
        ))),
    }
}

fn pkce(
    params: &Params,
    redirect_uri: &RedirectUri,
    policy: &Policy,
) -> Result<Option<CodeChallenge>, OAuthError> {
    match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(c), method) => CodeChallenge::parse(c, method)
            .map(Some)
            .map_err(|e| OAuthError::invalid_request(e.0)),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method was sent without code_challenge",
        )),
        (None, None) if policy.pkce_exempt(redirect_uri) => Ok(None),
        (None, None) => Err(OAuthError::invalid_request(
            "PKCE is required: send code_challenge (the base64url SHA-256 of a code_verifier) with code_challenge_method=S256",
        )),
    }
}

/// Whether the user's remembered consent covers this request.
pub fn consent_covers(consent: Option<&Consent>, request: &AuthorizationRequest) -> bool {
    consent.is_some_and(|c| {
        c.redirect_uri == request.redirect_uri.consent_key() && request.scope.is_subset_of(&c.scope)
    })
}

/// The consent to remember after the user approved `request`: the union of
/// what was approved before and what is approved now.
pub fn consent_after_approval(
    previous: Option<&Consent>,
    request: &AuthorizationRequest,
    user_id: &str,
    now: UnixTime,
) -> Consent {
    let scope = match previous {
        Some(p) => p.scope.union(&request.scope),
        None => request.scope.clone(),
    };
    Consent {
        user_id: user_id.to_string(),
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.consent_key(),
        scope,
        granted_at: now,
    }
}

/// A new authorization code for an approved request: the plaintext for the
/// redirect and the record (holding only its hash) for the store.
pub fn issue_code(
    request: &AuthorizationRequest,
    user_id: &str,
    policy: &Policy,
    now: UnixTime,
) -> (Secret<String>, AuthCode) {
    let code = random_b64::<32>();
    let record = AuthCode {
        code_hash: hash_secret(&code),
        grant_id: random_uuid(),
        client_id: request.client_id.clone(),
        user_id: user_id.to_string(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_explicit: request.redirect_uri_explicit,
        scope: request.scope.clone(),
        resource: request.resource.clone(),
        code_challenge: request.code_challenge.clone(),
        created_at: now,
        expires_at: now.saturating_add(policy.auth_code_ttl),
        used_at: None,
    };
    (Secret::new(code), record)
}

/// The `Location` of the successful response (RFC 6749 §4.1.2, RFC 9207).
pub fn success_location(
    request: &AuthorizationRequest,
    code: &Secret<String>,
    issuer: &str,
) -> String {
    let mut params = vec![("code", code.expose().as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    request.redirect_uri.with_params(params)
}

/// The `Location` for a user who denied access (RFC 6749 §4.1.2.1).
pub fn denied_location(request: &AuthorizationRequest, issuer: &str) -> String {
    ErrorRedirect {
        redirect_uri: request.redirect_uri.clone(),
        error: OAuthError::new(ErrorCode::AccessDenied, "the user denied access"),
        state: request.state.clone(),
    }
    .location(issuer)
}

#[cfg(test)]
mod tests;
