//! Every way a federated sign-in can fail.
//!
//! `Display` is the stable event name that goes into the log line
//! (`event = "federation.*"`); [`FederationError::message`] is the sentence
//! the browser sees. Neither ever contains a code, a token, a secret or the
//! provider's raw `error_description`.

/// A failed federated sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// The user (or the provider) refused: `error=access_denied` at our
    /// callback (RFC 6749 §4.1.2.1).
    #[error("federation.denied")]
    Denied,
    /// The provider sent another error code to our callback.
    #[error("federation.provider_error")]
    ProviderError { code: String },
    /// The callback's `state` is missing, unknown, already used, or was
    /// started in another browser.
    #[error("federation.bad_state")]
    BadState,
    /// The sign-in took longer than the pending sign-in lives.
    #[error("federation.expired")]
    Expired,
    /// The ID token failed validation (signature, issuer, audience, expiry,
    /// nonce; OpenID Connect Core 1.0 §3.1.3.7) or was missing.
    #[error("federation.invalid_id_token")]
    InvalidIdToken { reason: String },
    /// The provider refused our authorization code at its token endpoint.
    #[error("federation.code_exchange_failed")]
    CodeExchangeFailed { reason: String },
    /// The user-info response was unusable (no subject, wrong subject).
    #[error("federation.invalid_userinfo")]
    InvalidUserInfo { reason: String },
    /// The provider could not be reached (discovery, token or user-info
    /// request failed at the network or HTTP level).
    #[error("federation.provider_unavailable")]
    ProviderUnavailable { reason: String },
    /// No provider with this id is configured.
    #[error("federation.unknown_provider")]
    UnknownProvider,
    /// The identity does not pass the provider's restrictions.
    #[error("federation.user_not_allowed")]
    UserNotAllowed { reason: String },
    /// The identity is not linked to a user and the provider does not
    /// create users (`create_users = false`).
    #[error("federation.no_account")]
    NoAccount,
    /// Our own storage failed.
    #[error("federation.server_error")]
    Server,
}

impl FederationError {
    /// The stable event name, e.g. `federation.bad_state`.
    pub fn event(&self) -> &'static str {
        match self {
            Self::Denied => "federation.denied",
            Self::ProviderError { .. } => "federation.provider_error",
            Self::BadState => "federation.bad_state",
            Self::Expired => "federation.expired",
            Self::InvalidIdToken { .. } => "federation.invalid_id_token",
            Self::CodeExchangeFailed { .. } => "federation.code_exchange_failed",
            Self::InvalidUserInfo { .. } => "federation.invalid_userinfo",
            Self::ProviderUnavailable { .. } => "federation.provider_unavailable",
            Self::UnknownProvider => "federation.unknown_provider",
            Self::UserNotAllowed { .. } => "federation.user_not_allowed",
            Self::NoAccount => "federation.no_account",
            Self::Server => "federation.server_error",
        }
    }

    /// The page headline.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Denied => "Sign-in was cancelled",
            Self::ProviderUnavailable { .. } => "The sign-in service is unavailable",
            Self::UserNotAllowed { .. } | Self::NoAccount => "This account may not sign in here",
            Self::Server => "Something went wrong",
            _ => "Sign-in failed",
        }
    }

    /// The sentence shown to the person in the browser.
    pub fn message(&self, provider: &str) -> String {
        match self {
            Self::Denied => format!("Access was denied at {provider}, so you were not signed in."),
            Self::ProviderError { code } => {
                format!("{provider} could not sign you in (it answered with the error \u{201c}{code}\u{201d}).")
            }
            Self::BadState => "This sign-in link is not valid: it was already used, was changed, or was started in another browser. Start again from the application.".into(),
            Self::Expired => "This sign-in took too long and has expired. Start again.".into(),
            Self::InvalidIdToken { .. } => format!("The identity token from {provider} could not be verified, so you were not signed in."),
            Self::CodeExchangeFailed { .. } => format!("{provider} did not accept the sign-in (the authorization code was refused)."),
            Self::InvalidUserInfo { .. } => format!("{provider} did not return a usable account description."),
            Self::ProviderUnavailable { .. } => format!("{provider} cannot be reached right now. Try again in a moment."),
            Self::UnknownProvider => "This sign-in option is not configured on this server.".into(),
            Self::UserNotAllowed { .. } => format!("Your {provider} account is not allowed to sign in to this server."),
            Self::NoAccount => format!("Your {provider} account is not linked to an account on this server. Ask an administrator to link it."),
            Self::Server => "The server could not complete the sign-in. Try again later.".into(),
        }
    }

    /// What the log line adds (never a secret; provider text is truncated).
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::ProviderError { code } => Some(code),
            Self::InvalidIdToken { reason }
            | Self::CodeExchangeFailed { reason }
            | Self::InvalidUserInfo { reason }
            | Self::ProviderUnavailable { reason }
            | Self::UserNotAllowed { reason } => Some(reason),
            _ => None,
        }
    }

    /// Whether the failure is ours or the provider's availability rather
    /// than the request (decides the HTTP status of the page).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::ProviderUnavailable { .. })
    }
}

/// A provider-supplied error code, reduced to the RFC 6749 §4.1.2.1
/// character set (`%x20-21 / %x23-5B / %x5D-7E`, no spaces here) and 64
/// characters, so that it can be shown and logged safely.
pub fn sanitize_code(raw: &str) -> String {
    let s: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect();
    if s.is_empty() { "unknown".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_stable_and_match_display() {
        let all = [
            FederationError::Denied,
            FederationError::BadState,
            FederationError::Expired,
            FederationError::InvalidIdToken { reason: "x".into() },
            FederationError::ProviderUnavailable { reason: "x".into() },
            FederationError::UserNotAllowed { reason: "x".into() },
            FederationError::NoAccount,
        ];
        for e in &all {
            assert_eq!(e.to_string(), e.event());
            assert!(e.event().starts_with("federation."));
            assert!(e.message("Example").ends_with('.'));
        }
        assert_eq!(FederationError::Denied.event(), "federation.denied");
    }

    #[test]
    fn provider_codes_are_sanitized() {
        assert_eq!(sanitize_code("access_denied"), "access_denied");
        assert_eq!(sanitize_code("<script>\"x\" y"), "<script>xy");
        assert_eq!(sanitize_code(""), "unknown");
        assert_eq!(sanitize_code(&"a".repeat(100)).len(), 64);
    }
}
