//! `GET|POST /v1/oauth/authorize` and `GET|POST /authorize`: the browser
//! flow (RFC 6749 §4.1.1-4.1.2).
//!
//! GET validates the request, then shows the sign-in page, the consent
//! page, or (consent already given) redirects with a code. POST handles the
//! two forms; each form re-posts the original request parameters, which are
//! validated again, plus a CSRF token bound to the browser's cookie.
//! After a successful sign-in the browser is sent back to GET (303), which
//! then shows the consent page. The login form's provider buttons post
//! `provider=<id>`; that sign-in continues at the provider
//! (`super::federation`) and comes back to GET the same way.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mcpgate_core::domain::{MetadataDocumentUrl, Scope};
use mcpgate_core::model::{ClientKind, User};
use mcpgate_core::oauth::authorize::{REQUEST_PARAMS, Rejection};
use mcpgate_core::oauth::params::Params;
use mcpgate_core::oauth::policy::Policy;
use mcpgate_core::oauth::{ErrorCode, OAuthError};

use super::AppState;
use super::client_addr::ClientAddr;
use super::html::{page, redirect};
use crate::auth::authorize::{SignInError, Validated, new_cookie_value};
use crate::web::{ConsentView, ErrorView, LoginView, ProviderButton, ScopeView};

pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse_lenient(uri.query().unwrap_or(""));
    let v = match app.auth.validate_authorization(&params).await {
        Ok(v) => v,
        Err(r) => return app.rejection(r),
    };
    let cookie = app.cookie.read(&headers);
    let user = match app.auth.session_user(cookie.as_deref()).await {
        Ok(u) => u,
        Err(e) => return app.error_page(failed(&e), &e, None),
    };
    let ctx = FormContext::new(&app, uri.path(), &params, cookie);
    match user {
        None => ctx.login(&app, &v, StatusCode::OK, "", None),
        Some(user) => match app.auth.consent_given(&user, &v).await {
            Ok(prior) if prior.covered => match app.auth.approve(&user, &v).await {
                Ok(location) => redirect(StatusCode::FOUND, &location),
                Err(e) => app.error_page(failed(&e), &e, None),
            },
            Ok(prior) => ctx.consent(&app, &v, &user, prior.granted.as_ref()),
            Err(e) => app.error_page(failed(&e), &e, None),
        },
    }
}

pub async fn post(
    State(app): State<AppState>,
    ClientAddr(from): ClientAddr,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match std::str::from_utf8(&body)
        .map_err(|_| OAuthError::invalid_request("the form is not UTF-8"))
        .map(Params::parse_lenient)
    {
        Ok(p) => p,
        Err(e) => return app.error_page(StatusCode::BAD_REQUEST, &e, None),
    };
    let v = match app.auth.validate_authorization(&params).await {
        Ok(v) => v,
        Err(r) => return app.rejection(r),
    };
    let cookie = app.cookie.read(&headers);
    let retry = format!("{}?{}", uri.path(), params.encode_only(&REQUEST_PARAMS));
    if !app
        .auth
        .check_csrf(cookie.as_deref(), params.get("csrf_token"))
    {
        let e = OAuthError::invalid_request(
            "this form has expired or was not sent from this site (its security token is missing or wrong); start again from the application",
        );
        return app.error_page(StatusCode::FORBIDDEN, &e, Some(retry));
    }
    let ctx = FormContext::new(&app, uri.path(), &params, cookie.clone());
    match params.get("action") {
        Some("login") if params.has("provider") => {
            super::federation::start(&app, params.get("provider").unwrap_or_default(), &retry).await
        }
        Some("login") if !app.federation.get().password_login() => app.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request(
                "sign-in with a password is turned off on this server; choose an identity provider",
            ),
            Some(retry),
        ),
        Some("login") => {
            let username = params.get("username").unwrap_or_default();
            let password = params.get("password").unwrap_or_default();
            match app.auth.sign_in(username, password, from).await {
                Ok((_, session)) => {
                    let mut r = redirect(StatusCode::SEE_OTHER, &retry);
                    r.headers_mut().insert(
                        header::SET_COOKIE,
                        app.cookie.set(&session, app.session_max_age),
                    );
                    r
                }
                Err(SignInError::Invalid) => ctx.login(
                    &app,
                    &v,
                    StatusCode::UNAUTHORIZED,
                    username,
                    Some("Wrong username or password."),
                ),
                Err(SignInError::RateLimited { retry_after }) => {
                    let wait = match retry_after {
                        1 => "1 second".to_string(),
                        n => format!("{n} seconds"),
                    };
                    let mut r = ctx.login(
                        &app,
                        &v,
                        StatusCode::TOO_MANY_REQUESTS,
                        username,
                        Some(&format!(
                            "Too many failed sign-in attempts from your address. Wait {wait} and try again."
                        )),
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, retry_after.into());
                    r
                }
                Err(SignInError::Store(e)) => app.error_page(failed(&e), &e, Some(retry)),
            }
        }
        Some("consent") => {
            let user = match app.auth.session_user(cookie.as_deref()).await {
                Ok(Some(u)) => u,
                Ok(None) => {
                    return ctx.login(
                        &app,
                        &v,
                        StatusCode::UNAUTHORIZED,
                        "",
                        Some("Your session has ended. Sign in again to continue."),
                    );
                }
                Err(e) => return app.error_page(failed(&e), &e, None),
            };
            match params.get("decision") {
                Some("approve") => match app.auth.approve(&user, &v).await {
                    Ok(location) => redirect(StatusCode::SEE_OTHER, &location),
                    Err(e) => app.error_page(failed(&e), &e, Some(retry)),
                },
                Some("deny") => redirect(StatusCode::SEE_OTHER, &app.auth.deny(&user, &v)),
                _ => app.error_page(
                    StatusCode::BAD_REQUEST,
                    &OAuthError::invalid_request("the consent form must say approve or deny"),
                    Some(retry),
                ),
            }
        }
        _ => app.error_page(
            StatusCode::BAD_REQUEST,
            &OAuthError::invalid_request("the form has no valid action (login or consent)"),
            Some(retry),
        ),
    }
}

/// What both forms need: where they post, the request they carry, the
/// browser cookie (created here if the browser has none) and its CSRF token.
struct FormContext {
    action_url: String,
    hidden: Vec<(String, String)>,
    cookie: String,
    new_cookie: bool,
    csrf: String,
}

impl FormContext {
    fn new(app: &AppState, path: &str, params: &Params, cookie: Option<String>) -> Self {
        let (cookie, new_cookie) = match cookie {
            Some(c) => (c, false),
            None => (new_cookie_value(), true),
        };
        Self {
            action_url: path.to_string(),
            hidden: params
                .iter()
                .filter(|(k, _)| REQUEST_PARAMS.contains(k))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            csrf: app.auth.csrf_token(&cookie),
            cookie,
            new_cookie,
        }
    }

    fn finish(&self, app: &AppState, mut resp: Response) -> Response {
        if self.new_cookie {
            resp.headers_mut().insert(
                header::SET_COOKIE,
                app.cookie.set(&self.cookie, app.session_max_age),
            );
        }
        resp
    }

    fn login(
        &self,
        app: &AppState,
        v: &Validated,
        status: StatusCode,
        username: &str,
        error: Option<&str>,
    ) -> Response {
        let view = LoginView {
            stylesheet_url: app.stylesheet_url.to_string(),
            server_name: app.server_name.to_string(),
            action_url: self.action_url.clone(),
            // A document client's name is only shown as its claim, and
            // never replaced by its client_id (the host says who it is).
            client_name: match v.client.kind {
                ClientKind::MetadataDocument => {
                    v.client.metadata.client_name.clone().unwrap_or_default()
                }
                _ => v.client.display_name().to_string(),
            },
            client_id: v.client.client_id.to_string(),
            redirect_host: v.request.redirect_uri.display_host(),
            hidden: self.hidden.clone(),
            csrf_token: self.csrf.clone(),
            username: username.to_string(),
            error: error.map(str::to_string),
            password_login: app.federation.get().password_login(),
            providers: app
                .federation
                .get()
                .providers()
                .iter()
                .map(|p| ProviderButton {
                    id: p.id().to_string(),
                    display_name: p.display_name().to_string(),
                })
                .collect(),
        };
        let resp = match app.pages.login(&view) {
            Ok(html) => page(status, html),
            Err(e) => app.render_failure(e),
        };
        self.finish(app, resp)
    }

    /// `granted`: what the user approved before; the page lists only the
    /// scopes being added, and those already approved apart.
    fn consent(
        &self,
        app: &AppState,
        v: &Validated,
        user: &User,
        granted: Option<&Scope>,
    ) -> Response {
        let view_of = |s: &str| ScopeView {
            name: s.to_string(),
            description: scope_description(s, &app.server_name, &app.auth.policy),
        };
        let was_granted = |s: &str| granted.is_some_and(|g| g.contains(s));
        let view = ConsentView {
            stylesheet_url: app.stylesheet_url.to_string(),
            server_name: app.server_name.to_string(),
            action_url: self.action_url.clone(),
            client_name: v.client.display_name().to_string(),
            client_id: v.client.client_id.to_string(),
            client_uri: v.client.metadata.client_uri.clone(),
            redirect_host: v.request.redirect_uri.display_host(),
            redirect_is_loopback: v.request.redirect_uri.is_loopback(),
            scopes: v
                .request
                .scope
                .tokens()
                .filter(|s| !was_granted(s))
                .map(view_of)
                .collect(),
            granted_scopes: v
                .request
                .scope
                .tokens()
                .filter(|s| was_granted(s))
                .map(view_of)
                .collect(),
            username: user.username.to_string(),
            hidden: self.hidden.clone(),
            csrf_token: self.csrf.clone(),
            logout_url: super::logout::logout_path(&self.action_url),
            client_kind: v.client.kind.as_str().to_string(),
            client_host: match v.client.kind {
                ClientKind::MetadataDocument => {
                    MetadataDocumentUrl::parse(v.client.client_id.as_str())
                        .ok()
                        .map(|u| u.host().to_string())
                }
                _ => None,
            },
        };
        let resp = match app.pages.consent(&view) {
            Ok(html) => page(StatusCode::OK, html),
            Err(e) => app.render_failure(e),
        };
        self.finish(app, resp)
    }
}

/// The operator's description of a declared scope (`[[scope]]`), else
/// mcpgate's words.
fn scope_description(scope: &str, server: &str, policy: &Policy) -> String {
    if let Some(d) = policy.scope_description(scope) {
        return d.to_string();
    }
    match scope {
        "mcp" => format!("Use the tools, resources and prompts of {server} on your behalf"),
        "offline_access" => "Stay connected when you are not using it (refresh tokens)".into(),
        other => format!("Access granted by the scope \u{201c}{other}\u{201d}"),
    }
}

impl AppState {
    fn rejection(&self, r: Rejection) -> Response {
        match r {
            Rejection::Page(e) if e.code == ErrorCode::TemporarilyUnavailable => {
                self.error_page(StatusCode::SERVICE_UNAVAILABLE, &e, None)
            }
            Rejection::Page(e) => self.error_page(StatusCode::BAD_REQUEST, &e, None),
            Rejection::Redirect(r) => {
                redirect(StatusCode::FOUND, &r.location(&self.auth.policy.issuer))
            }
        }
    }

    pub(crate) fn error_page(
        &self,
        status: StatusCode,
        e: &OAuthError,
        retry_url: Option<String>,
    ) -> Response {
        let title = match status {
            StatusCode::FORBIDDEN => "This form cannot be accepted",
            s if s.is_server_error() => "Something went wrong",
            _ => "This sign-in link cannot be used",
        };
        let view = ErrorView {
            stylesheet_url: self.stylesheet_url.to_string(),
            server_name: self.server_name.to_string(),
            title: title.to_string(),
            message: sentence(&e.description),
            code: Some(e.code.to_string()),
            retry_url,
        };
        match self.pages.error(&view) {
            Ok(html) => {
                let mut r = page(status, html);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
                }
                r
            }
            Err(err) => self.render_failure(err),
        }
    }

    fn render_failure(&self, e: minijinja::Error) -> Response {
        tracing::error!(error = %e, "page rendering failed");
        page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "<!doctype html><title>Error</title><p>The page could not be rendered.</p>".into(),
        )
    }
}

/// The status of a page for a request the server could not complete: 503
/// when the database is out of reach (the browser may retry), 500 otherwise.
fn failed(e: &OAuthError) -> StatusCode {
    if e.code == ErrorCode::TemporarilyUnavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// An error description as a sentence for a page: capitalized, with a full stop.
fn sentence(description: &str) -> String {
    let mut chars = description.chars();
    let mut s = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}
