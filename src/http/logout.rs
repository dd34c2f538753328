//! `POST /v1/oauth/logout` and `POST /logout`: sign-out. Ends the browser's
//! sign-in session (the login session is deleted from the store) and
//! expires the session cookie.
//!
//! The form is protected like the sign-in and consent forms: it must carry
//! the CSRF token bound to the browser's cookie (`HMAC(server key, cookie)`,
//! `crate::auth::authorize`); a cross-site POST, which carries neither the
//! `SameSite=Lax` cookie nor the token, gets an error page and signs no one
//! out (RFC 6749 §10.12).
//!
//! The consent page's "Not you? Sign out" button posts its form here, with
//! the pending authorization request. When that request is still valid the
//! browser goes back (303) to the authorization endpoint with the same
//! request parameters, now showing the sign-in page. The return target is
//! built here, never taken from the form: only the authorization endpoint
//! next to this one, with the validated request's parameters, so the
//! endpoint cannot be used as an open redirect. Without a (valid) pending
//! request the answer is a "You are signed out" page.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mcpgate_core::oauth::OAuthError;
use mcpgate_core::oauth::authorize::REQUEST_PARAMS;
use mcpgate_core::oauth::params::Params;

use super::AppState;
use super::html::{page, redirect};
use crate::web::ErrorView;

pub async fn post(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match std::str::from_utf8(&body) {
        Ok(s) => Params::parse_lenient(s),
        Err(_) => {
            let e = OAuthError::invalid_request("the form is not UTF-8");
            return app.error_page(StatusCode::BAD_REQUEST, &e, None);
        }
    };
    let cookie = app.cookie.read(&headers);
    if !app
        .auth
        .check_csrf(cookie.as_deref(), params.get("csrf_token"))
    {
        let e = OAuthError::invalid_request(
            "this sign-out form has expired or was not sent from this site (its security token is missing or wrong), so you were not signed out",
        );
        return app.error_page(StatusCode::FORBIDDEN, &e, None);
    }
    if let Some(cookie) = cookie.as_deref()
        && let Err(e) = app.auth.sign_out(cookie).await
    {
        return app.error_page(StatusCode::INTERNAL_SERVER_ERROR, &e, None);
    }
    tracing::info!(event = "auth.logout", "signed out");
    let mut resp = match return_target(&app, uri.path(), &params).await {
        Some(location) => redirect(StatusCode::SEE_OTHER, &location),
        None => signed_out_page(&app),
    };
    resp.headers_mut()
        .insert(header::SET_COOKIE, app.cookie.expire());
    resp
}

/// The authorization endpoint with the pending request, if the form carried
/// one that is still valid.
async fn return_target(app: &AppState, logout_path: &str, params: &Params) -> Option<String> {
    if !params.has("client_id") {
        return None;
    }
    app.auth.validate_authorization(params).await.ok()?;
    Some(format!(
        "{}?{}",
        sibling(logout_path, "logout", "authorize")?,
        params.encode_only(&REQUEST_PARAMS)
    ))
}

/// The sign-out path next to an authorization endpoint path
/// (`/v1/oauth/authorize` → `/v1/oauth/logout`, `/authorize` → `/logout`).
pub(super) fn logout_path(authorize_path: &str) -> String {
    sibling(authorize_path, "authorize", "logout").unwrap_or_else(|| "/logout".into())
}

fn sibling(path: &str, from: &str, to: &str) -> Option<String> {
    path.strip_suffix(from).map(|dir| format!("{dir}{to}"))
}

fn signed_out_page(app: &AppState) -> Response {
    let view = ErrorView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        title: "You are signed out".into(),
        message: format!(
            "You signed out of {}. An application that needs you signs you in again.",
            app.server_name
        ),
        code: None,
        retry_url: None,
    };
    match app.pages.error(&view) {
        Ok(html) => page(StatusCode::OK, html),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be rendered.</p>".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_out_path_sits_next_to_the_authorization_endpoint() {
        assert_eq!(logout_path("/v1/oauth/authorize"), "/v1/oauth/logout");
        assert_eq!(logout_path("/authorize"), "/logout");
        assert_eq!(logout_path("/gate/authorize"), "/gate/logout");
        assert_eq!(
            sibling("/gate/v1/oauth/logout", "logout", "authorize").as_deref(),
            Some("/gate/v1/oauth/authorize")
        );
    }
}
