use serde::{Deserialize, Serialize};
use url::Url;

use super::ParseError;

/// A redirect URI a client may register and send (RFC 6749 §3.1.2,
/// RFC 9700 §2.1, §2.6): absolute, `https`, or `http` on a loopback host
/// (`localhost`, `127.0.0.1`, `[::1]`, RFC 8252 §7.3), with no fragment and
/// no user info. The string is kept exactly as sent, because redirect URIs
/// are compared as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

const MAX_LEN: usize = 2000;

impl RedirectUri {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new("redirect URI is empty"));
        }
        if s.len() > MAX_LEN {
            return Err(ParseError::new(format!(
                "redirect URI is longer than {MAX_LEN} characters"
            )));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new(format!(
                "redirect URI {s:?} contains white space or control characters"
            )));
        }
        let url = Url::parse(s).map_err(|e| {
            ParseError::new(format!("redirect URI {s:?} is not an absolute URI ({e})"))
        })?;
        if url.fragment().is_some() || s.contains('#') {
            return Err(ParseError::new(format!(
                "redirect URI {s:?} has a fragment, which RFC 6749 §3.1.2 forbids"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ParseError::new(format!(
                "redirect URI {s:?} carries user credentials"
            )));
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                if !is_loopback_host(&url) {
                    return Err(ParseError::new(format!(
                        "redirect URI {s:?} uses http on a non-loopback host; use https (http is allowed only for localhost, 127.0.0.1 and [::1])"
                    )));
                }
            }
            other => {
                return Err(ParseError::new(format!(
                    "redirect URI {s:?} has the scheme {other:?}; only https (or http on a loopback host) is allowed"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ParseError::new(format!("redirect URI {s:?} has no host")));
        }
        Ok(Self {
            raw: s.to_string(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The host name, lowercased (for display and for host allow-lists).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// What to show a user as the destination: the host, plus the port for
    /// loopback URIs, where the port is what tells local applications apart.
    pub fn display_host(&self) -> String {
        match (self.is_loopback(), self.url.port()) {
            (true, Some(p)) => format!("{}:{p}", self.host()),
            _ => self.host().to_string(),
        }
    }

    /// The path of the URI (for host + path-prefix allow-lists).
    pub fn path(&self) -> &str {
        self.url.path()
    }

    pub fn is_loopback(&self) -> bool {
        self.url.scheme() == "http" && is_loopback_host(&self.url)
    }

    /// Whether `requested` (sent in an authorization request) matches this
    /// registered URI: exact string match (RFC 9700 §2.1), except that a
    /// loopback `http` URI matches on any port (RFC 8252 §7.3).
    pub fn matches(&self, requested: &RedirectUri) -> bool {
        if self.raw == requested.raw {
            return true;
        }
        if self.is_loopback() && requested.is_loopback() {
            return self.url.host_str() == requested.url.host_str()
                && self.url.path() == requested.url.path()
                && self.url.query() == requested.url.query();
        }
        false
    }

    /// The form under which a user's consent to this redirect URI is
    /// remembered: the URI itself, except that a loopback URI loses its
    /// port (a native app listens on a new port each time, RFC 8252 §7.3,
    /// and is the same destination).
    pub fn consent_key(&self) -> String {
        if self.is_loopback() && self.url.port().is_some() {
            let mut u = self.url.clone();
            let _ = u.set_port(None);
            return u.to_string();
        }
        self.raw.clone()
    }

    /// This URI with extra query parameters appended (RFC 6749 §4.1.2: the
    /// query component of a redirect URI is kept).
    pub fn with_params<'a>(&self, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// Origin (`scheme://host[:port]`), for display and for CSP.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl std::fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RedirectUri> for String {
    fn from(value: RedirectUri) -> Self {
        value.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RedirectUri {
        RedirectUri::parse(s).unwrap()
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://chatgpt.com/connector/oauth/abc123",
            "https://claude.ai/api/mcp/auth_callback",
            "http://localhost/callback",
            "http://127.0.0.1:53682/callback",
            "http://[::1]:8080/cb",
            "https://app.example/cb?tenant=1",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn dangerous_or_malformed_uris_are_refused() {
        for bad in [
            "",
            "/relative/path",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "https://user:pw@example.com/cb",
            "https://exa mple.com/cb",
            "ftp://example.com/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let reg = r("https://app.example/cb");
        assert!(reg.matches(&r("https://app.example/cb")));
        assert!(!reg.matches(&r("https://app.example/cb/")));
        assert!(!reg.matches(&r("https://app.example/cb?x=1")));
        assert!(!reg.matches(&r("https://APP.example/cb")));

        let lo = r("http://localhost/callback");
        assert!(lo.matches(&r("http://localhost:49152/callback")));
        assert!(!lo.matches(&r("http://localhost:49152/other")));
        assert!(!lo.matches(&r("http://127.0.0.1:49152/callback")));
        let lo_ip = r("http://127.0.0.1:1234/cb");
        assert!(lo_ip.matches(&r("http://127.0.0.1:9999/cb")));
    }

    #[test]
    fn the_displayed_host_has_the_port_only_for_loopback() {
        assert_eq!(
            r("http://localhost:53123/callback").display_host(),
            "localhost:53123"
        );
        assert_eq!(r("http://localhost/callback").display_host(), "localhost");
        assert_eq!(
            r("https://app.example:8443/cb").display_host(),
            "app.example"
        );
    }

    #[test]
    fn params_are_appended_to_an_existing_query() {
        let u = r("https://app.example/cb?tenant=1");
        assert_eq!(
            u.with_params([("code", "a b"), ("state", "s")]),
            "https://app.example/cb?tenant=1&code=a+b&state=s"
        );
    }
}
