//! `mcpgate doctor <public-url>`: checks a running deployment the way MCP
//! clients (Claude, ChatGPT, MCP Inspector, the MCP SDKs) do, and says what
//! a failing client would report and how to fix it.
//!
//! It works against any MCP server with OAuth, not only mcpgate: checks of
//! things only some clients need are warnings.
//!
//! - [`discovery`]: the 401 challenge, protected resource metadata (RFC
//!   9728), authorization server metadata (RFC 8414).
//! - [`openid`]: the OpenID configuration (absent, or complete).
//! - [`flow`]: CORS, client registration (RFC 7591), the authorization
//!   endpoint, the manifest.
//! - [`consistency`]: every advertised URL agrees; https.
//! - [`findings`]: how a check's findings become a [`CheckResult`].
//! - [`http`]: the HTTP client and small parsers.
//!
//! [`check`] returns the results (used by the tests); [`run`] prints them.

mod consistency;
mod discovery;
mod findings;
mod flow;
mod http;
mod openid;

use std::time::Duration;

use anyhow::bail;
use serde_json::{Map, Value};
use url::Url;

use findings::Findings;

/// Where the MCP endpoint is below the public URL (mcpgate's path).
pub const DEFAULT_MCP_PATH: &str = "/v1/ai/mcp";
/// The origin of MCP Inspector, the browser client the CORS check imitates.
pub const INSPECTOR_ORIGIN: &str = "http://localhost:6274";

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    Challenge,
    ProtectedResource,
    AuthorizationServer,
    OpenIdConfiguration,
    Cors,
    Registration,
    Authorize,
    Manifest,
    Consistency,
    Transport,
}

impl Check {
    pub const ALL: [Check; 10] = [
        Check::Challenge,
        Check::ProtectedResource,
        Check::AuthorizationServer,
        Check::OpenIdConfiguration,
        Check::Cors,
        Check::Registration,
        Check::Authorize,
        Check::Manifest,
        Check::Consistency,
        Check::Transport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Challenge => "MCP endpoint challenge",
            Check::ProtectedResource => "Protected resource metadata",
            Check::AuthorizationServer => "Authorization server metadata",
            Check::OpenIdConfiguration => "OpenID configuration",
            Check::Cors => "CORS",
            Check::Registration => "Client registration",
            Check::Authorize => "Authorization endpoint",
            Check::Manifest => "MCP manifest",
            Check::Consistency => "URL consistency",
            Check::Transport => "Transport",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Not run: an earlier check found nothing to test, or it was turned off.
    Skip,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub check: Check,
    pub name: &'static str,
    pub status: Status,
    /// What was found (on failure: every problem, `; `-separated).
    pub detail: String,
    /// What a client that hits the problem reports (warnings and failures).
    pub clients: Option<String>,
    /// How to fix it (warnings and failures).
    pub hint: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the MCP endpoint below the public URL.
    pub mcp_path: String,
    /// Register two test clients (the registration and authorize checks).
    pub register: bool,
    /// The `Origin` the CORS check sends.
    pub origin: String,
    /// Per request.
    pub timeout: Duration,
    /// Extra trusted roots (`outbound_ca_file` of the local configuration).
    pub outbound: crate::outbound::OutboundSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mcp_path: DEFAULT_MCP_PATH.into(),
            register: true,
            origin: INSPECTOR_ORIGIN.into(),
            timeout: Duration::from_secs(10),
            outbound: Default::default(),
        }
    }
}

/// The URLs the checks start from, derived from the argument.
#[derive(Debug, Clone)]
pub struct Target {
    /// The public URL: origin plus path, no trailing slash.
    pub base: String,
    pub base_url: Url,
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The MCP endpoint (the RFC 9728 resource identifier).
    pub mcp_url: String,
    /// RFC 9728 §3.1: the well-known part between host and path.
    pub prm_suffixed: String,
    pub prm_root: String,
}

impl Target {
    /// Accepts the public URL or the full MCP URL (ending in `mcp_path`).
    pub fn new(arg: &str, mcp_path: &str) -> Result<Self, String> {
        let mcp_path = format!("/{}", mcp_path.trim().trim_matches('/'));
        let mcp_path = if mcp_path == "/" {
            String::new()
        } else {
            mcp_path
        };
        let mut base = arg.trim().trim_end_matches('/');
        if !mcp_path.is_empty()
            && let Some(b) = base.strip_suffix(mcp_path.as_str())
        {
            base = b.trim_end_matches('/');
        }
        let url = Url::parse(base).map_err(|e| format!("{arg:?} is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!("{arg:?} must be an http(s) URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{arg:?} must not have a query or fragment"));
        }
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        let base = format!("{origin}{path}");
        let mcp_url = format!("{base}{mcp_path}");
        let mcp = Url::parse(&mcp_url).map_err(|e| format!("bad MCP URL {mcp_url:?} ({e})"))?;
        Ok(Self {
            prm_suffixed: http::well_known(&mcp, "oauth-protected-resource"),
            prm_root: format!("{origin}/.well-known/oauth-protected-resource"),
            base_url: Url::parse(&base).map_err(|e| e.to_string())?,
            base,
            origin,
            mcp_url,
        })
    }
}

/// One authorization server's metadata as fetched.
#[derive(Debug, Clone)]
struct AsDoc {
    /// The `authorization_servers` entry it was fetched for.
    server: String,
    url: String,
    doc: Map<String, Value>,
}

/// What the checks learn and pass on to later ones.
struct Ctx {
    t: Target,
    http: http::Http,
    opts: Options,
    /// The first request got no HTTP answer at all.
    unreachable: bool,
    challenge_url: Option<String>,
    challenge_scope: Option<String>,
    /// (document URL, its `resource`).
    resources: Vec<(String, String)>,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    as_docs: Vec<AsDoc>,
    public_client: Option<String>,
}

impl Ctx {
    /// A string field of the first authorization server's metadata.
    fn as_field(&self, key: &str) -> Option<String> {
        self.as_docs
            .iter()
            .find_map(|d| d.doc.get(key).and_then(Value::as_str).map(str::to_string))
    }
}

/// Runs every check against the deployment at `base` (the public URL, or
/// the MCP URL).
pub async fn check(base: &str, options: &Options) -> Vec<CheckResult> {
    let t = match Target::new(base, &options.mcp_path) {
        Ok(t) => t,
        Err(e) => {
            let mut f = Findings::new(Check::Transport);
            f.fail(e)
                .fix("pass the public URL, e.g. https://mcp.example.com");
            return vec![f.finish()];
        }
    };
    let http = match http::Http::new(options.timeout, &options.outbound) {
        Ok(h) => h,
        Err(e) => {
            let mut f = Findings::new(Check::Transport);
            f.fail(e);
            return vec![f.finish()];
        }
    };
    let mut ctx = Ctx {
        t,
        http,
        opts: options.clone(),
        unreachable: false,
        challenge_url: None,
        challenge_scope: None,
        resources: Vec::new(),
        authorization_servers: Vec::new(),
        scopes_supported: Vec::new(),
        as_docs: Vec::new(),
        public_client: None,
    };
    let mut out = Vec::new();
    for c in Check::ALL {
        if ctx.unreachable && c != Check::Transport {
            out.push(Findings::new(c).skip("the server is not reachable"));
            continue;
        }
        out.push(match c {
            Check::Challenge => discovery::challenge(&mut ctx).await,
            Check::ProtectedResource => discovery::protected_resource(&mut ctx).await,
            Check::AuthorizationServer => discovery::authorization_server(&mut ctx).await,
            Check::OpenIdConfiguration => openid::openid_configuration(&ctx).await,
            Check::Cors => flow::cors(&ctx).await,
            Check::Registration => flow::registration(&mut ctx).await,
            Check::Authorize => flow::authorize(&ctx).await,
            Check::Manifest => flow::manifest(&ctx).await,
            Check::Consistency => consistency::consistency(&ctx),
            Check::Transport => consistency::transport(&ctx),
        });
    }
    out
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn summary(results: &[CheckResult]) -> Summary {
    let mut s = Summary::default();
    for r in results {
        match r.status {
            Status::Pass => s.passed += 1,
            Status::Warn => s.warnings += 1,
            Status::Fail => s.failed += 1,
            Status::Skip => s.skipped += 1,
        }
    }
    s
}

/// The report: one line per check, with what clients say and the fix
/// below warnings and failures, then the summary line.
pub fn render(results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results {
        out.push_str(&format!("{} {}: {}\n", r.status.symbol(), r.name, r.detail));
        if matches!(r.status, Status::Warn | Status::Fail) {
            if let Some(c) = &r.clients {
                out.push_str(&format!("    clients: {c}\n"));
            }
            if let Some(h) = &r.hint {
                out.push_str(&format!("    fix: {h}\n"));
            }
        }
    }
    let s = summary(results);
    out.push_str(&format!(
        "\n{} passed, {} warnings, {} failed",
        s.passed, s.warnings, s.failed
    ));
    if s.skipped > 0 {
        out.push_str(&format!(" ({} skipped)", s.skipped));
    }
    out.push('\n');
    out
}

/// `mcpgate doctor`: prints the report; an error (exit code 1) if any check failed.
pub async fn run(
    url: &str,
    mcp_path: &str,
    no_register: bool,
    outbound: crate::outbound::OutboundSettings,
) -> anyhow::Result<()> {
    let options = Options {
        mcp_path: mcp_path.to_string(),
        register: !no_register,
        outbound,
        ..Options::default()
    };
    match Target::new(url, mcp_path) {
        Ok(t) => println!("mcpgate doctor: {} (MCP endpoint {})\n", t.base, t.mcp_url),
        Err(e) => bail!("{e}"),
    }
    let results = check(url, &options).await;
    print!("{}", render(&results));
    let failed = summary(&results).failed;
    if failed > 0 {
        bail!(
            "{failed} check{} failed",
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_may_be_the_public_url_or_the_mcp_url() {
        for arg in [
            "https://mcp.example.com",
            "https://mcp.example.com/",
            "https://mcp.example.com/v1/ai/mcp",
            "https://MCP.example.com/v1/ai/mcp/",
        ] {
            let t = Target::new(arg, DEFAULT_MCP_PATH).unwrap();
            assert_eq!(t.base, "https://mcp.example.com", "{arg}");
            assert_eq!(t.mcp_url, "https://mcp.example.com/v1/ai/mcp");
            assert_eq!(
                t.prm_suffixed,
                "https://mcp.example.com/.well-known/oauth-protected-resource/v1/ai/mcp"
            );
            assert_eq!(
                t.prm_root,
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            );
        }
        let t = Target::new("https://example.com/gate/mcp", "mcp").unwrap();
        assert_eq!(t.base, "https://example.com/gate");
        assert_eq!(
            t.prm_suffixed,
            "https://example.com/.well-known/oauth-protected-resource/gate/mcp"
        );
        assert!(Target::new("ftp://x", DEFAULT_MCP_PATH).is_err());
        assert!(Target::new("mcp.example.com", DEFAULT_MCP_PATH).is_err());
    }
}
