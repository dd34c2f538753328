//! The admin console at `{base}/admin` (docs/operations.md "Admin console"):
//! server-rendered pages for users with the admin role.
//!
//! - `mod.rs`: the gate (signed in, else the sign-in page posting back here;
//!   an admin, else a `403` page), the one `POST` handler of every page
//!   (the CSRF token first: a form without a valid one is a `400` page and
//!   changes nothing), and the rendering of the pages.
//! - [`users`]: `GET /admin` (users, search, create) and `GET /admin/user?name=`
//!   (one user: role, groups, password, grants with their open MCP sessions
//!   and streams, removal).
//! - [`clients`]: `GET /admin/clients`.
//! - [`upstreams`]: `GET /admin/upstreams` (state, restarts, last error, restart).
//! - [`audit`]: `GET /admin/audit` (the audit log, filtered).
//!
//! Every action calls `crate::admin::Ctx` (the service layer the command
//! line uses too), which records it. The pages are the sign-in pages' kind:
//! the same headers (`html::page`: CSP without scripts, `no-store`,
//! `DENY` framing), the same stylesheet, every value escaped.

mod audit;
mod clients;
mod upstreams;
mod users;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcpgate_core::model::User;
use mcpgate_core::oauth::params::Params;
use serde::Serialize;

use super::AppState;
use super::client_addr::ClientAddr;
use super::html::page;
use crate::admin::{AdminError, Ctx};
use crate::web::ErrorView;

pub use audit::get as audit_get;
pub use clients::get as clients_get;
pub use upstreams::get as upstreams_get;
pub use users::{get as users_get, user_get};

/// What every admin page shows at the top.
#[derive(Serialize)]
struct Frame {
    stylesheet_url: String,
    server_name: String,
    /// `{base}/admin`.
    admin_url: String,
    username: String,
    csrf_token: String,
    notice: Option<String>,
    error: Option<String>,
}

/// The signed-in admin and their page frame.
struct Admin {
    user: User,
    frame: Frame,
}

fn admin_url(app: &AppState) -> String {
    format!("{}/admin", app.auth.urls.base_path)
}

fn error_page(app: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    let view = ErrorView {
        stylesheet_url: app.stylesheet_url.to_string(),
        server_name: app.server_name.to_string(),
        title: title.into(),
        message: message.into(),
        code: None,
        retry_url: Some(admin_url(app)),
    };
    match app.pages.error(&view) {
        Ok(html) => page(status, html),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            page(status, format!("<!doctype html><title>{title}</title>"))
        }
    }
}

/// The signed-in admin, or the page to show instead: the sign-in page
/// (posting back to `path`) or a `403` page.
async fn gate(app: &AppState, path: &str, headers: &HeaderMap) -> Result<Admin, Response> {
    let cookie = app.cookie.read(headers);
    let user = match app.auth.session_user(cookie.as_deref()).await {
        Ok(u) => u,
        Err(e) => {
            return Err(error_page(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The console is unavailable",
                &e.description,
            ));
        }
    };
    let (Some(user), Some(cookie)) = (user, cookie.clone()) else {
        return Err(super::upstream_oauth::login_page(
            app,
            StatusCode::OK,
            path,
            None,
            None,
            cookie,
            "",
            None,
        ));
    };
    let ctx = Ctx::server(&app.auth, &user);
    match ctx.is_admin(&user.id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(event = "admin.forbidden", username = ?user.username.as_str(), "admin console refused to a non-admin");
            return Err(error_page(
                app,
                StatusCode::FORBIDDEN,
                "Admins only",
                "Your account does not have the admin role. An admin can give it to you (mcpgate user admin USER on).",
            ));
        }
        Err(e) => return Err(failure(app, &e)),
    }
    Ok(Admin {
        frame: Frame {
            stylesheet_url: app.stylesheet_url.to_string(),
            server_name: app.server_name.to_string(),
            admin_url: admin_url(app),
            username: user.username.as_str().to_string(),
            csrf_token: app.auth.csrf_token(&cookie),
            notice: None,
            error: None,
        },
        user,
    })
}

/// A failure of the store as a page (`503` when the database is unreachable).
fn failure(app: &AppState, e: &AdminError) -> Response {
    tracing::error!(error = %e, "admin console failure");
    let status = match e {
        AdminError::Store(crate::store::StoreError::Unavailable(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_page(
        app,
        status,
        "Something went wrong",
        "The console could not complete the request; try again later.",
    )
}

/// Renders `template` with the frame and the page's own view.
fn render<V: Serialize>(
    app: &AppState,
    status: StatusCode,
    template: &str,
    frame: &Frame,
    view: &V,
) -> Response {
    let section = match template {
        "admin_clients.html" => "clients",
        "admin_upstreams.html" => "upstreams",
        "admin_audit.html" => "audit",
        _ => "users",
    };
    let ctx = minijinja::context! {
        // What `base.html` reads.
        stylesheet_url => frame.stylesheet_url,
        server_name => frame.server_name,
        frame => frame,
        page => view,
        section => section,
    };
    match app.pages.admin_page(template, &ctx) {
        Ok(html) => page(status, html),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            error_page(
                app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be rendered.",
            )
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Which page to show after an action, and its status.
enum Then {
    Users,
    User(String),
    Clients,
    Upstreams,
}

/// `POST` to any admin page: `action=login` (the sign-in form), or an
/// admin action with its fields and `csrf_token`.
pub async fn post(
    State(app): State<AppState>,
    addr: ClientAddr,
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
        tracing::warn!(
            event = "admin.csrf_failed",
            "admin form without a valid CSRF token"
        );
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "This form cannot be used",
            "The form's security token is missing or expired (csrf_token); nothing was changed. Open the page again and retry.",
        );
    }
    let mut admin = match gate(&app, uri.path(), &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let ctx = Ctx::server(&app.auth, &admin.user).with_mcp(&app.mcp);
    let field = |k: &str| params.get(k).unwrap_or_default().trim().to_string();
    let username = field("username");
    let (then, outcome): (Then, Result<String, AdminError>) = match params.get("action") {
        Some("user.create") => {
            let admin_role = params.get("admin") == Some("on");
            let r = ctx
                .create_user(
                    &username,
                    params.get("password").unwrap_or_default().to_string(),
                    admin_role,
                )
                .await
                .map(|u| format!("Created user {}.", u.username));
            (Then::Users, r)
        }
        Some("user.admin") => {
            let on = params.get("role") == Some("on");
            let r = ctx.set_admin(&username, on).await.map(|u| {
                if on {
                    format!("{} is now an admin.", u.username)
                } else {
                    format!("{} is no longer an admin.", u.username)
                }
            });
            (Then::User(username), r)
        }
        Some(action @ ("user.disable" | "user.enable")) => {
            let disable = action == "user.disable";
            let r = ctx.set_disabled(&username, disable).await.map(|u| {
                if disable {
                    format!(
                        "{} is disabled; their sessions ended and their tokens were revoked.",
                        u.username
                    )
                } else {
                    format!("{} is enabled again.", u.username)
                }
            });
            (Then::User(username), r)
        }
        Some("user.password") => {
            let r = ctx
                .reset_password(
                    &username,
                    params.get("password").unwrap_or_default().to_string(),
                )
                .await
                .map(|u| {
                    format!(
                        "Password changed for {}; their browser sessions ended.",
                        u.username
                    )
                });
            (Then::User(username), r)
        }
        Some("user.remove") => match ctx.remove_user(&username).await {
            Ok(u) => (Then::Users, Ok(format!("Removed user {}.", u.username))),
            Err(e) => (Then::User(username), Err(e)),
        },
        Some("user.group_add") => {
            let group = field("group");
            let r = ctx.add_to_group(&username, &group).await.map(|added| {
                if added {
                    format!("Added {username} to group {group}.")
                } else {
                    format!("{username} was already in group {group}.")
                }
            });
            (Then::User(username), r)
        }
        Some("user.group_remove") => {
            let group = field("group");
            let r = ctx
                .remove_from_group(&username, &group)
                .await
                .map(|()| format!("Removed {username} from group {group}."));
            (Then::User(username), r)
        }
        Some("grant.revoke") => {
            let r = ctx
                .revoke_grant(&username, &field("grant_id"))
                .await
                .map(|n| format!("Grant revoked ({n} tokens)."));
            (Then::User(username), r)
        }
        Some("session.end") => {
            let r = ctx
                .end_session(&username, &field("session"))
                .await
                .map(|()| "MCP session ended.".to_string());
            (Then::User(username), r)
        }
        Some("stream.end") => {
            let r = ctx
                .end_stream(&username, &field("stream"))
                .await
                .map(|()| "Stream ended.".to_string());
            (Then::User(username), r)
        }
        Some("user.revoke_grants") => {
            let r = ctx
                .revoke_user_grants(&username)
                .await
                .map(|n| format!("Revoked all {n} grants of {username}."));
            (Then::User(username), r)
        }
        Some("client.revoke_grants") => {
            let r = ctx
                .revoke_client_grants(&field("client_id"))
                .await
                .map(|n| format!("Revoked all {n} grants of the client."));
            (Then::Clients, r)
        }
        Some("client.remove") => {
            let r = ctx
                .remove_client(&field("client_id"))
                .await
                .map(|()| "Client removed.".to_string());
            (Then::Clients, r)
        }
        Some("upstream.restart") => {
            let name = field("upstream");
            let r = if app.mcp.gateway.restart(&name) {
                ctx.upstream_restarted(&name).await;
                Ok(format!("Restarting {name}."))
            } else {
                Err(AdminError::UnknownUpstream(name))
            };
            (Then::Upstreams, r)
        }
        other => {
            return error_page(
                &app,
                StatusCode::BAD_REQUEST,
                "Unknown action",
                &format!("The console has no action {:?}.", other.unwrap_or("")),
            );
        }
    };
    let status = match &outcome {
        Ok(notice) => {
            admin.frame.notice = Some(notice.clone());
            StatusCode::OK
        }
        Err(AdminError::Store(_)) => {
            if let Err(e) = outcome {
                return failure(&app, &e);
            }
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Err(e) => {
            admin.frame.error = Some(e.to_string());
            StatusCode::BAD_REQUEST
        }
    };
    match then {
        Then::Users => users::show(&app, admin, status, None).await,
        Then::User(name) => users::show_user(&app, admin, status, &name).await,
        Then::Clients => clients::show(&app, admin, status).await,
        Then::Upstreams => upstreams::show(&app, admin, status),
    }
}
