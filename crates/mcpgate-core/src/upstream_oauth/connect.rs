//! The connect flow's rules: the authorization request mcpgate sends a
//! user's browser to at the upstream (RFC 6749 §4.1.1, PKCE S256 RFC 7636
//! §4, `resource` RFC 8707 §2), the PKCE verifier derived from the `state`
//! under the server key (nothing secret is stored), and the failures with
//! their stable log event names and page texts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use crate::crypto::{hmac_sha256, pkce_s256};

/// How long a connect link, and then a sent authorization request, live.
pub const LINK_TTL: i64 = 600;
pub const STATE_TTL: i64 = 600;

/// The PKCE verifier of the request with this `state` (43 characters of
/// base64url, RFC 7636 §4.1), derived so that it need not be stored.
pub fn verifier(server_key: &[u8], state: &str) -> String {
    let mut message = b"mcpgate upstream pkce\0".to_vec();
    message.extend_from_slice(state.as_bytes());
    URL_SAFE_NO_PAD.encode(hmac_sha256(server_key, &message))
}

/// The authorization request.
pub struct AuthorizationRequest<'a> {
    pub authorization_endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: Option<&'a str>,
    pub state: &'a str,
    pub verifier: &'a str,
    pub resource: &'a str,
}

impl AuthorizationRequest<'_> {
    /// The URL to send the browser to; the endpoint's own query parameters
    /// are kept (RFC 6749 §3.1).
    pub fn url(&self) -> Result<Url, ConnectError> {
        let mut url = Url::parse(self.authorization_endpoint).map_err(|_| {
            ConnectError::Upstream("the authorization endpoint is not a URL".into())
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.client_id)
                .append_pair("redirect_uri", self.redirect_uri)
                .append_pair("state", self.state)
                .append_pair("code_challenge", &pkce_s256(self.verifier))
                .append_pair("code_challenge_method", "S256")
                .append_pair("resource", self.resource);
            if let Some(scope) = self.scope.filter(|s| !s.is_empty()) {
                q.append_pair("scope", scope);
            }
        }
        Ok(url)
    }
}

/// Why a connect flow failed. [`ConnectError::event`] is the stable log
/// event name; [`ConnectError::title`] and [`ConnectError::message`] are
/// for the user's page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The connect link is unknown, used or expired.
    #[error("the connect link is expired or was already used")]
    LinkInvalid,
    /// The link was made for another mcpgate user than the one signed in.
    #[error("the connect link belongs to another user")]
    WrongUser,
    /// No `auth = "oauth"` upstream has this name (or the user may not use it).
    #[error("unknown upstream")]
    UnknownUpstream,
    /// The upstream was removed from the configuration, or its URL changed,
    /// while the flow was under way (a reload): nothing is connected, and
    /// no code is exchanged for a server other than the one it was asked at.
    #[error("the upstream was removed or changed while connecting")]
    Withdrawn,
    /// The upstream or its authorization server failed (discovery,
    /// registration, the token request).
    #[error("the upstream failed: {0}")]
    Upstream(String),
    /// The user refused at the upstream (`error=access_denied`) or the
    /// upstream answered the authorization request with another error.
    #[error("the upstream answered {0}")]
    Denied(String),
    /// The callback's `state` is unknown, used, expired, or from another
    /// browser.
    #[error("the callback's state is not one this browser started")]
    StateInvalid,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(String),
}

impl ConnectError {
    pub fn event(&self) -> &'static str {
        match self {
            Self::LinkInvalid => "upstream_oauth.link_invalid",
            Self::WrongUser => "upstream_oauth.link_wrong_user",
            Self::UnknownUpstream => "upstream_oauth.unknown_upstream",
            Self::Withdrawn => "upstream_oauth.upstream_withdrawn",
            Self::Upstream(_) => "upstream_oauth.upstream_failed",
            Self::Denied(_) => "upstream_oauth.denied",
            Self::StateInvalid => "upstream_oauth.state_invalid",
            Self::Store(_) => "upstream_oauth.store_failed",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::LinkInvalid => "This link has expired",
            Self::WrongUser => "This link is for someone else",
            Self::UnknownUpstream => "Unknown server",
            Self::Withdrawn => "This server changed",
            Self::Upstream(_) => "The server is not reachable",
            Self::Denied(_) => "Access was not granted",
            Self::StateInvalid => "This sign-in cannot be finished",
            Self::Store(_) => "Something went wrong",
        }
    }

    /// The page's message; `name` is the upstream's name.
    pub fn message(&self, name: &str) -> String {
        match self {
            Self::LinkInvalid => format!(
                "Connect links work once and for ten minutes. Ask your assistant to connect {name} again, or use your connections page."
            ),
            Self::WrongUser => "You are signed in as another user than the one this link was made for. Sign out, then open the link again.".to_string(),
            Self::UnknownUpstream => "There is no server of this name to connect to.".to_string(),
            Self::Withdrawn => format!(
                "{name} was removed from this server's configuration, or its address changed, while you were connecting, so nothing was connected. Start again from your connections page if it is still listed there."
            ),
            Self::Upstream(_) => format!(
                "{name} or its sign-in service did not answer as expected. Try again in a few minutes."
            ),
            Self::Denied(_) => format!(
                "{name} did not give mcpgate access to your account, so nothing was connected. You can try again from your connections page."
            ),
            Self::StateInvalid => format!(
                "The answer from {name} does not belong to a connection started in this browser, or it came too late. Start again from your connections page."
            ),
            Self::Store(_) => "The connection could not be saved. Try again in a few minutes.".to_string(),
        }
    }

    /// The HTTP status of its page.
    pub fn status(&self) -> u16 {
        match self {
            Self::LinkInvalid | Self::StateInvalid | Self::Denied(_) => 400,
            Self::WrongUser => 403,
            Self::UnknownUpstream => 404,
            Self::Withdrawn => 410,
            Self::Upstream(_) => 502,
            Self::Store(_) => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_pkce_s256_the_resource_and_keeps_the_endpoints_query() {
        let v = verifier(&[1; 32], "st");
        assert_eq!(v.len(), 43);
        assert_eq!(v, verifier(&[1; 32], "st"));
        assert_ne!(v, verifier(&[1; 32], "st2"));
        assert_ne!(v, verifier(&[2; 32], "st"));
        let url = AuthorizationRequest {
            authorization_endpoint: "https://auth.example/authorize?tenant=a",
            client_id: "https://gate.example/oauth/client.json",
            redirect_uri: "https://gate.example/oauth/upstream/callback",
            scope: Some("repo read"),
            state: "st",
            verifier: &v,
            resource: "https://api.example/mcp",
        }
        .url()
        .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "a");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_s256(&v));
        assert_eq!(q["resource"], "https://api.example/mcp");
        assert_eq!(q["scope"], "repo read");
        assert_eq!(q["state"], "st");
        assert!(!url.as_str().contains(&v), "the verifier never leaves");
    }

    #[test]
    fn failures_have_stable_events_and_readable_pages() {
        let all = [
            ConnectError::LinkInvalid,
            ConnectError::WrongUser,
            ConnectError::UnknownUpstream,
            ConnectError::Withdrawn,
            ConnectError::Upstream("x".into()),
            ConnectError::Denied("access_denied".into()),
            ConnectError::StateInvalid,
            ConnectError::Store("x".into()),
        ];
        let events: std::collections::HashSet<_> = all.iter().map(|e| e.event()).collect();
        assert_eq!(events.len(), all.len());
        for e in &all {
            assert!(e.event().starts_with("upstream_oauth."));
            assert!(!e.title().is_empty() && e.message("github").len() > 20);
            assert!((400..600).contains(&e.status()));
        }
        assert!(
            ConnectError::Denied("d".into())
                .message("github")
                .contains("github")
        );
    }
}
