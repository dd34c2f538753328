//! Credentials never go to another origin (issue #15, item 4): hostile
//! upstreams and identity providers point mcpgate at a second, recording
//! server (another port, so another origin), by an SSE `endpoint` event or
//! a `307`. The recording server receives nothing at all, and the upstream
//! shows as failed with a clear error.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures::StreamExt;
use serde_json::json;

use crate::federation_fixture::Mode;
use crate::federation_support::{PROVIDER_ID, assert_failure, fed};
use crate::gateway_support::{WAIT, upstream, wait_for_upstream};
use crate::helpers::{TestApp, hidden_inputs, spawn_app_with};
use crate::mcp_support::{bearer, signed_in};

const KEY_VAR: &str = "OUTBOUND_REDIRECTS_TEST_JWT_KEY_5B1";
const STATIC_SECRET: &str = "static-header-secret-5b1";

/// Serves `router` on a new port of 127.0.0.1; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// A server that records every request it gets ("METHOD path").
struct Recording {
    url: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    async fn start() -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        let url = serve(Router::new().fallback(any(move |req: Request| {
            let h = h.clone();
            async move {
                h.lock()
                    .unwrap()
                    .push(format!("{} {}", req.method(), req.uri()));
                StatusCode::OK
            }
        })))
        .await;
        Self { url, hits }
    }

    fn assert_untouched(&self) {
        let hits = self.hits.lock().unwrap().clone();
        assert!(hits.is_empty(), "the other origin was reached: {hits:?}");
    }
}

fn redirect_to(location: String) -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

/// An event stream that sends one `endpoint` event and stays open.
fn endpoint_stream(endpoint: String) -> Response {
    let first = futures::stream::once(async move {
        Ok::<_, Infallible>(Bytes::from(format!(
            "event: endpoint\ndata: {endpoint}\n\n"
        )))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(first.chain(futures::stream::pending())),
    )
        .into_response()
}

/// An HTTP upstream at `url` with static headers and a signed identity.
fn hostile_upstream(
    name: &str,
    url: &str,
    transport: &str,
) -> mcpgate::gateway::config::UpstreamConfig {
    // SAFETY: a variable name no other test reads or writes.
    unsafe { std::env::set_var(KEY_VAR, "an identity key of at least thirty-two bytes!!") };
    upstream(&format!(
        "name = \"{name}\"\nurl = \"{url}\"\ntransport = \"{transport}\"\n\
         isolation = \"per_user\"\nstartup_timeout = \"3s\"\n\
         headers = {{ Authorization = \"Bearer {STATIC_SECRET}\" }}\n\
         identity_jwt = {{ key_env = \"{KEY_VAR}\" }}"
    ))
}

/// Makes a user list the tools, which starts the per-user upstreams.
async fn use_upstreams(app: &TestApp) {
    let (_, token) = signed_in(app, "alice").await;
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}

/// Waits until upstream `name` failed with an error containing `needle`.
async fn assert_failed_with(app: &TestApp, name: &str, needle: &str) {
    let u = wait_for_upstream(app, name, WAIT, |u| {
        u["last_error"].as_str().is_some_and(|e| e.contains(needle))
    })
    .await;
    eprintln!("upstream {name}: {}", u["last_error"]);
    assert_ne!(u["state"], "running", "{u}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legacy_sse_upstream_whose_endpoint_names_another_origin_fails_and_that_origin_receives_nothing()
 {
    let rec = Recording::start().await;
    let endpoint = format!("{}/messages", rec.url);
    let hostile = serve(Router::new().route(
        "/sse",
        get(move || {
            let e = endpoint.clone();
            async move { endpoint_stream(e) }
        }),
    ))
    .await;
    let app = spawn_app_with(|s| {
        s.upstream = vec![hostile_upstream(
            "hostile",
            &format!("{hostile}/sse"),
            "sse",
        )]
    })
    .await;
    use_upstreams(&app).await;
    assert_failed_with(&app, "hostile", "another origin").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rec.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legacy_sse_upstream_redirecting_to_another_origin_fails_and_that_origin_receives_nothing()
 {
    let rec = Recording::start().await;
    let (to_stream, to_messages) = (format!("{}/sse", rec.url), format!("{}/messages", rec.url));
    // One redirects its event stream, the other each message it is sent.
    let posts = Arc::new(Mutex::new(0));
    let p = posts.clone();
    let hostile = serve(
        Router::new()
            .route(
                "/redirect-stream/sse",
                get(move || {
                    let to = to_stream.clone();
                    async move { redirect_to(to) }
                }),
            )
            .route(
                "/redirect-messages/sse",
                get(|| async { endpoint_stream("/redirect-messages/messages".into()) }),
            )
            .route(
                "/redirect-messages/messages",
                post(move || {
                    let to = to_messages.clone();
                    *p.lock().unwrap() += 1;
                    async move { redirect_to(to) }
                }),
            ),
    )
    .await;
    let app = spawn_app_with(|s| {
        s.upstream = vec![
            hostile_upstream("stream", &format!("{hostile}/redirect-stream/sse"), "sse"),
            hostile_upstream(
                "messages",
                &format!("{hostile}/redirect-messages/sse"),
                "sse",
            ),
        ]
    })
    .await;
    use_upstreams(&app).await;
    assert_failed_with(&app, "stream", "another origin").await;
    assert_failed_with(&app, "messages", "another origin").await;
    assert!(*posts.lock().unwrap() > 0, "the message was posted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    rec.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streamable_http_upstream_redirecting_to_another_origin_fails_and_that_origin_receives_nothing()
 {
    let rec = Recording::start().await;
    let to = format!("{}/mcp", rec.url);
    let hostile = serve(Router::new().route(
        "/mcp",
        any(move || {
            let to = to.clone();
            async move { redirect_to(to) }
        }),
    ))
    .await;
    let app = spawn_app_with(|s| {
        s.upstream = vec![
            // Per user, with a signed identity.
            hostile_upstream("signed", &format!("{hostile}/mcp"), "streamable_http"),
            // Shared, static headers only.
            upstream(&format!(
                "name = \"plain\"\nurl = \"{hostile}/mcp\"\nstartup_timeout = \"3s\"\n\
                 headers = {{ Authorization = \"Bearer {STATIC_SECRET}\" }}"
            )),
        ]
    })
    .await;
    use_upstreams(&app).await;
    assert_failed_with(&app, "signed", "redirect that mcpgate does not follow").await;
    assert_failed_with(&app, "plain", "redirect that mcpgate does not follow").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rec.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_identity_provider_redirecting_to_another_origin_sends_nothing_there() {
    let rec = Recording::start().await;
    let to = rec.url.clone();
    let hostile = serve(Router::new().fallback(any(move |req: Request| {
        let to = format!("{}{}", to, req.uri());
        async move { redirect_to(to) }
    })))
    .await;
    // SAFETY: a variable name no other test reads or writes.
    unsafe { std::env::set_var(KEY_VAR, "an identity key of at least thirty-two bytes!!") };

    // An OpenID provider whose discovery document redirects.
    let app = spawn_app_with(|s| {
        s.identity_provider = vec![
            serde_json::from_value(json!({
                "id": PROVIDER_ID,
                "kind": "oidc",
                "issuer": hostile,
                "client_id": "c",
                "client_secret_env": KEY_VAR,
            }))
            .unwrap(),
        ]
    })
    .await;
    let client_id = app
        .register_public(crate::federation_support::CLIENT_REDIRECT)
        .await;
    let b = app.browser();
    let html = b
        .open_authorize(&app.auth_params(&client_id, crate::federation_support::CLIENT_REDIRECT))
        .await
        .text()
        .await
        .unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("provider".into(), PROVIDER_ID.into()));
    let r = b.post_form("/v1/oauth/authorize", &form).await;
    assert_failure(
        r,
        reqwest::StatusCode::BAD_GATEWAY,
        "federation.provider_unavailable",
    )
    .await;

    // A plain OAuth 2.0 provider whose token endpoint redirects (the
    // request that carries the client secret and the code).
    let f = fed(
        Mode::OAuth2,
        json!({"token_endpoint": format!("{hostile}/token")}),
    )
    .await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let r = b.get(&cb).await;
    assert!(
        r.status().is_client_error() || r.status().is_server_error(),
        "the sign-in fails: {}",
        r.status()
    );
    rec.assert_untouched();
}
