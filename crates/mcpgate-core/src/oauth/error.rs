//! The one error type of the authorization server. `Display` prints the
//! wire code (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2; RFC 8707 §2;
//! RFC 7009 §2.2.1); the description is for the human reading the response.
//! How each error becomes an HTTP response is decided in one place, the
//! HTTP layer's error mapping.

/// RFC error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidRedirectUri,
    InvalidClientMetadata,
    UnsupportedTokenType,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Security-relevant failures, logged under these stable event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEvent {
    PkceMismatch,
    PkceDowngrade,
    RedirectUriMismatch,
    CodeReplay,
    RefreshTokenReuse,
    ClientAuthFailed,
    LoginFailed,
    CsrfRejected,
    /// A `private_key_jwt` client assertion failed a check (RFC 7523 §3).
    ClientAssertionInvalid,
    /// A client assertion's `jti` was presented again (RFC 7523 §3 item 7).
    ClientAssertionReplay,
}

impl SecurityEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PkceMismatch => "oauth.pkce_mismatch",
            Self::PkceDowngrade => "oauth.pkce_downgrade",
            Self::RedirectUriMismatch => "oauth.redirect_uri_mismatch",
            Self::CodeReplay => "oauth.code_replay",
            Self::RefreshTokenReuse => "oauth.refresh_token_reuse",
            Self::ClientAuthFailed => "oauth.client_auth_failed",
            Self::LoginFailed => "auth.login_failed",
            Self::CsrfRejected => "auth.csrf_rejected",
            Self::ClientAssertionInvalid => "oauth.client_assertion_invalid",
            Self::ClientAssertionReplay => "oauth.client_assertion_replay",
        }
    }
}

/// An OAuth error: an RFC code, a specific human description, and, for
/// security-relevant failures, the event to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub event: Option<SecurityEvent>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            event: None,
        }
    }
    pub fn with_event(mut self, event: SecurityEvent) -> Self {
        self.event = Some(event);
        self
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, d)
    }

    /// The RFC 6749 §5.2 / RFC 7591 §3.2.2 JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_wire_code_and_json_has_both_fields() {
        let e = OAuthError::invalid_target("resource must be https://x/v1/ai/mcp");
        assert_eq!(e.to_string(), "invalid_target");
        assert_eq!(e.to_json()["error"], "invalid_target");
        assert_eq!(
            e.to_json()["error_description"],
            "resource must be https://x/v1/ai/mcp"
        );
    }
}
