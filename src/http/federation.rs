//! Sign-in through an upstream identity provider, HTTP side (the rules
//! and the provider calls are in `crate::federation`).
//!
//! - [`start`]: the login form was posted with `provider=<id>` (after its
//!   CSRF check in `super::authorize`): store the pending sign-in, set the
//!   browser-binding cookie and send the browser (303) to the provider.
//! - [`callback`]: `GET <public_url>/oauth/callback?code=...&state=...`
//!   (or `?error=...&state=...`, RFC 6749 §4.1.2.1): finish the sign-in,
//!   set the login-session cookie and continue (303) to our authorization
//!   request, which shows the consent page. Every failure ends on the
//!   error page with a "Try again" link to that request when it is known,
//!   and one log line with a stable `federation.*` event name.
//!
//! The binding cookie is `SameSite=Lax` (the provider's redirect back is a
//! top-level cross-site GET, which Lax cookies accompany), `HttpOnly`,
//! lives as long as a pending sign-in, and is cleared by the callback.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use mcpgate_core::oauth::params::Params;

use super::AppState;
use super::errors::federation_status;
use super::html::{page, redirect};
use crate::federation::{Failed, PENDING_TTL, binding_cookie_value, parse_binding_cookie};
use crate::web::ErrorView;

fn cookie_name(app: &AppState) -> &'static str {
    if app.auth.urls.issuer.starts_with("https://") {
        "__Host-mcpgate_federation"
    } else {
        "mcpgate_federation"
    }
}

fn set_cookie(app: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if app.auth.urls.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(app)
    ))
    .ok()
}

fn read_cookie(app: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(app);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 4096
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// Whether `path` is one of our authorization endpoints with a query (the
/// only place the binding cookie's "Try again" link may point to).
fn is_authorize_request(app: &AppState, path: &str) -> bool {
    let base = &app.auth.urls.base_path;
    [
        format!("{base}/v1/oauth/authorize?"),
        format!("{base}/authorize?"),
    ]
    .iter()
    .any(|p| path.starts_with(p.as_str()))
}

/// Starts a sign-in at `provider_id`; `return_to` is our authorization
/// request (path and query) to continue with afterwards.
pub async fn start(app: &AppState, provider_id: &str, return_to: &str) -> Response {
    match app
        .federation
        .get()
        .start(&app.auth, provider_id, return_to)
        .await
    {
        Ok(started) => {
            let mut r = redirect(StatusCode::SEE_OTHER, &started.location);
            let value = binding_cookie_value(&started.browser_cookie, return_to);
            if let Some(v) = set_cookie(app, &value, PENDING_TTL) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(error) => failure(
            app,
            Failed {
                provider_name: app
                    .federation
                    .get()
                    .provider(provider_id)
                    .map(|p| p.display_name().to_string())
                    .unwrap_or_else(|| "The identity provider".into()),
                error,
                return_to: Some(return_to.to_string()),
            },
        ),
    }
}

/// `GET /oauth/callback`.
pub async fn callback(
    State(app): State<AppState>,
    super::client_addr::ClientAddr(from): super::client_addr::ClientAddr,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse_lenient(uri.query().unwrap_or(""));
    let (binding, cookie_return) = match read_cookie(&app, &headers) {
        Some(v) => {
            let (b, r) = parse_binding_cookie(&v);
            (Some(b), r)
        }
        None => (None, None),
    };
    let mut resp = match app
        .federation
        .get()
        .finish(&app.auth, &params, binding.as_deref(), from)
        .await
    {
        Ok(done) => {
            if let Some(m) = crate::telemetry::metrics::get() {
                m.idp_signin(true);
            }
            let mut r = redirect(StatusCode::SEE_OTHER, &done.return_to);
            r.headers_mut().append(
                header::SET_COOKIE,
                app.cookie.set(&done.session_cookie, app.session_max_age),
            );
            r
        }
        Err(mut failed) => {
            if let Some(m) = crate::telemetry::metrics::get() {
                m.idp_signin(false);
            }
            if failed.return_to.is_none() {
                failed.return_to = cookie_return.filter(|p| is_authorize_request(&app, p));
            }
            failure(&app, failed)
        }
    };
    if let Some(v) = set_cookie(&app, "", 0) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Logs the failure under its event name and renders the error page.
fn failure(app: &AppState, f: Failed) -> Response {
    let event = f.error.event();
    let detail = f.error.detail().unwrap_or("");
    if matches!(f.error, mcpgate_core::federation::FederationError::Denied) {
        tracing::info!(event, provider = %f.provider_name, "federated sign-in denied at the provider");
    } else {
        tracing::warn!(event, provider = %f.provider_name, detail, "federated sign-in failed");
    }
    let view = ErrorView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        title: f.error.title().to_string(),
        message: f.error.message(&f.provider_name),
        code: Some(event.to_string()),
        retry_url: f.return_to,
    };
    match app.pages.error(&view) {
        Ok(html) => page(federation_status(&f.error), html),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be rendered.</p>".into(),
            )
        }
    }
}
