//! `GET /admin`: the users (search by name, create), and
//! `GET /admin/user?name=`: one user with their role, groups and live
//! grants, each with its open MCP sessions and streams on this instance
//! (the actions post to `super::post`).

use std::collections::HashMap;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{Admin, error_page, failure, gate, render, when};
use crate::admin::{AdminError, Ctx};
use crate::auth::users;
use crate::http::AppState;

#[derive(Deserialize)]
pub struct Search {
    q: Option<String>,
}

#[derive(Serialize)]
struct UserRow {
    username: String,
    /// `{base}/admin/user?name=...`.
    link: String,
    id: String,
    created: String,
    admin: bool,
    disabled: bool,
    groups: Vec<String>,
    grants: usize,
}

#[derive(Serialize)]
struct UsersView {
    q: String,
    users: Vec<UserRow>,
    total: usize,
}

/// `GET /admin`.
pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    match gate(&app, uri.path(), &headers).await {
        Ok(admin) => show(&app, admin, StatusCode::OK, search.q).await,
        Err(r) => r,
    }
}

pub(super) async fn show(
    app: &AppState,
    admin: Admin,
    status: StatusCode,
    q: Option<String>,
) -> Response {
    match users_view(app, &admin, q.unwrap_or_default()).await {
        Ok(view) => render(app, status, "admin_users.html", &admin.frame, &view),
        Err(e) => failure(app, &e),
    }
}

async fn users_view(app: &AppState, admin: &Admin, q: String) -> Result<UsersView, AdminError> {
    let ctx = Ctx::server(&app.auth, &admin.user);
    let store = ctx.store();
    let all = store.list_users().await?;
    let total = all.len();
    let admins = store.admin_user_ids().await?;
    let disabled = store.disabled_user_ids().await?;
    let mut grants: HashMap<String, usize> = HashMap::new();
    for g in store.live_grants(None, None, app.auth.now()).await? {
        if let Some(u) = g.user_id {
            *grants.entry(u).or_default() += 1;
        }
    }
    let needle = q.trim().to_lowercase();
    let mut rows = Vec::new();
    for u in all {
        if !needle.is_empty() && !u.username.as_str().contains(&needle) && u.id != needle {
            continue;
        }
        let groups = store
            .groups_of_user(&u.id)
            .await?
            .into_iter()
            .map(|m| m.group)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        rows.push(UserRow {
            link: format!(
                "{}/user?name={}",
                admin.frame.admin_url,
                url::form_urlencoded::byte_serialize(u.username.as_str().as_bytes())
                    .collect::<String>()
            ),
            username: u.username.as_str().to_string(),
            admin: admins.contains(&u.id),
            disabled: disabled.contains(&u.id),
            grants: grants.get(&u.id).copied().unwrap_or(0),
            created: when(u.created_at),
            id: u.id,
            groups,
        });
    }
    Ok(UsersView {
        q,
        users: rows,
        total,
    })
}

#[derive(Deserialize)]
pub struct Name {
    name: Option<String>,
}

#[derive(Serialize)]
struct GroupRow {
    name: String,
    /// `local`, or `provider:<id>` (replaced at each sign-in there).
    source: String,
    local: bool,
}

/// An open Streamable HTTP session (its id never: a handle, the SHA-256).
#[derive(Serialize)]
struct SessionRow {
    handle: String,
    short: String,
    client_id: String,
    protocol_version: String,
    opened: String,
    last_request: String,
}

#[derive(Serialize)]
struct StreamRow {
    id: u64,
    kind: &'static str,
    client_id: String,
    /// The short handle of its session, if any.
    session: String,
    opened: String,
}

#[derive(Serialize)]
struct GrantRow {
    grant_id: String,
    client_id: String,
    client_name: String,
    kind: &'static str,
    scope: String,
    created: String,
    last_used: String,
    live_tokens: u64,
    sessions: Vec<SessionRow>,
    streams: Vec<StreamRow>,
}

#[derive(Serialize)]
struct UserView {
    username: String,
    id: String,
    created: String,
    admin: bool,
    disabled: bool,
    is_self: bool,
    has_password: bool,
    groups: Vec<GroupRow>,
    grants: Vec<GrantRow>,
    /// Open sessions and streams whose token is no longer in the store.
    other_sessions: Vec<SessionRow>,
    other_streams: Vec<StreamRow>,
    /// The instance whose sessions are listed.
    instance: String,
    shared: bool,
}

/// `GET /admin/user?name=USERNAME`.
pub async fn user_get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(name): Query<Name>,
    headers: HeaderMap,
) -> Response {
    match gate(&app, uri.path(), &headers).await {
        Ok(admin) => {
            show_user(
                &app,
                admin,
                StatusCode::OK,
                name.name.as_deref().unwrap_or(""),
            )
            .await
        }
        Err(r) => r,
    }
}

pub(super) async fn show_user(
    app: &AppState,
    admin: Admin,
    status: StatusCode,
    name: &str,
) -> Response {
    match user_view(app, &admin, name).await {
        Ok(view) => render(app, status, "admin_user.html", &admin.frame, &view),
        Err(AdminError::User(users::UserError::NotFound(_))) => {
            // After a failed action the frame carries its error.
            let message = admin
                .frame
                .error
                .clone()
                .unwrap_or_else(|| format!("There is no user named {name:?}."));
            error_page(app, StatusCode::NOT_FOUND, "No such user", &message)
        }
        Err(e) => failure(app, &e),
    }
}

/// How a client is known, as the console shows it.
pub(super) fn kind_label(kind: mcpgate_core::model::ClientKind) -> &'static str {
    match kind {
        mcpgate_core::model::ClientKind::Dynamic => "DCR",
        mcpgate_core::model::ClientKind::MetadataDocument => "CIMD",
        mcpgate_core::model::ClientKind::Preregistered => "pre-registered",
    }
}

fn session_row(s: crate::mcp::sessions::SessionView, now: i64) -> SessionRow {
    SessionRow {
        short: crate::admin::short_handle(&s.handle).to_string(),
        handle: s.handle,
        client_id: s.client_id.unwrap_or_else(|| "(not recorded here)".into()),
        protocol_version: s.protocol_version.unwrap_or_else(|| "not sent".into()),
        opened: when(s.opened_at),
        last_request: when(now - i64::try_from(s.idle_secs).unwrap_or(0)),
    }
}

fn stream_row(s: crate::mcp::streams::StreamView) -> StreamRow {
    StreamRow {
        id: s.id,
        kind: s.kind.label(),
        client_id: s.client_id,
        session: s
            .session_handle
            .map(|h| crate::admin::short_handle(&h).to_string())
            .unwrap_or_default(),
        opened: when(s.opened_at),
    }
}

async fn user_view(app: &AppState, admin: &Admin, name: &str) -> Result<UserView, AdminError> {
    let ctx = Ctx::server(&app.auth, &admin.user).with_mcp(&app.mcp);
    let store = ctx.store();
    let user = users::find(store, name).await?;
    let groups = store
        .groups_of_user(&user.id)
        .await?
        .into_iter()
        .map(|m| GroupRow {
            local: m.source == mcpgate_core::model::GroupSource::Local,
            source: m.source.to_string(),
            name: m.group,
        })
        .collect();
    let now = app.auth.now();
    let open = ctx.open_of(&user).await?;
    let mut sessions: HashMap<Option<String>, Vec<SessionRow>> = HashMap::new();
    for (s, g) in open.sessions {
        sessions.entry(g).or_default().push(session_row(s, now));
    }
    let mut streams: HashMap<Option<String>, Vec<StreamRow>> = HashMap::new();
    for (s, g) in open.streams {
        streams.entry(g).or_default().push(stream_row(s));
    }
    let mut grants = Vec::new();
    for g in ctx.grants_of(&user).await? {
        let key = Some(g.grant_id.clone());
        let client = match mcpgate_core::domain::ClientId::parse(&g.client_id) {
            Ok(id) => store.client(&id).await?,
            Err(_) => None,
        };
        grants.push(GrantRow {
            client_name: client
                .as_ref()
                .and_then(|c| c.metadata.client_name.clone())
                .unwrap_or_else(|| g.client_id.clone()),
            kind: client.map(|c| kind_label(c.kind)).unwrap_or("unknown"),
            created: when(g.created_at),
            last_used: when(g.last_used_at),
            grant_id: g.grant_id,
            client_id: g.client_id,
            scope: g.scope,
            live_tokens: g.live_tokens,
            sessions: sessions.remove(&key).unwrap_or_default(),
            streams: streams.remove(&key).unwrap_or_default(),
        });
    }
    // Of grants no longer live, or whose token is gone from the store.
    let other_sessions = sessions.into_values().flatten().collect();
    let other_streams = streams.into_values().flatten().collect();
    Ok(UserView {
        admin: ctx.is_admin(&user.id).await?,
        disabled: ctx.is_disabled(&user.id).await?,
        is_self: user.id == admin.user.id,
        has_password: user.password_hash.is_some(),
        username: user.username.as_str().to_string(),
        created: when(user.created_at),
        id: user.id,
        groups,
        grants,
        other_sessions,
        other_streams,
        instance: ctx.instance_id().unwrap_or_default().to_string(),
        shared: app.mcp.cluster.shared(),
    })
}
