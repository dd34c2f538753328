//! `GET /admin/upstreams`: each upstream's state, transport, isolation,
//! live connections, automatic restarts and last error (the detail the
//! public `/healthz` leaves out), with a "Restart" button
//! (`Gateway::restart`, posted to `super::post`).

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::{Admin, gate, render};
use crate::http::AppState;

#[derive(Serialize)]
struct UpstreamsView {
    upstreams: Vec<crate::gateway::upstream::Status>,
}

/// `GET /admin/upstreams`.
pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    match gate(&app, uri.path(), &headers).await {
        Ok(admin) => show(&app, admin, StatusCode::OK),
        Err(r) => r,
    }
}

pub(super) fn show(app: &AppState, admin: Admin, status: StatusCode) -> Response {
    let view = UpstreamsView {
        upstreams: app.mcp.gateway.status(),
    };
    render(app, status, "admin_upstreams.html", &admin.frame, &view)
}
