//! The HTTP client mcpgate uses to talk to identity providers: reqwest
//! (the project's one HTTP client) behind the `oauth2` crate's
//! `AsyncHttpClient` interface, so that `openidconnect`/`oauth2` need no
//! HTTP client of their own. The client is built by [`crate::outbound`]:
//! redirects are not followed (RFC 9700 §4.11: an endpoint that redirects
//! is not the endpoint that was configured; above all, a redirect to
//! another origin would carry the client secret or a code there), a
//! redirect answer is an error, and every request has a timeout.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::outbound::{self, Outbound, ReadError, Redirects};

/// Largest provider response read (metadata, JWKS, token, user-info).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// Builds the client: no redirects, a connect and a total timeout, the
/// operator's extra roots. Identity providers are configured by the
/// operator, so the SSRF rule does not apply (an in-house provider on a
/// private address is normal).
pub fn build(
    timeout: Duration,
    outbound: &crate::outbound::OutboundSettings,
) -> Result<reqwest::Client, String> {
    Outbound::request_response(Redirects::Never, timeout)
        .settings(outbound)
        .build()
        .map_err(|e| format!("identity providers: {e}"))
}

/// The client as the `oauth2`/`openidconnect` crates call it. (A named
/// type with a boxed `Send` future: a closure's future would not be
/// provably `Send` for every lifetime, which axum handlers need.)
pub struct Http<'a>(pub &'a reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Http<'_> {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.0, request))
    }
}

/// Sends one `oauth2` request with `client`.
pub async fn send(
    client: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request)
        .map_err(|e| HttpError(format!("invalid request: {e}")))?;
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| HttpError(describe(&e)))?;
    if let Some(refused) = outbound::refused_redirect(&response) {
        return Err(HttpError(refused));
    }
    let mut builder = http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        *headers = std::mem::take(response.headers_mut());
    }
    let body = outbound::read_capped(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::Http(e) => HttpError(describe(&e)),
            ReadError::TooLarge(_) => HttpError("the response is larger than 1 MiB".into()),
        })?;
    builder
        .body(body)
        .map_err(|e| HttpError(format!("invalid response: {e}")))
}

/// A reqwest error without the URL's query (which may carry a code).
pub fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "could not read the response"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => format!("{what}: {}{}", u.origin().ascii_serialization(), u.path()),
        None => what.to_string(),
    }
}
