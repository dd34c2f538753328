//! `[[upstream]]` entries of `mcpgate.toml`: the MCP servers the gateway
//! serves behind the OAuth door.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::bounds::{MAX_IDENTITY_JWT_TTL, MAX_LIFETIME, MAX_WAIT, Zero, check};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// One connection (one process) for every user.
    #[default]
    Shared,
    /// One connection (one process) per user, started on first use and
    /// stopped after `idle_timeout`; it learns who its user is.
    PerUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HttpTransport {
    #[default]
    StreamableHttp,
    Sse,
}

/// The MCP revision mcpgate speaks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Revision {
    /// `initialize`; the upstream asks its client with requests (relayed
    /// to a 2026-07-28 client as an `InputRequiredResult`).
    #[default]
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    /// `server/discover` and per-request metadata; the upstream asks with
    /// its own `InputRequiredResult` (relayed to a 2025 client as
    /// requests; `relay::rounds`).
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
}

/// How mcpgate authenticates to an HTTP upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamAuth {
    /// No credentials of mcpgate's own (static `headers` may carry some).
    #[default]
    None,
    /// Each user connects their own account at the upstream with OAuth;
    /// calls carry that user's access token (`crate::upstream_oauth`,
    /// docs/upstream-oauth.md). Implies per-user connections.
    Oauth,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Unique name (letters, digits, `-`, `_`): in logs and status.
    pub name: String,
    /// Namespace for its tools and prompts: `<prefix>_<tool>`. Default: the
    /// name. An empty prefix is allowed for one upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Stdio upstream: the program to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables set for a stdio upstream (see `crate::gateway::env`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables of mcpgate's own environment passed to a stdio upstream
    /// besides the allowlist (never mcpgate's secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherit_env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// HTTP upstream: its Streamable HTTP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The HTTP upstream's transport: `streamable_http` (default) or `sse`
    /// (the legacy HTTP+SSE transport of MCP 2024-11-05; `url` is then its
    /// event-stream URL, e.g. `http://host/sse`).
    #[serde(default)]
    pub transport: HttpTransport,
    /// Static headers sent to an HTTP upstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub isolation: Isolation,
    /// The revision to connect with (default `2025-11-25`).
    #[serde(default)]
    pub revision: Revision,
    /// Per-user HTTP upstreams: also send the identity as a short-lived
    /// signed JWT (see `crate::gateway::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_jwt: Option<super::identity::IdentityJwtConfig>,
    /// How long one request may take.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long starting and initializing the upstream may take.
    #[serde(default = "default_startup_timeout", with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Per-user upstreams idle this long are stopped.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Only these users (by username) see this upstream. Default: everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_users: Option<Vec<String>>,
    /// Scopes every tool, prompt and resource of this upstream needs on
    /// top of the base scope; a token without them gets `403
    /// insufficient_scope` (step-up, docs/scopes.md). Each must be one of
    /// the server's scopes (`scopes` or a `[[scope]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `"oauth"`: each user connects their own account (HTTP upstreams).
    #[serde(default)]
    pub auth: UpstreamAuth,
    /// `auth = "oauth"`: a client id pre-registered at the upstream's
    /// authorization server (default: a Client ID Metadata Document if the
    /// server takes them, else dynamic registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client_id: Option<String>,
    /// `auth = "oauth"`: the environment variable holding that client's
    /// secret (none: a public client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client_secret_env: Option<String>,
    /// `auth = "oauth"`: the scopes to ask the upstream for (default: those
    /// its protected resource metadata lists, else none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oauth_scopes: Vec<String>,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_startup_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

impl UpstreamConfig {
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(&self.name)
    }

    /// Whether each user connects their own account (`auth = "oauth"`).
    pub fn is_oauth(&self) -> bool {
        self.auth == UpstreamAuth::Oauth
    }

    /// Whether a caller may use this upstream: anyone when `allowed_users`
    /// is unset; else only the listed users. A service (client credentials)
    /// is no user: a list of users never admits it, whatever its name.
    pub fn allows_caller(&self, caller: &mcpgate_core::mcp::bearer::Caller) -> bool {
        match caller.user() {
            Some((_, username)) => self.allows(username),
            None => self.allowed_users.is_none(),
        }
    }

    /// Whether `username` (normalised, as stored) may use this upstream;
    /// the listed names are normalised too, so any case matches.
    pub fn allows(&self, username: &str) -> bool {
        self.allowed_users.as_ref().is_none_or(|list| {
            list.iter()
                .any(|u| mcpgate_core::domain::Username::normalized(u).as_str() == username)
        })
    }
}

/// Checks the upstream list as a whole; the error names the entry.
pub fn validate(upstreams: &[UpstreamConfig]) -> Result<(), String> {
    let mut names = Vec::new();
    let mut prefixes = Vec::new();
    for u in upstreams {
        let what = format!("upstream {:?}", u.name);
        if u.name.is_empty()
            || !u
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("{what}: name must be letters, digits, - and _"));
        }
        if names.contains(&u.name) {
            return Err(format!("{what}: two upstreams have this name"));
        }
        names.push(u.name.clone());
        let p = u.prefix();
        if !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("{what}: prefix must be letters, digits, - and _"));
        }
        if prefixes.iter().any(|q: &String| q == p) {
            return Err(format!("{what}: prefix {p:?} is used by another upstream"));
        }
        prefixes.push(p.to_string());
        match (&u.command, &u.url) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{what}: set either command (stdio) or url (HTTP), not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "{what}: set command (a stdio server) or url (a Streamable HTTP server)"
                ));
            }
            (Some(c), None) if c.trim().is_empty() => {
                return Err(format!("{what}: command is empty"));
            }
            (None, Some(url)) => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| format!("{what}: url {url:?} is not a URL ({e})"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("{what}: url must be http or https"));
                }
                if !u.args.is_empty()
                    || !u.env.is_empty()
                    || !u.inherit_env.is_empty()
                    || u.cwd.is_some()
                {
                    return Err(format!(
                        "{what}: args, env, inherit_env and cwd apply to command upstreams only"
                    ));
                }
            }
            (Some(_), None) => {
                if u.transport != HttpTransport::StreamableHttp {
                    return Err(format!("{what}: transport applies to url upstreams only"));
                }
                if !u.headers.is_empty() {
                    return Err(format!("{what}: headers apply to url upstreams only"));
                }
            }
        }
        for (k, v) in &u.headers {
            if axum::http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || axum::http::HeaderValue::from_str(v).is_err()
            {
                return Err(format!("{what}: header {k:?} is not a valid HTTP header"));
            }
        }
        check_oauth(u, &what)?;
        if u.identity_jwt.is_some() && (u.url.is_none() || u.isolation != Isolation::PerUser) {
            return Err(format!(
                "{what}: identity_jwt needs a url upstream with isolation = \"per_user\""
            ));
        }
        let mut durations = vec![
            ("request_timeout", u.request_timeout, MAX_WAIT),
            ("startup_timeout", u.startup_timeout, MAX_WAIT),
            ("idle_timeout", u.idle_timeout, MAX_LIFETIME),
        ];
        if let Some(jwt) = &u.identity_jwt {
            durations.push(("identity_jwt.ttl", jwt.ttl, MAX_IDENTITY_JWT_TTL));
        }
        for (name, value, max) in durations {
            check(name, value, max, Zero::Refused).map_err(|e| format!("{what}: {e}"))?;
        }
    }
    Ok(())
}

/// `auth = "oauth"`: an HTTP (Streamable HTTP) upstream, connections per
/// user, no static `Authorization` header; the `oauth_*` settings only
/// with it.
fn check_oauth(u: &UpstreamConfig, what: &str) -> Result<(), String> {
    if !u.is_oauth() {
        if u.oauth_client_id.is_some()
            || u.oauth_client_secret_env.is_some()
            || !u.oauth_scopes.is_empty()
        {
            return Err(format!(
                "{what}: oauth_client_id, oauth_client_secret_env and oauth_scopes need auth = \"oauth\""
            ));
        }
        return Ok(());
    }
    if u.url.is_none() || u.transport != HttpTransport::StreamableHttp {
        return Err(format!(
            "{what}: auth = \"oauth\" needs a url upstream with the streamable_http transport"
        ));
    }
    if u.isolation != Isolation::PerUser {
        return Err(format!(
            "{what}: auth = \"oauth\" needs isolation = \"per_user\" (each user has their own connection)"
        ));
    }
    if u.headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        return Err(format!(
            "{what}: auth = \"oauth\" sends each user's token; remove the Authorization header"
        ));
    }
    if u.oauth_client_secret_env.is_some() && u.oauth_client_id.is_none() {
        return Err(format!(
            "{what}: oauth_client_secret_env needs oauth_client_id"
        ));
    }
    for s in &u.oauth_scopes {
        if s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            return Err(format!(
                "{what}: oauth scope {s:?} is not a valid scope token"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str) -> UpstreamConfig {
        toml::from_str(&format!("name = \"{name}\"\ncommand = \"server\"")).unwrap()
    }

    #[test]
    fn defaults_and_a_valid_list() {
        let u = up("files");
        assert_eq!(u.prefix(), "files");
        assert_eq!(u.isolation, Isolation::Shared);
        assert_eq!(u.request_timeout, Duration::from_secs(60));
        assert!(validate(&[up("a"), up("b")]).is_ok());
    }

    #[test]
    fn problems_name_the_upstream() {
        assert!(
            validate(&[up("a"), up("a")])
                .unwrap_err()
                .contains("two upstreams")
        );
        let mut b = up("b");
        b.prefix = Some("a".into());
        assert!(validate(&[up("a"), b]).unwrap_err().contains("prefix"));
        let mut c = up("c");
        c.url = Some("https://x.example/mcp".into());
        assert!(validate(&[c]).unwrap_err().contains("not both"));
        let mut d = up("d");
        d.command = None;
        assert!(validate(&[d]).unwrap_err().contains("set command"));
        assert!(validate(&[up("bad name")]).unwrap_err().contains("letters"));
        let mut e = up("e");
        e.prefix = Some(String::new());
        let mut f = up("f");
        f.prefix = Some(String::new());
        assert!(validate(&[e.clone()]).is_ok());
        assert!(validate(&[e, f]).unwrap_err().contains("prefix"));
    }

    #[test]
    fn every_upstream_duration_is_bounded_and_not_zero() {
        let parse = |extra: &str| -> UpstreamConfig {
            toml::from_str(&format!("name = \"u\"\ncommand = \"server\"\n{extra}")).unwrap()
        };
        for (key, max) in [
            ("request_timeout", "1day"),
            ("startup_timeout", "1day"),
            ("idle_timeout", "10years"),
        ] {
            assert!(
                validate(&[parse(&format!("{key} = \"{max}\""))]).is_ok(),
                "{key}"
            );
            let e = validate(&[parse(&format!("{key} = \"{max} 1s\""))]).unwrap_err();
            assert!(
                e.starts_with(&format!("upstream \"u\": {key} is {max} 1s (")),
                "{e}"
            );
            assert!(e.contains(&format!("the maximum is {max} (")), "{e}");
            let e = validate(&[parse(&format!("{key} = \"1000000years\""))]).unwrap_err();
            assert!(e.contains(key) && e.contains("the maximum"), "{e}");
            let e = validate(&[parse(&format!("{key} = \"0s\""))]).unwrap_err();
            assert_eq!(e, format!("upstream \"u\": {key} must be longer than zero"));
        }
    }

    #[test]
    fn oauth_needs_a_per_user_streamable_http_upstream_and_owns_its_settings() {
        let parse = |extra: &str| -> UpstreamConfig {
            toml::from_str(&format!(
                "name = \"gh\"\nurl = \"https://api.example/mcp\"\n{extra}"
            ))
            .unwrap()
        };
        let good = parse("auth = \"oauth\"\nisolation = \"per_user\"\noauth_scopes = [\"repo\"]");
        assert!(good.is_oauth());
        assert!(validate(&[good]).is_ok());
        for (extra, expected) in [
            ("auth = \"oauth\"", "isolation = \"per_user\""),
            (
                "auth = \"oauth\"\nisolation = \"per_user\"\ntransport = \"sse\"",
                "streamable_http",
            ),
            (
                "auth = \"oauth\"\nisolation = \"per_user\"\nheaders = { Authorization = \"Bearer x\" }",
                "Authorization",
            ),
            (
                "auth = \"oauth\"\nisolation = \"per_user\"\noauth_client_secret_env = \"S\"",
                "needs oauth_client_id",
            ),
            (
                "auth = \"oauth\"\nisolation = \"per_user\"\noauth_scopes = [\"a b\"]",
                "scope",
            ),
            ("oauth_client_id = \"x\"", "need auth = \"oauth\""),
        ] {
            let e = validate(&[parse(extra)]).unwrap_err();
            assert!(e.contains(expected), "{extra}: {e}");
        }
        let mut stdio = up("s");
        stdio.auth = UpstreamAuth::Oauth;
        stdio.isolation = Isolation::PerUser;
        assert!(validate(&[stdio]).unwrap_err().contains("url upstream"));
    }

    #[test]
    fn allowed_users_restrict_visibility() {
        let mut u = up("a");
        assert!(u.allows("anyone"));
        u.allowed_users = Some(vec!["alice".into()]);
        assert!(u.allows("alice") && !u.allows("bob"));
    }

    #[test]
    fn allowed_users_match_the_normalised_username_in_any_case() {
        let mut u = up("a");
        u.allowed_users = Some(vec!["Carol".into(), "\u{ff24}AVE".into()]);
        assert!(u.allows("carol") && u.allows("dave") && !u.allows("erin"));
    }
}
