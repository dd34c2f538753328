//! The tokens an upstream's authorization server issued to mcpgate for one
//! user, and the rules for using them.
//!
//! - [`TokenSet::from_response`]: a successful token response (RFC 6749
//!   §5.1): `token_type` must be `Bearer` (any case, RFC 6750 §4),
//!   `expires_in` becomes an absolute time.
//! - [`TokenSet::refreshed`]: a refresh response (RFC 6749 §6) without a new
//!   refresh token keeps the old one; with one, the old one is gone
//!   (rotation, OAuth 2.1 §4.3.1): it is never used again.
//! - [`TokenSet::needs_refresh`]: refresh [`REFRESH_MARGIN`] seconds before
//!   expiry.
//! - [`Secrets`]: what the vault encrypts (only the two tokens; expiry and
//!   scope are stored in the clear).

use serde::{Deserialize, Serialize};

use crate::model::UnixTime;
use crate::secret::Secret;

/// Refresh this long before the access token expires.
pub const REFRESH_MARGIN: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenResponseError {
    #[error("the token response is not valid JSON: {0}")]
    NotJson(String),
    #[error("the token response has no access_token")]
    NoAccessToken,
    #[error("the token type {0:?} is not Bearer")]
    NotBearer(String),
}

/// The secret part of a token set: what the vault seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub access_token: Secret<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret<String>>,
}

/// One user's tokens at one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub secrets: Secrets,
    pub expires_at: Option<UnixTime>,
    /// The scope granted (the response's `scope`, else the one requested).
    pub scope: Option<String>,
}

impl TokenSet {
    /// Reads a successful token response received at `now`; `requested`
    /// is the scope asked for (RFC 6749 §5.1: an absent `scope` means
    /// that one was granted).
    pub fn from_response(
        body: &[u8],
        now: UnixTime,
        requested: Option<&str>,
    ) -> Result<Self, TokenResponseError> {
        #[derive(Deserialize)]
        struct Response {
            access_token: Option<String>,
            token_type: Option<String>,
            expires_in: Option<serde_json::Value>,
            refresh_token: Option<String>,
            scope: Option<String>,
        }
        let r: Response =
            serde_json::from_slice(body).map_err(|e| TokenResponseError::NotJson(e.to_string()))?;
        let access_token = r
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or(TokenResponseError::NoAccessToken)?;
        let token_type = r.token_type.unwrap_or_default();
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenResponseError::NotBearer(token_type));
        }
        // Some servers send `expires_in` as a string.
        let expires_in = match r.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(Self {
            secrets: Secrets {
                access_token: Secret::new(access_token),
                refresh_token: r.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
            },
            expires_at: expires_in.filter(|s| *s > 0).map(|s| now.saturating_add(s)),
            scope: r.scope.or_else(|| requested.map(str::to_string)),
        })
    }

    /// The set after a refresh answered with `new`: the old refresh token
    /// stays only if the server issued no new one; the scope stays if the
    /// response names none.
    pub fn refreshed(&self, mut new: TokenSet) -> TokenSet {
        if new.secrets.refresh_token.is_none() {
            new.secrets.refresh_token = self.secrets.refresh_token.clone();
        }
        if new.scope.is_none() {
            new.scope = self.scope.clone();
        }
        new
    }

    /// Whether to refresh before using the access token at `now`.
    pub fn needs_refresh(&self, now: UnixTime) -> bool {
        self.expires_at
            .is_some_and(|at| now >= at.saturating_sub(REFRESH_MARGIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_becomes_a_set_with_absolute_expiry() {
        let t = TokenSet::from_response(
            br#"{"access_token":"at1","token_type":"bearer","expires_in":3600,"refresh_token":"rt1","scope":"mcp read"}"#,
            1000,
            Some("mcp"),
        )
        .unwrap();
        assert_eq!(t.secrets.access_token.expose(), "at1");
        assert_eq!(t.secrets.refresh_token.as_ref().unwrap().expose(), "rt1");
        assert_eq!(t.expires_at, Some(4600));
        assert_eq!(t.scope.as_deref(), Some("mcp read"));
        let t = TokenSet::from_response(
            br#"{"access_token":"at","token_type":"Bearer","expires_in":"60"}"#,
            10,
            Some("mcp"),
        )
        .unwrap();
        assert_eq!((t.expires_at, t.scope.as_deref()), (Some(70), Some("mcp")));
        assert!(t.secrets.refresh_token.is_none());
    }

    #[test]
    fn unusable_responses_are_refused() {
        assert_eq!(
            TokenSet::from_response(br#"{"token_type":"Bearer"}"#, 0, None),
            Err(TokenResponseError::NoAccessToken)
        );
        assert_eq!(
            TokenSet::from_response(br#"{"access_token":"a","token_type":"mac"}"#, 0, None),
            Err(TokenResponseError::NotBearer("mac".into()))
        );
        assert!(matches!(
            TokenSet::from_response(b"<html>", 0, None),
            Err(TokenResponseError::NotJson(_))
        ));
    }

    #[test]
    fn a_rotated_refresh_token_replaces_the_old_one_and_an_absent_one_keeps_it() {
        let old = TokenSet::from_response(
            br#"{"access_token":"a1","token_type":"Bearer","refresh_token":"r1","scope":"s"}"#,
            0,
            None,
        )
        .unwrap();
        let rotated = old.refreshed(
            TokenSet::from_response(
                br#"{"access_token":"a2","token_type":"Bearer","refresh_token":"r2"}"#,
                0,
                None,
            )
            .unwrap(),
        );
        assert_eq!(rotated.secrets.refresh_token.unwrap().expose(), "r2");
        assert_eq!(rotated.scope.as_deref(), Some("s"));
        let kept = old.refreshed(
            TokenSet::from_response(br#"{"access_token":"a3","token_type":"Bearer"}"#, 0, None)
                .unwrap(),
        );
        assert_eq!(kept.secrets.access_token.expose(), "a3");
        assert_eq!(kept.secrets.refresh_token.unwrap().expose(), "r1");
    }

    #[test]
    fn refresh_starts_a_minute_before_expiry() {
        let mut t =
            TokenSet::from_response(br#"{"access_token":"a","token_type":"Bearer"}"#, 0, None)
                .unwrap();
        assert!(!t.needs_refresh(i64::MAX));
        t.expires_at = Some(1000);
        assert!(!t.needs_refresh(1000 - REFRESH_MARGIN - 1));
        assert!(t.needs_refresh(1000 - REFRESH_MARGIN));
        assert!(t.needs_refresh(2000));
    }

    #[test]
    fn debug_hides_both_tokens() {
        let t = TokenSet::from_response(
            br#"{"access_token":"visible-at","token_type":"Bearer","refresh_token":"visible-rt"}"#,
            0,
            None,
        )
        .unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("visible-at") && !shown.contains("visible-rt"));
    }
}
