//! `POST <public_url>/admin/reload`: a configuration reload
//! ([`crate::reload`]), as `SIGHUP` does, for `mcpgate reload`. Only with
//! the operator token (`Authorization: Bearer`, [`crate::auth::operator`]),
//! which is derived from the server key in the database: whoever can read
//! the database can reload, nobody else. Anything else gets `401` and
//! changes nothing.
//!
//! `200` with the report (what changed live, what needs a restart), or
//! `422` with `{"status": "failed", "error": ...}` when the configuration
//! is invalid (the running one is kept). Never cached.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::auth::AuthServer;
use crate::reload::{ReloadError, Reloader};

#[derive(Clone)]
struct ReloadState {
    auth: Arc<AuthServer>,
    reloader: Arc<Reloader>,
}

/// The route, at `<base>/admin/reload`.
pub fn router(base: &str, auth: Arc<AuthServer>, reloader: Arc<Reloader>) -> Router {
    Router::new()
        .route(&format!("{base}/admin/reload"), post(reload))
        .with_state(ReloadState { auth, reloader })
}

async fn reload(State(s): State<ReloadState>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut resp = if !s.auth.is_operator(authorization) {
        tracing::warn!(
            event = "config.reload_refused",
            token_sent = authorization.is_some(),
            "a reload was asked for without the operator token"
        );
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({
                "status": "refused",
                "error": "the operator token is required (mcpgate reload derives it from the server's database)",
            })),
        )
            .into_response()
    } else {
        tracing::info!(
            event = "config.reload_requested",
            trigger = "mcpgate reload",
            "reloading the configuration"
        );
        match s.reloader.reload().await {
            Ok(report) => {
                let mut body = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
                body["status"] = json!("reloaded");
                (StatusCode::OK, axum::Json(body)).into_response()
            }
            Err(e) => {
                let status = match e {
                    ReloadError::NoSource => StatusCode::CONFLICT,
                    ReloadError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (
                    status,
                    axum::Json(json!({"status": "failed", "error": e.to_string()})),
                )
                    .into_response()
            }
        }
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
