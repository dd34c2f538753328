//! `POST /v1/oauth/register` and `POST /register` (RFC 7591).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::oauth::{ErrorCode, OAuthError};

use super::AppState;
use super::client_addr::ClientAddr;
use super::errors::JsonError;

pub async fn register(
    State(app): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, JsonError> {
    if !app.dynamic_client_registration {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": "not_found",
                "error_description": "dynamic client registration is turned off on this server (dynamic_client_registration = false); ask its operator for a pre-registered client (mcpgate client add)"
            })),
        )
            .into_response());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(OAuthError::invalid_request(
            "the registration request must be JSON with Content-Type: application/json (RFC 7591 §3.1)",
        )
        .into());
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let resp = app.auth.register(&value, from).await?;
    let mut r = (StatusCode::CREATED, Json(resp)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}
