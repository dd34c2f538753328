//! Settings: defaults, then `mcpgate.toml` (or `--config FILE`), then
//! `MCPGATE_*` environment variables, then command-line flags; later
//! sources win. [`Settings::resolve`] checks everything once at start and
//! derives the [`Policy`] and every advertised URL from the one public URL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use mcpgate_core::client_address::TrustedProxies;
use mcpgate_core::domain::{ResourceUri, Scope};
use mcpgate_core::oauth::discovery::{EndpointStyle, Urls};
use mcpgate_core::oauth::policy::Policy;
use serde::{Deserialize, Serialize};

pub mod bounds;
pub mod scopes;

pub const DEFAULT_CONFIG_FILE: &str = "mcpgate.toml";

/// Every setting. Field names are the keys in `mcpgate.toml`; the
/// environment variable is `MCPGATE_` + the key in upper case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The public base URL clients use; the issuer and the base of every
    /// advertised URL. Default: `http://localhost:<port>` when listening on
    /// a loopback address (required otherwise, and then it must be https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `sqlite://path.db` (created if missing), or
    /// `postgres://user:password@host:port/database` (the database must
    /// exist; several instances may share it). Migrations run at start.
    pub database_url: String,
    /// Which OAuth endpoint paths the metadata advertises: `v1`
    /// (`/v1/oauth/*`) or `root` (`/authorize`, `/token`, ...). Both are served.
    pub endpoint_style: EndpointStyleSetting,
    /// Scopes clients may request.
    pub scopes: Vec<String>,
    /// Scope granted when a request names none.
    pub default_scope: String,
    /// Scopes with a description for the consent page (`[[scope]]` tables
    /// of `name` and `description`); offered besides `scopes`
    /// (`config::scopes`, docs/scopes.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<scopes::ScopeDecl>,
    /// Refuse authorization requests without a `resource` parameter.
    pub require_resource: bool,
    /// Redirect hosts that may skip PKCE (ChatGPT compatibility).
    pub pkce_exempt_redirect_hosts: Vec<String>,
    /// Authorization code lifetime (at most 10 minutes).
    #[serde(with = "humantime_serde")]
    pub auth_code_ttl: Duration,
    /// Access token lifetime.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Refresh token lifetime (renewed on every rotation).
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// Issue refresh tokens (turn off for the ChatGPT flow document's
    /// "no refresh tokens" behaviour).
    pub issue_refresh_tokens: bool,
    /// After a refresh, how long the old refresh token still returns the same
    /// successor (a client that lost the response, or refreshed twice at once).
    #[serde(with = "humantime_serde")]
    pub refresh_grace_period: Duration,
    /// How long a browser stays signed in.
    #[serde(with = "humantime_serde")]
    pub login_session_ttl: Duration,
    /// Registered clients that are never used are deleted after this long.
    #[serde(with = "humantime_serde")]
    pub unused_client_ttl: Duration,
    /// Client registrations allowed per source address per minute.
    pub registration_rate_limit: u32,
    /// Sign-in attempts allowed per minute per account; each source address
    /// may make three times as many (several users behind one address).
    pub login_rate_limit: u32,
    /// Reverse proxies (CIDR blocks or single addresses) whose
    /// `X-Forwarded-For` names the client for the per-address rate limits.
    /// Default: none (the TCP peer is the client; the header is ignored).
    pub trusted_proxies: Vec<String>,
    /// Extra `Host` values the MCP endpoint accepts (the public URL's host
    /// and loopback names are always accepted). DNS-rebinding protection.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the MCP endpoint, e.g.
    /// `https://inspector.example.com` or `http://localhost:*` (the public
    /// URL's origin is always allowed; loopback origins too when the public
    /// URL is loopback). Requests without `Origin` are not affected.
    pub allowed_origins: Vec<String>,
    /// Streamable HTTP sessions idle this long are closed.
    #[serde(with = "humantime_serde")]
    pub mcp_session_idle_timeout: Duration,
    /// An open event stream (legacy SSE, a Streamable HTTP GET stream, the
    /// event stream answering a POST) with nothing to send carries a
    /// keep-alive comment this often.
    #[serde(with = "humantime_serde")]
    pub event_stream_keep_alive: Duration,
    /// A client must send a request's head (request line and headers)
    /// within this long of its first byte, else the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A request's body must arrive within this long of its head (`408`).
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes.
    pub max_connections: u32,
    /// Name shown on pages and in metadata.
    pub server_name: String,
    /// This instance's name in the logs and in the database, when several
    /// instances share one (docs/scaling.md). Default: the host name, the
    /// process id and four random hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// `text` or `json` log lines on stderr.
    pub log_format: LogFormat,
    /// Show the username and password form on the sign-in page. Turn it
    /// off when everyone signs in through an `[[identity_provider]]`.
    pub password_login: bool,
    /// Dynamic client registration (RFC 7591). `false`: no
    /// `registration_endpoint` in the metadata and `404` at the
    /// registration endpoints; only pre-registered clients
    /// (`mcpgate client add`) can connect.
    pub dynamic_client_registration: bool,
    /// Clients that register themselves or identify with a metadata
    /// document may be public (`none`, PKCE only). `false`: they must
    /// authenticate (`private_key_jwt`, or a client secret for registered
    /// clients); `none` leaves the metadata's auth method lists.
    pub public_clients: bool,
    /// Upstream identity providers users may sign in with
    /// (`[[identity_provider]]` tables; see `crate::federation::config`
    /// and docs/identity-providers.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_provider: Vec<crate::federation::config::IdentityProviderConfig>,
    /// Upstream MCP servers served behind the endpoint (`[[upstream]]`
    /// tables in the file; see `crate::gateway::config`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<crate::gateway::config::UpstreamConfig>,
    /// Networks (CIDR blocks or single addresses) that URLs chosen by
    /// clients (metadata documents, `jwks_uri`) may reach although they are
    /// not public: loopback, private and link-local addresses are refused
    /// otherwise (docs/security.md). For on-premises clients and tests.
    pub outbound_allow_networks: Vec<String>,
    /// A PEM file of extra CA certificates trusted by every outbound
    /// connection (client metadata documents and keys, identity providers,
    /// HTTP upstreams, `mcpgate doctor`), on top of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_ca_file: Option<PathBuf>,
    /// Accept Client ID Metadata Documents: a `client_id` that is an https
    /// URL with a path is fetched as the client's metadata, and the
    /// metadata advertises `client_id_metadata_document_supported`.
    pub client_id_metadata_documents: bool,
    /// Hosts whose metadata documents are accepted (e.g. `chatgpt.com`,
    /// `claude.ai`). Default: empty, any host.
    pub trusted_client_hosts: Vec<String>,
    /// A second listen address serving only `GET /metrics` (Prometheus),
    /// without a token unless `metrics_token_env` is also set. Default:
    /// none. Keep it on loopback or a private network (docs/observability.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// The name of an environment variable holding a bearer token (at
    /// least 16 characters); when set, `GET /metrics` is also served on the
    /// main listener to requests carrying `Authorization: Bearer <token>`.
    /// Default: none (`/metrics` answers 404 there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token_env: Option<String>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain
    /// and `tls_key_file` (`crate::http::tls`); reloaded when they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Who may use which tool, prompt and resource (`[[policy]]` tables;
    /// see `mcpgate_core::policy::RuleConfig` and docs/policy.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<mcpgate_core::policy::RuleConfig>,
    /// The configuration file these settings were read from, if any (set by
    /// [`Settings::load`]; not a setting): errors name its lines.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    /// What applies when no `[[policy]]` rule does: `allow` (everything
    /// not denied, the behaviour without rules) or `deny`.
    #[serde(default)]
    pub default_policy: mcpgate_core::policy::DefaultPolicy,
    /// Write the audit log (docs/audit.md) to the database (`audit_log`),
    /// where `mcpgate audit tail|search` read it.
    pub audit_store: bool,
    /// Also write the audit log as JSON lines: `off`, `stdout`, or a file
    /// path (created if missing, appended to).
    pub audit_jsonl: String,
    /// Include tool and prompt arguments in audit records (they may hold
    /// personal data; off by default).
    pub audit_tool_arguments: bool,
    /// Audit records older than this many days are deleted by housekeeping;
    /// 0 keeps them forever.
    pub audit_retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointStyleSetting {
    V1,
    Root,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3333)),
            public_url: None,
            database_url: "sqlite://mcpgate.db".into(),
            endpoint_style: EndpointStyleSetting::V1,
            scopes: vec!["mcp".into()],
            default_scope: "mcp".into(),
            scope: Vec::new(),
            require_resource: false,
            pkce_exempt_redirect_hosts: vec!["chatgpt.com".into(), "chat.openai.com".into()],
            auth_code_ttl: Duration::from_secs(60),
            access_token_ttl: Duration::from_secs(24 * 3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            issue_refresh_tokens: true,
            refresh_grace_period: Duration::from_secs(30),
            login_session_ttl: Duration::from_secs(12 * 3600),
            unused_client_ttl: Duration::from_secs(7 * 24 * 3600),
            registration_rate_limit: 30,
            login_rate_limit: 10,
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            mcp_session_idle_timeout: Duration::from_secs(30 * 60),
            event_stream_keep_alive: Duration::from_secs(15),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(75),
            max_connections: 10_000,
            server_name: "mcpgate".into(),
            instance_id: None,
            log_format: LogFormat::Text,
            password_login: true,
            dynamic_client_registration: true,
            public_clients: true,
            identity_provider: Vec::new(),
            upstream: Vec::new(),
            outbound_allow_networks: Vec::new(),
            outbound_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            client_id_metadata_documents: true,
            trusted_client_hosts: Vec::new(),
            metrics_listen: None,
            metrics_token_env: None,
            policy: Vec::new(),
            source_file: None,
            default_policy: mcpgate_core::policy::DefaultPolicy::Allow,
            audit_store: true,
            audit_jsonl: "off".into(),
            audit_tool_arguments: false,
            audit_retention_days: 90,
        }
    }
}

/// A configuration problem, in one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads defaults < file < environment < `overrides` (the flags).
    /// `file`: an explicit path must exist; without one, `./mcpgate.toml`
    /// is read if present.
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist (create one with `mcpgate init`)",
                    path.display()
                )));
            }
            Some(path) => fig = fig.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                fig = fig.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        let (scalars, lists) = setting_keys();
        let env_lists: figment::value::Dict = lists
            .iter()
            .filter_map(|key| {
                let raw = std::env::var(format!("MCPGATE_{}", key.to_ascii_uppercase())).ok()?;
                Some((
                    (*key).to_string(),
                    figment::value::Value::from(split_list(&raw)),
                ))
            })
            .collect();
        fig = fig
            // Only known keys: other MCPGATE_* variables (a script's own,
            // say) are not settings and must not stop the server.
            .merge(
                Env::prefixed("MCPGATE_")
                    .only(&scalars.iter().map(String::as_str).collect::<Vec<_>>()),
            )
            .merge(Serialized::defaults(env_lists))
            .merge(Serialized::defaults(overrides));
        let mut settings: Settings = fig
            .extract()
            .map_err(|e| ConfigError(format!("invalid configuration: {e}")))?;
        settings.source_file = match file {
            Some(path) => Some(path.to_path_buf()),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => Some(DEFAULT_CONFIG_FILE.into()),
            None => None,
        };
        Ok(settings)
    }

    /// Checks the settings and derives what the server needs.
    pub fn resolve(&self, bound: SocketAddr) -> Result<Resolved, ConfigError> {
        let tls = self.tls_files()?.is_some();
        let public_url = match &self.public_url {
            Some(u) => u.clone(),
            None if bound.ip().is_loopback() => {
                let scheme = if tls { "https" } else { "http" };
                format!("{scheme}://localhost:{}", bound.port())
            }
            None => {
                return Err(ConfigError(format!(
                    "listening on {} (not a loopback address) requires public_url, e.g. public_url = \"https://mcp.example.com\"",
                    self.listen
                )));
            }
        };
        if !bound.ip().is_loopback() && !public_url.starts_with("https://") {
            return Err(ConfigError(format!(
                "public_url {public_url:?} must be https when listening on {} (a non-loopback address): OAuth clients refuse plain http outside localhost",
                self.listen
            )));
        }
        let style = match self.endpoint_style {
            EndpointStyleSetting::V1 => EndpointStyle::V1,
            EndpointStyleSetting::Root => EndpointStyle::Root,
        };
        let urls = Urls::derive(&public_url, style).map_err(|e| ConfigError(e.0))?;
        urls.check_consistency()
            .map_err(|p| ConfigError(format!("advertised URLs disagree: {}", p.join("; "))))?;

        if self.scopes.is_empty() {
            return Err(ConfigError("scopes must list at least one scope".into()));
        }
        for s in &self.scopes {
            Scope::parse(s).map_err(|e| ConfigError(format!("scopes: {e}")))?;
        }
        let (offered, scope_descriptions) = scopes::offered(&self.scopes, &self.scope)?;
        let default_scope = Scope::parse(&self.default_scope)
            .map_err(|e| ConfigError(format!("default_scope: {e}")))?;
        if !default_scope.not_in(&offered).is_empty() {
            return Err(ConfigError(format!(
                "default_scope {:?} must be one of scopes {:?}",
                self.default_scope, offered
            )));
        }
        bounds::check_settings(self)?;
        if self.registration_rate_limit == 0 || self.login_rate_limit == 0 {
            return Err(ConfigError(
                "registration_rate_limit and login_rate_limit must be at least 1 per minute".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        crate::gateway::config::validate(&self.upstream).map_err(ConfigError)?;
        crate::gateway::env::validate(
            &self.upstream,
            &crate::gateway::env::Protected::new(&self.upstream, &self.identity_provider),
        )
        .map_err(ConfigError)?;
        crate::federation::config::validate(&self.identity_provider, self.password_login)
            .map_err(ConfigError)?;
        // The rules' syntax; their groups are checked against the store
        // when the server starts (`Settings::compile_policy`).
        self.compile_policy(None)?;
        let outbound = crate::outbound::OutboundSettings::load(
            &self.outbound_allow_networks,
            self.outbound_ca_file.as_deref(),
        )
        .map_err(ConfigError)?;
        let documents = mcpgate_core::oauth::cimd::DocumentPolicy::new(
            self.client_id_metadata_documents,
            &self.trusted_client_hosts,
        )
        .map_err(|e| ConfigError(format!("trusted_client_hosts: {e}")))?;
        crate::audit::JsonlTarget::parse(&self.audit_jsonl).map_err(ConfigError)?;
        let metrics_token = crate::telemetry::scrape::read_token(self.metrics_token_env.as_deref())
            .map_err(ConfigError)?;
        let resource = ResourceUri::parse(&urls.resource).map_err(|e| ConfigError(e.0))?;
        let sse_resource = ResourceUri::parse(&urls.sse_resource).map_err(|e| ConfigError(e.0))?;
        let policy = Policy {
            issuer: urls.issuer.clone(),
            resource,
            other_resources: vec![sse_resource],
            scopes_supported: offered,
            scope_descriptions,
            default_scope,
            require_resource: self.require_resource,
            pkce_exempt_redirect_hosts: self
                .pkce_exempt_redirect_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            auth_code_ttl: secs(self.auth_code_ttl),
            access_token_ttl: secs(self.access_token_ttl),
            refresh_token_ttl: secs(self.refresh_token_ttl),
            issue_refresh_tokens: self.issue_refresh_tokens,
            refresh_grace: secs(self.refresh_grace_period),
            public_clients: self.public_clients,
        };
        let scope_requirements = scopes::requirements(
            policy.required_scope(),
            &policy.scopes_supported,
            &self.upstream,
        )?;
        Ok(Resolved {
            urls,
            policy,
            scope_requirements,
            trusted_proxies,
            outbound,
            documents,
            metrics_token,
        })
    }
}

impl Settings {
    /// `tls_cert_file` and `tls_key_file`: both, or neither.
    pub fn tls_files(&self) -> Result<Option<crate::http::tls::TlsFiles>, ConfigError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Ok(Some(crate::http::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError(
                "tls_cert_file is set but tls_key_file is not: native TLS needs both".into(),
            )),
            (None, Some(_)) => Err(ConfigError(
                "tls_key_file is set but tls_cert_file is not: native TLS needs both".into(),
            )),
        }
    }
}

/// A duration in whole seconds, as the rules and the store count time.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Settings that hold lists; in the environment they are comma-separated
/// (`MCPGATE_SCOPES=mcp,admin`) or TOML arrays.
const LIST_KEYS: [&str; 7] = [
    "scopes",
    "pkce_exempt_redirect_hosts",
    "allowed_hosts",
    "allowed_origins",
    "trusted_proxies",
    "outbound_allow_networks",
    "trusted_client_hosts",
];

/// Every setting name (the keys of `mcpgate.toml`), split into scalar and
/// list settings.
fn setting_keys() -> (Vec<String>, Vec<&'static str>) {
    let mut scalars = vec![
        "public_url".to_string(),
        "instance_id".to_string(),
        "outbound_ca_file".to_string(),
        "metrics_listen".to_string(),
        "metrics_token_env".to_string(),
        "tls_cert_file".to_string(),
        "tls_key_file".to_string(),
    ];
    if let Ok(serde_json::Value::Object(obj)) = serde_json::to_value(Settings::default()) {
        scalars.extend(
            obj.keys()
                .filter(|k| !LIST_KEYS.contains(&k.as_str()))
                .cloned(),
        );
    }
    (scalars, LIST_KEYS.to_vec())
}

/// `a, b,c` or `["a", "b"]` (TOML) into a list.
fn split_list(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('[')
        && let Ok(v) = toml::from_str::<toml::Table>(&format!("v = {trimmed}"))
        && let Some(toml::Value::Array(items)) = v.get("v")
    {
        return items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect();
    }
    trimmed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Settings {
    /// Whether an identity provider maps a claim to groups (then group
    /// names no user has yet are accepted in `[[policy]]`).
    pub fn provider_groups(&self) -> bool {
        self.identity_provider
            .iter()
            .any(|p| p.groups_claim.is_some())
    }

    /// Compiles `[[policy]]` and `default_policy`. `local_groups`: the
    /// groups in the store, against which group names are checked unless
    /// an identity provider maps groups (`None`: not checked).
    pub fn compile_policy(
        &self,
        local_groups: Option<&std::collections::HashSet<String>>,
    ) -> Result<mcpgate_core::policy::Policy, ConfigError> {
        let groups = local_groups.filter(|_| !self.provider_groups());
        // Rules may name any scope on offer: `scopes` and `[[scope]]`.
        let (offered, _) = scopes::offered(&self.scopes, &self.scope)?;
        mcpgate_core::policy::Policy::compile(
            &self.policy,
            self.default_policy,
            &mcpgate_core::policy::Known {
                scopes: &offered,
                groups,
            },
        )
        .map_err(|e| {
            let at = self
                .source_file
                .as_deref()
                .and_then(|path| {
                    let text = std::fs::read_to_string(path).ok()?;
                    let line = policy_table_line(&text, e.rule)?;
                    Some(format!(" (line {line} of {})", path.display()))
                })
                .unwrap_or_default();
            ConfigError(format!("{e}{at}"))
        })
    }
}

/// The 1-based line of the `rule`-th (1-based) `[[policy]]` table header in
/// a TOML file (figment keeps no positions, so the file is read again).
fn policy_table_line(text: &str, rule: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.strip_prefix("[[")
                .and_then(|r| r.split_once("]]"))
                .is_some_and(|(name, rest)| {
                    name.trim() == "policy" && {
                        let rest = rest.trim_start();
                        rest.is_empty() || rest.starts_with('#')
                    }
                })
        })
        .nth(rule.checked_sub(1)?)
        .map(|(i, _)| i + 1)
}

/// What [`Settings::resolve`] derives.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub urls: Urls,
    pub policy: Policy,
    /// What each MCP call needs (the base scope, upstreams' `scopes`).
    pub scope_requirements: mcpgate_core::mcp::scopes::ScopeRequirements,
    pub trusted_proxies: TrustedProxies,
    /// `outbound_allow_networks` and `outbound_ca_file`, loaded.
    pub outbound: crate::outbound::OutboundSettings,
    /// `client_id_metadata_documents` and `trusted_client_hosts`.
    pub documents: mcpgate_core::oauth::cimd::DocumentPolicy,
    /// The token of `/metrics` on the main listener (`metrics_token_env`).
    pub metrics_token: Option<mcpgate_core::secret::Secret<String>>,
}

/// The commented configuration file written by `mcpgate init`.
pub fn example_file() -> String {
    include_str!("../mcpgate.example.toml").to_string()
}

/// Where `mcpgate init` writes by default.
pub fn default_config_path() -> PathBuf {
    PathBuf::from(DEFAULT_CONFIG_FILE)
}

#[cfg(test)]
mod tests;
