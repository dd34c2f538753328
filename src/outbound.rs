//! Outbound HTTP: the one place that builds every `reqwest::Client`
//! mcpgate uses to talk to other servers (HTTP upstreams, identity
//! providers, `mcpgate doctor`, `mcpgate status`). Nothing else calls
//! `reqwest::Client::new()` or `Client::builder()`: a policy added here
//! applies to every outbound request at once.
//!
//! The policy:
//! - **Redirects never leave the origin.** An origin is scheme, host and
//!   port (RFC 6454 §4). A redirect to another origin is not followed: the
//!   caller gets the `3xx` response itself and treats it as an error (see
//!   [`refused_redirect`]). Otherwise a redirect would carry the static
//!   `headers`, the identity headers and the signed identity token of an
//!   upstream, or a client's credentials, to a host nobody configured
//!   (RFC 9700 §4.11 for OAuth endpoints; MCP upstreams alike). Same-origin
//!   redirects are followed only where the caller asks ([`Redirects`]), at
//!   most [`MAX_REDIRECTS`] hops.
//! - **Timeouts.** Every client has a connect timeout; request/response
//!   clients also have a total timeout. Streaming clients (an upstream's
//!   event stream lives as long as the upstream) have none: the gateway
//!   bounds each request with the upstream's `request_timeout`.
//! - **Response size.** Callers that read whole bodies read them with
//!   [`read_capped`].
//!
//! - **Extra trusted roots.** `outbound_ca_file` (PEM) adds certificates to
//!   the trusted roots of every client built here ([`OutboundSettings`]):
//!   client metadata documents and keys, identity providers, HTTP upstreams,
//!   `mcpgate doctor`.
//! - **The SSRF rule, for client-controlled destinations only.** A URL a
//!   client chose (its Client ID Metadata Document, its `jwks_uri`) is
//!   fetched with a client from [`Outbound::client_controlled`]: its DNS
//!   resolver drops every resolved address that is not public
//!   ([`mcpgate_core::outbound_address`]: loopback, private, link-local,
//!   CGNAT, multicast, unspecified, broadcast, documentation and reserved
//!   ranges, IPv4 and IPv6 including the forms carrying an IPv4 address)
//!   unless it is in `outbound_allow_networks`, so the connection goes to an
//!   address that was checked after resolution (no second lookup that a
//!   rebinding DNS server could answer differently). reqwest does not call
//!   the resolver for a host that is an IP literal, so [`GuardedClient`]
//!   checks literal hosts before sending. Such clients ignore proxy
//!   environment variables (the check must see the real destination), send
//!   no cookies and follow no redirects.
//!
//!   Operator-configured destinations (identity providers, HTTP upstreams,
//!   the doctor's target) are **not** under the SSRF rule: the operator
//!   chose them, and they are often on loopback or a private network (a
//!   local upstream, an in-house identity provider). They do get the extra
//!   roots.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::outbound_address::AddressPolicy;
use reqwest::redirect::{Attempt, Policy};

/// Most same-origin redirects followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// Connect timeout of clients that have no shorter total timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const USER_AGENT: &str = concat!("mcpgate/", env!("CARGO_PKG_VERSION"));

/// Which redirects a client follows. None of them leaves the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// No redirect is followed (OAuth endpoints: RFC 9700 §4.11).
    Never,
    /// Same-origin `307` and `308` only: they keep the method and body, so
    /// a POSTed message arrives intact (a `301`/`302`/`303` would turn it
    /// into a bodyless GET).
    SameOrigin,
    /// Same-origin redirects of any kind, for GET-only document fetches.
    SameOriginDocuments,
}

/// The operator's outbound settings, shared by every client built here:
/// `outbound_allow_networks` (exempt from the SSRF rule) and
/// `outbound_ca_file` (extra trusted roots). Cheap to clone.
#[derive(Clone, Default)]
pub struct OutboundSettings {
    pub addresses: AddressPolicy,
    extra_roots: Arc<Vec<reqwest::Certificate>>,
}

impl std::fmt::Debug for OutboundSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSettings")
            .field("addresses", &self.addresses)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl OutboundSettings {
    /// From the settings' values: CIDRs and an optional PEM file. The
    /// errors name the setting.
    pub fn load(allow_networks: &[String], ca_file: Option<&Path>) -> Result<Self, String> {
        let addresses = AddressPolicy::parse(allow_networks)
            .map_err(|e| format!("outbound_allow_networks: {e}"))?;
        let extra_roots = match ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    format!("outbound_ca_file: cannot read {}: {e}", path.display())
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    format!(
                        "outbound_ca_file: {} is not a PEM bundle of certificates: {e}",
                        path.display()
                    )
                })?;
                if certs.is_empty() {
                    return Err(format!(
                        "outbound_ca_file: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        path.display()
                    ));
                }
                certs
            }
        };
        Ok(Self {
            addresses,
            extra_roots: Arc::new(extra_roots),
        })
    }
}

/// How one outbound client is built.
#[derive(Debug, Clone)]
pub struct Outbound {
    redirects: Redirects,
    connect_timeout: Duration,
    total_timeout: Option<Duration>,
    user_agent: &'static str,
    pooled: bool,
    settings: OutboundSettings,
    /// The SSRF rule applies (a client-controlled destination).
    guarded: bool,
}

impl Outbound {
    /// A request/response client: the whole exchange within `timeout`.
    pub fn request_response(redirects: Redirects, timeout: Duration) -> Self {
        Self {
            redirects,
            connect_timeout: timeout.min(CONNECT_TIMEOUT),
            total_timeout: Some(timeout),
            user_agent: USER_AGENT,
            pooled: true,
            settings: OutboundSettings::default(),
            guarded: false,
        }
    }

    /// A client for a URL a client chose (its metadata document, its
    /// `jwks_uri`): the SSRF rule applies, no redirect is followed, no
    /// proxy is used, the whole exchange within `timeout`. Build it with
    /// [`Outbound::build_guarded`], whose [`GuardedClient`] also checks
    /// literal IP hosts. Give it the server's [`OutboundSettings`] with
    /// [`Outbound::settings`], or the allow-list and extra roots are empty.
    pub fn client_controlled(timeout: Duration) -> Self {
        Self {
            guarded: true,
            ..Self::request_response(Redirects::Never, timeout)
        }
    }

    /// A client of MCP upstreams (Streamable HTTP and the legacy SSE
    /// transport): long-lived streams, so no total timeout; same-origin
    /// `307`/`308` followed. Idle connections are not pooled (rmcp's own
    /// choice: reusing a connection whose previous body was not read to
    /// the end stalls on delayed ACKs).
    pub fn upstream() -> Self {
        Self {
            redirects: Redirects::SameOrigin,
            connect_timeout: CONNECT_TIMEOUT,
            total_timeout: None,
            user_agent: USER_AGENT,
            pooled: false,
            settings: OutboundSettings::default(),
            guarded: false,
        }
    }

    /// The operator's outbound settings (extra roots; the allow-list of a
    /// client-controlled client).
    pub fn settings(mut self, settings: &OutboundSettings) -> Self {
        self.settings = settings.clone();
        self
    }

    pub fn user_agent(mut self, user_agent: &'static str) -> Self {
        self.user_agent = user_agent;
        self
    }

    pub fn build(&self) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .redirect(policy(self.redirects))
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent);
        if let Some(t) = self.total_timeout {
            b = b.timeout(t);
        }
        if !self.pooled {
            b = b.pool_max_idle_per_host(0);
        }
        if !self.settings.extra_roots.is_empty() {
            b = b.tls_certs_merge(self.settings.extra_roots.iter().cloned());
        }
        if self.guarded {
            b = b.no_proxy().dns_resolver(Arc::new(CheckedResolver {
                policy: self.settings.addresses.clone(),
            }));
        }
        b.build()
            .map_err(|e| format!("cannot build an outbound HTTP client: {e}"))
    }

    /// [`Outbound::build`] for a client-controlled destination: the client
    /// behind a check of literal IP hosts.
    pub fn build_guarded(&self) -> Result<GuardedClient, String> {
        let guarded = Self {
            guarded: true,
            ..self.clone()
        };
        Ok(GuardedClient {
            inner: guarded.build()?,
            policy: self.settings.addresses.clone(),
        })
    }
}

/// A client for client-controlled URLs (see [`Outbound::client_controlled`]).
#[derive(Clone, Debug)]
pub struct GuardedClient {
    inner: reqwest::Client,
    policy: AddressPolicy,
}

impl GuardedClient {
    /// A GET of `url`, or why the URL may not be fetched: a literal IP host
    /// that is not public (names are checked by the resolver, after
    /// resolution).
    pub fn get(&self, url: &url::Url) -> Result<reqwest::RequestBuilder, String> {
        check_literal_host(url, &self.policy)?;
        Ok(self.inner.get(url.clone()))
    }
}

/// The pre-flight check of a URL whose host is an IP address.
pub fn check_literal_host(url: &url::Url, policy: &AddressPolicy) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("the URL has no host".into()),
    };
    policy.check(ip).map_err(|why| {
        format!("{ip} is {why}, which mcpgate does not fetch from (outbound_allow_networks lists the exceptions)")
    })
}

/// A resolver that drops the addresses the SSRF rule refuses.
struct CheckedResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused.get_or_insert((a.ip(), why));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let msg = match refused {
                    Some((ip, why)) => format!(
                        "{host} resolves to {ip}, {why}, which mcpgate does not fetch from (outbound_allow_networks lists the exceptions)"
                    ),
                    None => format!("{host} resolves to no address"),
                };
                tracing::warn!(event = "outbound.address_refused", host = ?host, "{msg}");
                return Err(msg.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// A reqwest error with its causes, for messages (the SSRF refusal is a
/// cause of the connect error).
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn policy(redirects: Redirects) -> Policy {
    match redirects {
        Redirects::Never => Policy::none(),
        Redirects::SameOrigin => Policy::custom(|a| follow_same_origin(a, true)),
        Redirects::SameOriginDocuments => Policy::custom(|a| follow_same_origin(a, false)),
    }
}

fn follow_same_origin(attempt: Attempt<'_>, body_keeping_only: bool) -> reqwest::redirect::Action {
    let same_origin = attempt
        .previous()
        .first()
        .is_some_and(|first| first.origin() == attempt.url().origin());
    let keeps_body = matches!(
        attempt.status(),
        reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
    );
    if !same_origin || (body_keeping_only && !keeps_body) {
        attempt.stop()
    } else if attempt.previous().len() > MAX_REDIRECTS {
        attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
    } else {
        attempt.follow()
    }
}

/// For a response that is a redirect (one the client did not follow), a
/// sentence saying so, naming only the target's origin (its path and query
/// may carry anything). `None` for any other response.
pub fn refused_redirect(response: &reqwest::Response) -> Option<String> {
    refused_redirect_parts(response.status(), response.url(), response.headers())
}

/// [`refused_redirect`] from a response's parts.
pub fn refused_redirect_parts(
    status: reqwest::StatusCode,
    url: &url::Url,
    headers: &reqwest::header::HeaderMap,
) -> Option<String> {
    if !status.is_redirection() {
        return None;
    }
    let target = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok());
    Some(match target {
        Some(t) if t.origin() != url.origin() => format!(
            "{} answered {status} with a redirect to another origin ({:?}), which mcpgate does not follow",
            url.origin().ascii_serialization(),
            t.origin().ascii_serialization(),
        ),
        _ => format!(
            "{} answered {status} with a redirect, which mcpgate does not follow here",
            url.origin().ascii_serialization(),
        ),
    })
}

/// Reads a whole body, failing once it grows past `max` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why [`read_capped`] failed.
#[derive(Debug)]
pub enum ReadError {
    Http(reqwest::Error),
    /// The body is larger than this many bytes.
    TooLarge(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_redirect_names_only_the_origins() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LOCATION,
            "http://evil.example:81/steal?code=secret".parse().unwrap(),
        );
        let url = url::Url::parse("https://up.example/mcp").unwrap();
        let msg =
            refused_redirect_parts(reqwest::StatusCode::TEMPORARY_REDIRECT, &url, &h).unwrap();
        assert!(msg.contains("another origin"), "{msg}");
        assert!(msg.contains("http://evil.example:81"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        assert!(refused_redirect_parts(reqwest::StatusCode::OK, &url, &h).is_none());
    }

    #[test]
    fn every_kind_of_client_builds() {
        for r in [
            Redirects::Never,
            Redirects::SameOrigin,
            Redirects::SameOriginDocuments,
        ] {
            assert!(
                Outbound::request_response(r, Duration::from_secs(5))
                    .build()
                    .is_ok()
            );
        }
        assert!(Outbound::upstream().build().is_ok());
        assert!(
            Outbound::client_controlled(Duration::from_secs(5))
                .build_guarded()
                .is_ok()
        );
    }

    #[test]
    fn literal_hosts_are_checked_before_sending() {
        let none = AddressPolicy::default();
        for bad in [
            "https://127.0.0.1/doc",
            "https://[::1]/doc",
            "https://[::ffff:127.0.0.1]/doc",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/x",
        ] {
            let url = url::Url::parse(bad).unwrap();
            assert!(check_literal_host(&url, &none).is_err(), "{bad}");
        }
        let ok = url::Url::parse("https://8.8.8.8/x").unwrap();
        assert!(check_literal_host(&ok, &none).is_ok());
        let named = url::Url::parse("https://localhost/x").unwrap();
        assert!(
            check_literal_host(&named, &none).is_ok(),
            "names go to the resolver"
        );
        let allow = AddressPolicy::parse(&["127.0.0.1/32"]).unwrap();
        let url = url::Url::parse("https://127.0.0.1:8443/doc").unwrap();
        assert!(check_literal_host(&url, &allow).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_loopback_addresses() {
        let client = Outbound::client_controlled(Duration::from_secs(5))
            .build_guarded()
            .unwrap();
        let url = url::Url::parse("http://localhost:9/doc").unwrap();
        let err = client.get(&url).unwrap().send().await.unwrap_err();
        let msg = error_chain(&err);
        assert!(msg.contains("loopback"), "{msg}");
    }

    #[test]
    fn a_missing_or_bad_ca_file_is_named() {
        let e = OutboundSettings::load(&[], Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(
            e.contains("outbound_ca_file") && e.contains("cannot read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let e = OutboundSettings::load(&[], Some(&p)).unwrap_err();
        assert!(e.contains("outbound_ca_file"), "{e}");
        let e = OutboundSettings::load(&["nope".into()], None).unwrap_err();
        assert!(e.contains("outbound_allow_networks"), "{e}");
    }
}
