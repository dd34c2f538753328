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
//! Issue #16 adds rules on the addresses a client may reach (SSRF: checked
//! after DNS resolution, with a resolver set in [`Outbound::build`]); they
//! belong here, so that every outbound client gets them.

use std::time::Duration;

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

/// How one outbound client is built.
#[derive(Debug, Clone)]
pub struct Outbound {
    redirects: Redirects,
    connect_timeout: Duration,
    total_timeout: Option<Duration>,
    user_agent: &'static str,
    pooled: bool,
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
        }
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
        b.build()
            .map_err(|e| format!("cannot build an outbound HTTP client: {e}"))
    }
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
    }
}
