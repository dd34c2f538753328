//! The HTTP surface: routes, shared state, and thin handlers that call the
//! service layer (`crate::auth`).
//!
//! - [`discovery`]: RFC 8414 / RFC 9728 documents (public, CORS).
//! - [`register`]: RFC 7591 registration (CORS).
//! - [`authorize`]: the browser flow (no CORS, RFC 9700 §2.6).
//! - [`federation`]: `GET /oauth/callback`, where identity providers send
//!   the browser back, and the start of a provider sign-in.
//! - [`account`]: `/account`, the signed-in user's applications (revoke)
//!   and sign-out.
//! - [`admin`]: the admin console (`/admin`), for users with the admin role.
//! - [`logout`]: sign-out of the browser session (a CSRF-protected form).
//! - [`token`]: token and revocation endpoints (CORS).
//! - [`reload`]: `POST /admin/reload` for `mcpgate reload` (operator token).
//! - [`errors`]: the one mapping from protocol errors to responses.
//! - [`html`]: page headers, redirects, the session cookie.
//! - [`server`]: the accept loop: connection cap, header, body and
//!   keep-alive timeouts, graceful shutdown.
//!
//! The MCP endpoint's routes come from `crate::mcp::routes`.
//!
//! OAuth endpoints are served under both `/v1/oauth/*` and the root paths;
//! the metadata advertises one set (`endpoint_style`). When the public URL
//! has a path, everything but the `/.well-known/*` documents lives below it.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod client_addr;
pub mod connections;
pub mod discovery;
pub mod errors;
pub mod federation;
pub mod html;
pub mod logout;
pub mod register;
pub mod reload;
pub mod server;
pub mod tls;
pub mod token;
pub mod upstream_oauth;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::AuthServer;
use crate::mcp::McpState;
use crate::web::Pages;
use html::SessionCookie;

/// Largest request body accepted anywhere (forms, JSON, token requests).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthServer>,
    pub pages: Arc<Pages>,
    pub cookie: SessionCookie,
    pub server_name: Arc<str>,
    pub stylesheet_url: Arc<str>,
    pub session_max_age: i64,
    pub mcp: Arc<McpState>,
    /// Upstream identity providers (none unless configured).
    /// Identity providers (a reload may replace them).
    pub federation: Arc<crate::live::Live<crate::federation::Federation>>,
    /// `dynamic_client_registration`: when off, the registration endpoints
    /// answer 404 and the metadata omits `registration_endpoint`.
    pub dynamic_client_registration: bool,
}

impl AppState {
    pub fn new(
        auth: Arc<AuthServer>,
        pages: Pages,
        server_name: &str,
        session_max_age: i64,
        mcp: Arc<McpState>,
    ) -> Self {
        let https = auth.urls.issuer.starts_with("https://");
        let stylesheet_url = format!("{}/assets/mcpgate.css", auth.urls.base_path);
        Self {
            auth,
            pages: Arc::new(pages),
            cookie: SessionCookie::new(https),
            server_name: server_name.into(),
            stylesheet_url: stylesheet_url.into(),
            session_max_age,
            mcp,
            federation: Arc::new(crate::live::Live::new(crate::federation::Federation::none())),
            dynamic_client_registration: true,
        }
    }
}

/// CORS for the endpoints browser-based clients (MCP Inspector) call.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(86_400))
}

pub fn router(state: AppState) -> Router {
    let urls = state.auth.urls.clone();
    let base = urls.base_path.as_str();

    let mut metadata = Router::new()
        .route(&urls.as_metadata_path, get(discovery::authorization_server))
        .route(
            &urls.resource_metadata_path,
            get(discovery::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(discovery::protected_resource),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            &urls.sse_resource_metadata_path,
            get(discovery::protected_resource_sse),
        )
        .route(
            "/.well-known/mcp/manifest.json",
            get(crate::mcp::manifest::get),
        )
        .route("/healthz", get(crate::mcp::health::get));
    if !base.is_empty() {
        // Clients that append the well-known suffix to the issuer instead
        // of inserting it (not RFC 8414, but seen in the wild).
        metadata = metadata
            .route(
                &format!("{base}/.well-known/oauth-authorization-server"),
                get(discovery::authorization_server),
            )
            .route(
                &format!("{base}/.well-known/oauth-protected-resource"),
                get(discovery::protected_resource),
            )
            .route(
                &format!("{base}/.well-known/openid-configuration"),
                get(discovery::openid_configuration),
            )
            .route(
                &format!("{base}/.well-known/mcp/manifest.json"),
                get(crate::mcp::manifest::get),
            )
            .route(&format!("{base}/healthz"), get(crate::mcp::health::get));
    }
    let metadata = metadata.layer(cors());

    let api = Router::new()
        .route("/v1/oauth/token", post(token::token))
        .route("/token", post(token::token))
        .route("/v1/oauth/revoke", post(token::revoke))
        .route("/revoke", post(token::revoke))
        .route("/v1/oauth/register", post(register::register))
        .route("/register", post(register::register))
        .layer(cors());

    let browser = Router::new()
        .route(
            "/v1/oauth/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/v1/oauth/logout", post(logout::post))
        .route("/logout", post(logout::post))
        .route("/oauth/callback", get(federation::callback))
        .route(
            "/connect/{upstream}",
            get(upstream_oauth::connect_get).post(upstream_oauth::connect_post),
        )
        .route("/oauth/upstream/callback", get(upstream_oauth::callback))
        .route("/oauth/client.json", get(upstream_oauth::client_document))
        .route(
            "/oauth/client-jwt.json",
            get(upstream_oauth::client_jwt_document),
        )
        .route("/oauth/jwks.json", get(upstream_oauth::jwks))
        .route(
            "/connections",
            get(connections::get).post(connections::post),
        )
        .route("/account", get(account::get).post(account::post))
        .route("/admin", get(admin::users_get).post(admin::post))
        .route("/admin/user", get(admin::user_get).post(admin::post))
        .route("/admin/clients", get(admin::clients_get).post(admin::post))
        .route(
            "/admin/upstreams",
            get(admin::upstreams_get).post(admin::post),
        )
        .route("/admin/audit", get(admin::audit_get).post(admin::post))
        .route("/assets/mcpgate.css", get(stylesheet));

    let below_base = api
        .merge(browser)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .merge(crate::mcp::routes(&state));
    let app = if base.is_empty() {
        metadata.merge(below_base)
    } else {
        metadata.nest(base, below_base)
    };
    let instance: Arc<str> = state.mcp.cluster.instance_id.as_str().into();
    app.fallback(not_found)
        // Counts requests by route template (`crate::telemetry::scrape`).
        .layer(axum::middleware::from_fn(
            crate::telemetry::scrape::track_http,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |req: &axum::http::Request<_>| {
                    // The path only: query strings may carry values that do not belong in logs.
                    // The instance tells apart the servers behind one load balancer.
                    tracing::info_span!("http", instance = %instance, method = %req.method(), path = %req.uri().path())
                })
                // One line per request (status and latency) at info.
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

async fn stylesheet() -> Response {
    let mut r = crate::web::STYLESHEET.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": "not_found", "error_description": "no such endpoint"}),
        ),
    )
        .into_response()
}
