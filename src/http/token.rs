//! `POST /v1/oauth/token`, `POST /token` (RFC 6749 §3.2) and
//! `POST /v1/oauth/revoke`, `POST /revoke` (RFC 7009). Form-encoded bodies.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::oauth::OAuthError;
use mcpgate_core::oauth::params::Params;

use super::AppState;
use super::errors::JsonError;

fn form_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, JsonError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded (RFC 6749 §3.2)",
        )
        .into());
    }
    let text = std::str::from_utf8(body).map_err(|_| {
        JsonError::from(OAuthError::invalid_request("the request body is not UTF-8"))
    })?;
    Ok(Params::parse(text)?)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

pub async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, JsonError> {
    let params = form_params(&headers, &body)?;
    let resp = app.auth.token(&params, authorization(&headers)).await?;
    let mut r = (StatusCode::OK, axum::Json(resp)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}

pub async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, JsonError> {
    let params = form_params(&headers, &body)?;
    app.auth.revoke(&params, authorization(&headers)).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
