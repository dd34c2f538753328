//! `GET /account` and `POST /account`: the signed-in user's own page.
//!
//! It lists the applications the user granted access to (one entry per
//! live grant: the client's name, its domain when it is identified by a
//! metadata document or "self-registered", the scopes, when access was
//! granted and when the application last obtained a token), with a Revoke
//! button each; links to `/connections` when some upstream uses per-user
//! OAuth; and offers sign-out (a form posting to the logout endpoint).
//!
//! Not signed in: the sign-in page, posting back here (`action=login`),
//! then this page again (303).
//!
//! Revoke (`action=revoke`, `grant=ID`) is a form carrying the CSRF token
//! bound to the browser's cookie (as the sign-in, consent and sign-out
//! forms; RFC 6749 §10.12). It revokes through
//! [`crate::auth::AuthServer::revoke_own_grant`]: every token of the grant
//! (RFC 7009 §2.1), and the event streams those tokens opened end at once.
//! A grant that is not the signed-in user's is "not found" and nothing is
//! revoked. Pages carry the headers of [`super::html::page`] (CSP,
//! `no-store`, no framing).

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcpgate_core::domain::MetadataDocumentUrl;
use mcpgate_core::model::{ClientKind, User};
use mcpgate_core::oauth::OAuthError;
use mcpgate_core::oauth::params::Params;

use super::AppState;
use super::html::page;
use super::upstream_oauth::{login_page, sign_in};
use crate::auth::account::ConnectedApp;
use crate::web::{AccountView, AppView, ErrorView};

/// What can go wrong on the account page; `Display` is the code shown on
/// the error page (and logged).
#[derive(Debug, thiserror::Error)]
enum AccountError {
    /// The form's CSRF token is missing or does not match the cookie.
    #[error("invalid_request")]
    Csrf,
    /// The form is not UTF-8 or names no known action.
    #[error("invalid_request")]
    BadForm(&'static str),
    /// The grant is not a live grant of the signed-in user.
    #[error("not_found")]
    UnknownGrant,
    /// The store failed (the error a client would see).
    #[error("{}", .0.code)]
    Server(OAuthError),
}

impl AccountError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::UnknownGrant => StatusCode::NOT_FOUND,
            Self::Server(e) if e.code == mcpgate_core::oauth::ErrorCode::TemporarilyUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Csrf | Self::BadForm(_) => "This form cannot be accepted",
            Self::UnknownGrant => "No such application",
            Self::Server(_) => "Something went wrong",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Csrf => "This form has expired or was not sent from this site (its security token is missing or wrong), so nothing was changed. Open your account page and try again.".into(),
            Self::BadForm(why) => format!("{why}. Nothing was changed."),
            Self::UnknownGrant => "None of the applications with access to your account matches this form (it may have been revoked already). Nothing was changed.".into(),
            Self::Server(e) => e.description.clone(),
        }
    }
}

fn error_page(app: &AppState, path: &str, e: &AccountError) -> Response {
    tracing::warn!(event = "account.refused", code = %e, reason = e.title(), "account page request refused");
    let view = ErrorView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        title: e.title().to_string(),
        message: e.message(),
        code: Some(e.to_string()),
        retry_url: Some(path.to_string()),
    };
    match app.pages.error(&view) {
        Ok(html) => page(e.status(), html),
        Err(err) => render_failure(err),
    }
}

fn render_failure(e: minijinja::Error) -> Response {
    tracing::error!(error = %e, "page rendering failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!doctype html><title>Error</title><p>The page could not be rendered.</p>".into(),
    )
}

fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn app_view(a: &ConnectedApp) -> AppView {
    let (name, kind, host) = match &a.client {
        Some(c) => (
            c.display_name().to_string(),
            c.kind.as_str().to_string(),
            match c.kind {
                ClientKind::MetadataDocument => MetadataDocumentUrl::parse(c.client_id.as_str())
                    .ok()
                    .map(|u| u.host().to_string()),
                _ => None,
            },
        ),
        None => (a.grant.client_id.clone(), String::new(), None),
    };
    AppView {
        grant_id: a.grant.grant_id.clone(),
        name,
        kind,
        host,
        scopes: a.grant.scope.clone(),
        granted: when(a.grant.granted_at),
        last_used: when(a.grant.last_used_at),
    }
}

/// The signed-in user and the cookie, or the response to send instead.
async fn signed_in(
    app: &AppState,
    path: &str,
    headers: &HeaderMap,
) -> Result<(User, String), Response> {
    let cookie = app.cookie.read(headers);
    match app.auth.session_user(cookie.as_deref()).await {
        Ok(Some(user)) => match cookie {
            Some(c) => Ok((user, c)),
            None => Err(login_page(
                app,
                StatusCode::OK,
                path,
                None,
                None,
                None,
                "",
                None,
            )),
        },
        Ok(None) => Err(login_page(
            app,
            StatusCode::OK,
            path,
            None,
            None,
            cookie,
            "",
            None,
        )),
        Err(e) => Err(error_page(app, path, &AccountError::Server(e))),
    }
}

async fn show(
    app: &AppState,
    path: &str,
    user: &User,
    cookie: &str,
    notice: Option<String>,
) -> Response {
    let apps = match app.auth.connected_apps(&user.id).await {
        Ok(a) => a,
        Err(e) => return error_page(app, path, &AccountError::Server(e)),
    };
    let view = AccountView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        action_url: path.to_string(),
        logout_url: format!("{}/logout", app.auth.urls.base_path),
        connections_url: app.mcp.gateway.oauth().map(|o| o.connections_url()),
        username: user.username.as_str().to_string(),
        csrf_token: app.auth.csrf_token(cookie),
        notice,
        apps: apps.iter().map(app_view).collect(),
    };
    match app.pages.account(&view) {
        Ok(html) => page(StatusCode::OK, html),
        Err(e) => render_failure(e),
    }
}

/// `GET /account`.
pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    match signed_in(&app, uri.path(), &headers).await {
        Ok((user, cookie)) => show(&app, uri.path(), &user, &cookie, None).await,
        Err(r) => r,
    }
}

/// `POST /account`: `action=revoke` with `grant`, or `action=login` from
/// the sign-in page.
pub async fn post(
    State(app): State<AppState>,
    addr: super::client_addr::ClientAddr,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Ok(form) = std::str::from_utf8(&body) else {
        return error_page(&app, path, &AccountError::BadForm("The form is not UTF-8"));
    };
    let params = Params::parse_lenient(form);
    if params.get("action") == Some("login") {
        return sign_in(&app, addr, path, None, &headers, &params).await;
    }
    let cookie = app.cookie.read(&headers);
    if !app
        .auth
        .check_csrf(cookie.as_deref(), params.get("csrf_token"))
    {
        return error_page(&app, path, &AccountError::Csrf);
    }
    let (user, cookie) = match signed_in(&app, path, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match (params.get("action"), params.get("grant")) {
        (Some("revoke"), Some(grant)) => match app.auth.revoke_own_grant(&user.id, grant).await {
            Ok(Some(revoked)) => {
                let name = app_view(&revoked).name;
                tracing::info!(event = "account.grant_revoked", user_id = %user.id, client_id = ?revoked.grant.client_id, "grant revoked by its user");
                show(
                    &app,
                    path,
                    &user,
                    &cookie,
                    Some(format!("Revoked access for {name}.")),
                )
                .await
            }
            Ok(None) => error_page(&app, path, &AccountError::UnknownGrant),
            Err(e) => error_page(&app, path, &AccountError::Server(e)),
        },
        _ => error_page(
            &app,
            path,
            &AccountError::BadForm("The form names no application to revoke"),
        ),
    }
}
