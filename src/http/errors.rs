//! The one place where protocol errors become HTTP responses.
//!
//! - Token, registration and revocation errors: RFC 6749 §5.2 /
//!   RFC 7591 §3.2.2 JSON with `Cache-Control: no-store`. `invalid_client`
//!   is 401, with `WWW-Authenticate: Basic` when the client used Basic;
//!   `server_error` 500; `temporarily_unavailable` 503 with `Retry-After: 2`
//!   (429 with `Retry-After: 60` for rate limits);
//!   everything else 400.
//! - Authorization endpoint errors that cannot be redirected: an HTML page.
//! - Failed federated sign-ins (`/oauth/callback`): an HTML page whose
//!   status is [`federation_status`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::federation::FederationError;
use mcpgate_core::oauth::{ErrorCode, OAuthError};

use crate::auth::token::TokenError;

/// The status of the error page after a failed federated sign-in.
pub fn federation_status(e: &FederationError) -> StatusCode {
    match e {
        FederationError::Denied
        | FederationError::UserNotAllowed { .. }
        | FederationError::NoAccount => StatusCode::FORBIDDEN,
        FederationError::ProviderUnavailable { .. } => StatusCode::BAD_GATEWAY,
        FederationError::Server => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An OAuth error as a JSON response.
pub struct JsonError {
    pub error: OAuthError,
    pub basic_challenge: bool,
}

impl From<OAuthError> for JsonError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic_challenge: false,
        }
    }
}

impl From<TokenError> for JsonError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::OAuth(error) => error.into(),
            TokenError::ClientAuth(c) => Self {
                error: c.error,
                basic_challenge: c.basic,
            },
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        // Security events were logged where they happened, with context.
        if self.error.event.is_none() {
            tracing::info!(event = "oauth.request_refused", error = %self.error.code, description = ?self.error.description, "request refused");
        }
        let mut status = status_of(self.error.code);
        let rate_limited = self.error.code == ErrorCode::TemporarilyUnavailable
            && self.error.description.starts_with("too many");
        if rate_limited {
            status = StatusCode::TOO_MANY_REQUESTS;
        }
        let mut resp = (status, axum::Json(self.error.to_json())).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if rate_limited {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            // The database is restarting, or a rotation lost its races:
            // worth another try soon (RFC 9110 §10.2.3).
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcpgate\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}
