//! `GET /admin/clients`: every client with its kind (DCR: registered
//! itself, RFC 7591; CIMD: identified by its metadata document's host;
//! pre-registered: `mcpgate client add`), redirect URIs, last use and
//! number of live grants; "Revoke all grants" and "Remove" post to
//! `super::post`.

use std::collections::HashMap;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::users::kind_label;
use super::{Admin, failure, gate, render, when};
use crate::admin::AdminError;
use crate::http::AppState;

#[derive(Serialize)]
struct ClientRow {
    client_id: String,
    name: Option<String>,
    kind: &'static str,
    /// For a CIMD client: the host of its metadata document.
    host: Option<String>,
    redirect_uris: Vec<String>,
    issued: String,
    last_used: Option<String>,
    live_grants: usize,
}

#[derive(Serialize)]
struct ClientsView {
    clients: Vec<ClientRow>,
}

/// `GET /admin/clients`.
pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    match gate(&app, uri.path(), &headers).await {
        Ok(admin) => show(&app, admin, StatusCode::OK).await,
        Err(r) => r,
    }
}

pub(super) async fn show(app: &AppState, admin: Admin, status: StatusCode) -> Response {
    match view(app).await {
        Ok(v) => render(app, status, "admin_clients.html", &admin.frame, &v),
        Err(e) => failure(app, &e),
    }
}

async fn view(app: &AppState) -> Result<ClientsView, AdminError> {
    let store = app.auth.store.as_ref();
    let mut grants: HashMap<String, usize> = HashMap::new();
    for g in store.live_grants(None, None, app.auth.now()).await? {
        *grants.entry(g.client_id).or_default() += 1;
    }
    let clients = store
        .list_clients()
        .await?
        .into_iter()
        .rev()
        .map(|c| {
            let host = (c.kind == mcpgate_core::model::ClientKind::MetadataDocument)
                .then(|| url::Url::parse(c.client_id.as_str()).ok())
                .flatten()
                .and_then(|u| u.host_str().map(str::to_string));
            ClientRow {
                name: c.metadata.client_name.clone(),
                kind: kind_label(c.kind),
                host,
                redirect_uris: c
                    .metadata
                    .redirect_uris
                    .iter()
                    .map(|u| u.as_str().to_string())
                    .collect(),
                issued: when(c.issued_at),
                last_used: c.last_used_at.map(when),
                live_grants: grants.get(c.client_id.as_str()).copied().unwrap_or(0),
                client_id: c.client_id.as_str().to_string(),
            }
        })
        .collect();
    Ok(ClientsView { clients })
}
