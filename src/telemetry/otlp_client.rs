//! The OTLP exporter's HTTP client: a `reqwest` client built by
//! `crate::outbound` (no redirects, timeouts, the operator's extra roots),
//! driven on the server's Tokio runtime.
//!
//! The SDK's batch span processor exports from its own thread, outside any
//! runtime; each request is therefore spawned onto the runtime captured at
//! start, and its `JoinHandle` awaited from there.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

use crate::outbound::{Outbound, OutboundSettings, Redirects};

/// The largest collector answer read (it is only checked for its status).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct OutboundHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl OutboundHttpClient {
    pub fn new(timeout: Duration, settings: &OutboundSettings) -> Result<Self, String> {
        let client = Outbound::request_response(Redirects::Never, timeout)
            .settings(settings)
            .build()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the OTLP exporter needs a Tokio runtime".to_string())?;
        Ok(Self { client, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for OutboundHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let response = client
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = crate::outbound::read_capped(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let mut out = Response::builder().status(status).body(Bytes::from(body))?;
            *out.headers_mut() = headers;
            Ok::<_, HttpError>(out)
        });
        task.await?
    }
}
