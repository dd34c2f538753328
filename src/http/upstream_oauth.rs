//! Per-user OAuth to upstream MCP servers, HTTP side (the flow is in
//! `crate::upstream_oauth`):
//!
//! - `GET /connect/{upstream}?ticket=…`: a connect link from the
//!   `<prefix>_connect` tool. Signed in: on to the upstream's authorization
//!   endpoint (302). Not signed in: the sign-in page, which posts back here
//!   (`POST`, CSRF-checked) and continues with the same link.
//! - `GET /oauth/upstream/callback`: the upstream's answer; the
//!   "Connected to NAME" page, or a failure page.
//! - `GET /oauth/client.json`: mcpgate's Client ID Metadata Document.
//! - `GET /connections`, `POST /connections`: the signed-in user's
//!   connections (Connect, Reconnect, Disconnect; CSRF-checked).
//!
//! Every failure page names its stable log event (`upstream_oauth.*`),
//! which is logged once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::oauth::params::Params;
use mcpgate_core::upstream_oauth::connect::ConnectError;
use serde::Serialize;

use super::AppState;
use super::client_addr::ClientAddr;
use super::html::{page, redirect};
use crate::auth::authorize::{SignInError, new_cookie_value};
use crate::upstream_oauth::UpstreamOAuth;
use crate::web::ErrorView;

/// The OAuth service even when a reload removed the last `auth = "oauth"`
/// upstream: its links and callbacks still get their own page
/// (`ConnectError::Withdrawn`).
fn oauth(app: &AppState) -> Option<Arc<UpstreamOAuth>> {
    app.mcp.gateway.oauth_service().cloned()
}

fn render<S: Serialize>(app: &AppState, status: StatusCode, name: &str, view: &S) -> Response {
    match app.pages.upstream_page(name, view) {
        Ok(html) => page(status, html),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be rendered.</p>".into(),
            )
        }
    }
}

/// Logs the failure under its event name and renders its page.
pub(super) fn failure_page(app: &AppState, upstream: &str, e: &ConnectError) -> Response {
    if matches!(e, ConnectError::Denied(_)) {
        tracing::info!(event = e.event(), upstream = %upstream, detail = %e, "upstream connection refused");
    } else {
        tracing::warn!(event = e.event(), upstream = %upstream, detail = %e, "upstream connection failed");
    }
    let view = ErrorView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        title: e.title().to_string(),
        message: e.message(upstream),
        code: Some(e.event().to_string()),
        retry_url: oauth(app).map(|o| o.connections_url()),
    };
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    match app.pages.error(&view) {
        Ok(html) => page(status, html),
        Err(err) => render(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            "error.html",
            &err.to_string(),
        ),
    }
}

#[derive(Serialize)]
struct LoginView {
    stylesheet_url: String,
    server_name: String,
    action_url: String,
    upstream: Option<String>,
    /// What signing in is for (without an upstream to connect).
    purpose: &'static str,
    ticket: Option<String>,
    csrf_token: String,
    username: String,
    error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn login_page(
    app: &AppState,
    status: StatusCode,
    path: &str,
    upstream: Option<&str>,
    ticket: Option<&str>,
    cookie: Option<String>,
    username: &str,
    error: Option<&str>,
) -> Response {
    let (cookie, new_cookie) = match cookie {
        Some(c) => (c, false),
        None => (new_cookie_value(), true),
    };
    let view = LoginView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        action_url: path.to_string(),
        upstream: upstream.map(str::to_string),
        purpose: purpose_of(path),
        ticket: ticket.map(str::to_string),
        csrf_token: app.auth.csrf_token(&cookie),
        username: username.to_string(),
        error: error.map(str::to_string),
    };
    let mut r = render(app, status, "connect_login.html", &view);
    if new_cookie {
        r.headers_mut().insert(
            header::SET_COOKIE,
            app.cookie.set(&cookie, app.session_max_age),
        );
    }
    r
}

/// What the sign-in page at `path` leads to: the pages that share it
/// (`/connections`, `/account`, `/admin`) each say what they are.
fn purpose_of(path: &str) -> &'static str {
    if path.ends_with("/account") {
        "to see the applications you let in"
    } else if path.contains("/admin") {
        "to open the admin console"
    } else {
        "to see your connections"
    }
}

fn link(path: &str, ticket: Option<&str>) -> String {
    match ticket {
        Some(t) => format!(
            "{path}?ticket={}",
            url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        ),
        None => path.to_string(),
    }
}

/// `GET /connect/{upstream}`.
pub async fn connect_get(
    State(app): State<AppState>,
    Path(upstream): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let Some(oauth) = oauth(&app) else {
        return failure_page(&app, &upstream, &ConnectError::UnknownUpstream);
    };
    let params = Params::parse_lenient(uri.query().unwrap_or(""));
    let ticket = params.get("ticket");
    let cookie = app.cookie.read(&headers);
    let user = match app.auth.session_user(cookie.as_deref()).await {
        Ok(u) => u,
        Err(e) => return failure_page(&app, &upstream, &ConnectError::Store(e.description)),
    };
    match (user, cookie) {
        (Some(user), Some(cookie)) => match oauth.begin(&user.id, &upstream, ticket, &cookie).await
        {
            Ok(location) => redirect(StatusCode::FOUND, &location),
            Err(e) => failure_page(&app, &upstream, &e),
        },
        (_, cookie) => {
            if oauth.upstream(&upstream).is_none() {
                // A link made before a reload removed its upstream.
                let e = match ticket {
                    Some(_) => ConnectError::Withdrawn,
                    None => ConnectError::UnknownUpstream,
                };
                return failure_page(&app, &upstream, &e);
            }
            login_page(
                &app,
                StatusCode::OK,
                uri.path(),
                Some(&upstream),
                ticket,
                cookie,
                "",
                None,
            )
        }
    }
}

/// `POST /connect/{upstream}`: the sign-in form.
pub async fn connect_post(
    State(app): State<AppState>,
    Path(upstream): Path<String>,
    addr: ClientAddr,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse_lenient(std::str::from_utf8(&body).unwrap_or(""));
    sign_in(&app, addr, uri.path(), Some(&upstream), &headers, &params).await
}

/// The sign-in form of the connect pages: on success, back (303) to
/// `path` (with the connect link's ticket).
pub(super) async fn sign_in(
    app: &AppState,
    ClientAddr(from): ClientAddr,
    path: &str,
    upstream: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
) -> Response {
    let ticket = params.get("ticket");
    let cookie = app.cookie.read(headers);
    let again = |status, username: &str, error: &str| {
        login_page(
            app,
            status,
            path,
            upstream,
            ticket,
            cookie.clone(),
            username,
            Some(error),
        )
    };
    if !app
        .auth
        .check_csrf(cookie.as_deref(), params.get("csrf_token"))
    {
        return again(
            StatusCode::FORBIDDEN,
            "",
            "This form has expired. Sign in again.",
        );
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    match app.auth.sign_in(username, password, from).await {
        Ok((_, session)) => {
            let mut r = redirect(StatusCode::SEE_OTHER, &link(path, ticket));
            r.headers_mut().insert(
                header::SET_COOKIE,
                app.cookie.set(&session, app.session_max_age),
            );
            r
        }
        Err(SignInError::Invalid) => again(
            StatusCode::UNAUTHORIZED,
            username,
            "Wrong username or password.",
        ),
        Err(SignInError::RateLimited { retry_after }) => again(
            StatusCode::TOO_MANY_REQUESTS,
            username,
            &format!(
                "Too many failed sign-in attempts from your address. Wait {retry_after} seconds and try again."
            ),
        ),
        Err(SignInError::Store(e)) => failure_page(
            app,
            upstream.unwrap_or("the server"),
            &ConnectError::Store(e.description),
        ),
    }
}

#[derive(Serialize)]
struct ConnectedView {
    stylesheet_url: String,
    server_name: String,
    upstream: String,
    connections_url: String,
}

/// `GET /oauth/upstream/callback`.
pub async fn callback(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let Some(oauth) = oauth(&app) else {
        return failure_page(&app, "the server", &ConnectError::StateInvalid);
    };
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let cookie = app.cookie.read(&headers);
    match oauth.finish(&params, cookie.as_deref()).await {
        Ok(upstream) => render(
            &app,
            StatusCode::OK,
            "connected.html",
            &ConnectedView {
                stylesheet_url: app.stylesheet_url.to_string(),
                server_name: app.server_name.to_string(),
                upstream,
                connections_url: oauth.connections_url(),
            },
        ),
        Err((upstream, e)) => failure_page(&app, upstream.as_deref().unwrap_or("the server"), &e),
    }
}

/// A public JSON document, cacheable for `max_age` seconds, or `404`
/// when no upstream uses `auth = "oauth"`.
fn public_json(
    app: &AppState,
    max_age: &'static str,
    doc: impl FnOnce(&UpstreamOAuth) -> serde_json::Value,
) -> Response {
    match oauth(app).filter(|o| o.has_upstreams()) {
        Some(o) => {
            let mut r = Json(doc(&o)).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static(max_age),
            );
            r
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /oauth/client.json`: mcpgate as a public client.
pub async fn client_document(State(app): State<AppState>) -> Response {
    public_json(&app, "public, max-age=3600", UpstreamOAuth::client_document)
}

/// `GET /oauth/client-jwt.json`: mcpgate as a `private_key_jwt` client.
pub async fn client_jwt_document(State(app): State<AppState>) -> Response {
    public_json(
        &app,
        "public, max-age=3600",
        UpstreamOAuth::client_jwt_document,
    )
}

/// `GET /oauth/jwks.json`: the public key of mcpgate's client assertions
/// (RFC 7517 §5). Short-lived in caches, so that a rotated server key is
/// picked up soon (an upstream also refetches on an unknown `kid`).
pub async fn jwks(State(app): State<AppState>) -> Response {
    public_json(&app, "public, max-age=300", UpstreamOAuth::jwks)
}
