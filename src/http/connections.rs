//! `GET /connections` and `POST /connections`: the signed-in user's
//! connections to `auth = "oauth"` upstreams (status, account if known,
//! scopes, last use) with Connect, Reconnect and Disconnect. Not signed
//! in: the sign-in page of the connect flow, posting back here. The forms
//! carry the CSRF token of the browser session.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcpgate_core::oauth::params::Params;
use mcpgate_core::upstream_oauth::connect::ConnectError;
use serde::Serialize;

use super::AppState;
use super::html::{page, redirect};
use super::upstream_oauth::{failure_page, login_page};

#[derive(Serialize)]
struct Row {
    name: String,
    connected: bool,
    account: Option<String>,
    scopes: Option<String>,
    last_used: Option<String>,
}

#[derive(Serialize)]
struct View {
    stylesheet_url: String,
    server_name: String,
    action_url: String,
    username: String,
    csrf_token: String,
    notice: Option<String>,
    connections: Vec<Row>,
}

fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// `GET /connections`.
pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    show(&app, uri.path(), &headers, None).await
}

async fn show(app: &AppState, path: &str, headers: &HeaderMap, notice: Option<String>) -> Response {
    let cookie = app.cookie.read(headers);
    let user = match app.auth.session_user(cookie.as_deref()).await {
        Ok(u) => u,
        Err(e) => return failure_page(app, "the server", &ConnectError::Store(e.description)),
    };
    let (Some(user), Some(cookie)) = (user, cookie.clone()) else {
        return login_page(app, StatusCode::OK, path, None, None, cookie, "", None);
    };
    let Some(oauth) = app.mcp.gateway.oauth().cloned() else {
        return failure_page(app, "the server", &ConnectError::UnknownUpstream);
    };
    let mut rows = Vec::new();
    for cfg in oauth.upstreams() {
        if !cfg.allows(user.username.as_str()) {
            continue;
        }
        let record = oauth
            .connection_record(&user.id, &cfg.name)
            .await
            .ok()
            .flatten();
        rows.push(Row {
            name: cfg.name.clone(),
            connected: record.is_some(),
            account: record.as_ref().and_then(|r| r.account.clone()),
            scopes: record.as_ref().and_then(|r| r.scope.clone()),
            last_used: record.as_ref().and_then(|r| r.last_used_at).map(when),
        });
    }
    let view = View {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        action_url: path.to_string(),
        username: user.username.as_str().to_string(),
        csrf_token: app.auth.csrf_token(&cookie),
        notice,
        connections: rows,
    };
    match app.pages.upstream_page("connections.html", &view) {
        Ok(html) => page(StatusCode::OK, html),
        Err(e) => failure_page(app, "the server", &ConnectError::Store(e.to_string())),
    }
}

/// `POST /connections`: `action=connect|disconnect`, `upstream=NAME`; or
/// `action=login` from the sign-in page.
pub async fn post(
    State(app): State<AppState>,
    addr: super::client_addr::ClientAddr,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse_lenient(std::str::from_utf8(&body).unwrap_or(""));
    if params.get("action") == Some("login") {
        return super::upstream_oauth::sign_in(&app, addr, uri.path(), None, &headers, &params)
            .await;
    }
    let cookie = app.cookie.read(&headers);
    if !app
        .auth
        .check_csrf(cookie.as_deref(), params.get("csrf_token"))
    {
        return show(
            &app,
            uri.path(),
            &headers,
            Some("This form has expired; try again.".into()),
        )
        .await;
    }
    let user = match app.auth.session_user(cookie.as_deref()).await {
        Ok(Some(u)) => u,
        _ => {
            return login_page(
                &app,
                StatusCode::UNAUTHORIZED,
                uri.path(),
                None,
                None,
                cookie,
                "",
                None,
            );
        }
    };
    let (Some(oauth), Some(name), Some(cookie)) = (
        app.mcp.gateway.oauth().cloned(),
        params.get("upstream"),
        cookie,
    ) else {
        return failure_page(&app, "the server", &ConnectError::UnknownUpstream);
    };
    if !oauth
        .upstream(name)
        .is_some_and(|c| c.allows(user.username.as_str()))
    {
        return failure_page(&app, name, &ConnectError::UnknownUpstream);
    }
    match params.get("action") {
        Some("connect") => match oauth.begin(&user.id, name, None, &cookie).await {
            Ok(location) => redirect(StatusCode::SEE_OTHER, &location),
            Err(e) => failure_page(&app, name, &e),
        },
        Some("disconnect") => match app.mcp.gateway.disconnect(&user.id, name).await {
            Ok(_) => {
                show(
                    &app,
                    uri.path(),
                    &headers,
                    Some(format!("Disconnected from {name}.")),
                )
                .await
            }
            Err(e) => failure_page(&app, name, &ConnectError::Store(e)),
        },
        _ => failure_page(&app, name, &ConnectError::UnknownUpstream),
    }
}
