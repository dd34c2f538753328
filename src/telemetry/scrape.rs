//! Serving the metrics, and the HTTP middleware that counts requests.
//!
//! `/metrics` is never public by accident:
//! - with `metrics_listen` set, a second listener serves only `/metrics`
//!   (meant for a private network or loopback);
//! - with `metrics_token_env` set, the main listener serves `/metrics` too,
//!   to a bearer token equal to that variable's value (compared in constant
//!   time); `401` without it. Without the setting the main listener answers
//!   `404` there, as for any unknown path.
//!
//! With both set, both serve and both require the token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcpgate_core::crypto::constant_time_eq;
use mcpgate_core::secret::Secret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::labels::HttpMethod;
use super::metrics;

/// The OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Who may read `/metrics`: anyone who reaches the listener (`None`), or
/// holders of the token.
#[derive(Clone)]
pub struct ScrapeAccess {
    token: Option<Arc<Secret<String>>>,
}

impl ScrapeAccess {
    pub fn open() -> Self {
        Self { token: None }
    }

    pub fn token(token: Secret<String>) -> Self {
        Self {
            token: Some(Arc::new(token)),
        }
    }

    fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let presented = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .unwrap_or("");
        constant_time_eq(presented.as_bytes(), expected.expose().as_bytes())
    }
}

/// Reads the token named by `metrics_token_env`: the variable must be set,
/// with at least 16 characters.
pub fn read_token(var: Option<&str>) -> Result<Option<Secret<String>>, String> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(v) if v.trim().len() >= 16 => Ok(Some(Secret::new(v.trim().to_string()))),
        Ok(_) => Err(format!(
            "metrics_token_env: the environment variable {var} must hold at least 16 characters"
        )),
        Err(_) => Err(format!(
            "metrics_token_env: the environment variable {var} is not set"
        )),
    }
}

/// `GET /metrics`.
pub async fn serve_metrics(
    State(access): State<ScrapeAccess>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !access.allows(headers.get(header::AUTHORIZATION)) {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "a bearer token is required (metrics_token_env)\n",
        )
            .into_response();
    }
    let Some(m) = metrics::get() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        m.encode(),
    )
        .into_response()
}

/// The router of the `/metrics` route alone.
pub fn router(access: ScrapeAccess) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(access)
}

/// Binds `metrics_listen` (before the server starts, so a taken port is an
/// error at start).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))
}

/// Serves `/metrics` on its own listener until `cancel`.
pub fn spawn_listener(listener: TcpListener, access: ScrapeAccess, cancel: CancellationToken) {
    tokio::spawn(async move {
        let app = router(access);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
}

/// The middleware of the main router: counts each request by its route
/// template (axum's `MatchedPath`, never the path itself; `unmatched` for
/// the fallback), method and status, and times it until its response head.
pub async fn track_http(req: Request, next: Next) -> Response {
    let Some(m) = metrics::get() else {
        return next.run(req).await;
    };
    let started = Instant::now();
    let method = HttpMethod::of(req.method());
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => m.routes.intern(p.as_str()),
        None => m.routes.intern("unmatched"),
    };
    let resp = next.run(req).await;
    m.http_request(route, method, resp.status().as_u16(), started);
    resp
}
