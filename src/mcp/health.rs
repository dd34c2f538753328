//! `GET /healthz`: whether the server is up, for load balancers and
//! monitors. `status` is `ok`, or `degraded` when an upstream is restarting
//! after a failure (the response is then 503).
//!
//! The public answer is `{"status", "version"}` only: upstream names, states
//! and error texts tell an outsider what runs behind the gateway and how it
//! fails. `GET /healthz?details` with `Authorization: Bearer <operator
//! token>` (`crate::auth::operator`; `mcpgate status` sends it) adds
//! `upstreams`. Without the token, or with a wrong one, `?details` gets the
//! public answer; the status code is the same either way.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::gateway::upstream::State as UpstreamState;
use crate::http::AppState;

pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let upstreams = app.mcp.gateway.status();
    let degraded = upstreams
        .iter()
        .any(|u| u.state == UpstreamState::Restarting);
    let status = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = json!({
        "status": if degraded { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
    });
    if wants_details(uri.query()) {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if app.auth.is_operator(authorization) {
            body["upstreams"] = json!(upstreams);
        } else {
            tracing::info!(
                event = "health.details_refused",
                token_sent = authorization.is_some(),
                "health details asked for without the operator token"
            );
        }
    }
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether the query string names `details` (`?details`, `?details=1`).
fn wants_details(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.split('=').next() == Some("details"))
}
