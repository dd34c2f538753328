//! `GET /healthz` (public): whether the server and each upstream are up.
//! `status` is `ok`, or `degraded` when an upstream is restarting after a
//! failure (the response is then 503, for load balancers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::gateway::upstream::State as UpstreamState;
use crate::http::AppState;

pub async fn get(State(app): State<AppState>) -> Response {
    let upstreams = app.mcp.gateway.status();
    let degraded = upstreams
        .iter()
        .any(|u| u.state == UpstreamState::Restarting);
    let status = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({
            "status": if degraded { "degraded" } else { "ok" },
            "version": env!("CARGO_PKG_VERSION"),
            "upstreams": upstreams,
        })),
    )
        .into_response()
}
