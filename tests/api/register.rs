//! Dynamic client registration (RFC 7591) at `POST /v1/oauth/register` and
//! `POST /register`.

use mcpgate::clock::Clock;
use mcpgate_core::crypto::hash_secret;
use mcpgate_core::domain::ClientId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// The registration body of the seed document's Insomnia example.
fn insomnia_body() -> Value {
    json!({
        "client_name": "Insomnia Local Test",
        "redirect_uris": ["http://localhost:3000/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "mcp",
        "token_endpoint_auth_method": "none"
    })
}

async fn post_json(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("register request")
}

/// Asserts a JSON RFC 7591 §3.2.2 error and returns its description.
async fn assert_error(r: reqwest::Response, status: StatusCode, code: &str) -> String {
    assert_eq!(r.status(), status);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.expect("json error body");
    assert_eq!(body["error"], code, "{body}");
    body["error_description"]
        .as_str()
        .expect("error_description")
        .to_string()
}

async fn assert_public_registration_echoed(app: &TestApp, path: &str) {
    let r = post_json(app, path, &insomnia_body()).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{path}");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["redirect_uris"],
        json!(["http://localhost:3000/callback"])
    );
    assert_eq!(
        b["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(b["response_types"], json!(["code"]));
    assert_eq!(b["scope"], "mcp");
    assert_eq!(b["token_endpoint_auth_method"], "none");
    assert_eq!(b["client_name"], "Insomnia Local Test");
    let id = b["client_id"].as_str().expect("client_id is a string");
    assert!(!id.is_empty());
    assert_eq!(b["client_id_issued_at"], app.clock.now());
    assert!(b.get("client_secret").is_none(), "{b}");
    assert!(b.get("client_secret_expires_at").is_none(), "{b}");
}

#[tokio::test]
async fn the_seed_insomnia_registration_is_created_and_echoed_exactly_without_a_secret() {
    let app = spawn_app().await;
    assert_public_registration_echoed(&app, "/v1/oauth/register").await;
}

#[tokio::test]
async fn the_root_register_path_accepts_the_same_registration() {
    let app = spawn_app().await;
    assert_public_registration_echoed(&app, "/register").await;
}

#[tokio::test]
async fn two_registrations_get_different_client_ids() {
    let app = spawn_app().await;
    let a: Value = post_json(&app, "/v1/oauth/register", &insomnia_body())
        .await
        .json()
        .await
        .unwrap();
    let b: Value = post_json(&app, "/register", &insomnia_body())
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(a["client_id"], b["client_id"]);
}

async fn assert_confidential_registration(method: &str) {
    let app = spawn_app().await;
    let body = json!({
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    });
    let r = post_json(&app, "/v1/oauth/register", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["token_endpoint_auth_method"], method);
    assert_eq!(
        b["redirect_uris"],
        json!(["https://claude.ai/api/mcp/auth_callback"])
    );
    assert_eq!(b["client_name"], "Claude");
    let secret = b["client_secret"].as_str().expect("client_secret");
    assert!(secret.starts_with("mcps_"), "{secret}");
    assert_eq!(secret.len(), 5 + 64, "{secret}");
    assert!(secret[5..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(b["client_secret_expires_at"], 0);

    // Only the SHA-256 of the secret is stored.
    let id = ClientId::parse(b["client_id"].as_str().unwrap()).unwrap();
    let stored = app.store.client(&id).await.unwrap().expect("client stored");
    let hash = stored
        .secret_hash
        .expect("a confidential client has a secret hash");
    assert_eq!(hash, hash_secret(secret));
    assert_ne!(hash, secret);
    assert_eq!(stored.metadata.token_endpoint_auth_method.as_str(), method);
}

#[tokio::test]
async fn a_client_secret_post_registration_gets_a_hashed_mcps_secret_that_never_expires() {
    assert_confidential_registration("client_secret_post").await;
}

#[tokio::test]
async fn a_client_secret_basic_registration_gets_a_hashed_mcps_secret_that_never_expires() {
    assert_confidential_registration("client_secret_basic").await;
}

#[tokio::test]
async fn a_public_client_is_stored_without_a_secret_hash() {
    let app = spawn_app().await;
    let r = post_json(&app, "/v1/oauth/register", &insomnia_body()).await;
    let b: Value = r.json().await.unwrap();
    let id = ClientId::parse(b["client_id"].as_str().unwrap()).unwrap();
    let stored = app.store.client(&id).await.unwrap().expect("client stored");
    assert_eq!(stored.secret_hash, None);
}

#[tokio::test]
async fn missing_or_empty_redirect_uris_are_invalid_redirect_uri() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({"client_name": "x"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert!(d.contains("redirect_uris is required"), "{d}");

    let d = assert_error(
        app.register(json!({"redirect_uris": []})).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert_eq!(d, "redirect_uris must not be empty");

    let d = assert_error(
        app.register(json!({"redirect_uris": "https://a.example/cb"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert!(d.contains("must be an array"), "{d}");
}

#[tokio::test]
async fn javascript_and_data_redirect_uris_are_refused_by_scheme() {
    let app = spawn_app().await;
    for (uri, scheme) in [
        ("javascript:alert(1)", "\"javascript\""),
        ("data:text/html,<script>alert(1)</script>", "\"data\""),
    ] {
        let d = assert_error(
            app.register(json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        )
        .await;
        assert!(
            d.contains(&format!("has the scheme {scheme}")),
            "{uri}: {d}"
        );
    }
}

#[tokio::test]
async fn a_non_loopback_http_redirect_uri_is_refused() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({"redirect_uris": ["http://evil.example/cb"], "token_endpoint_auth_method": "none"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert!(d.contains("uses http on a non-loopback host"), "{d}");
}

#[tokio::test]
async fn a_redirect_uri_with_a_fragment_is_refused() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({"redirect_uris": ["https://app.example/cb#frag"], "token_endpoint_auth_method": "none"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert!(d.contains("has a fragment"), "{d}");
}

#[tokio::test]
async fn one_bad_redirect_uri_among_good_ones_refuses_the_registration() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({
            "redirect_uris": ["https://app.example/cb", "http://evil.example/cb"],
            "token_endpoint_auth_method": "none"
        }))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert!(d.contains("http://evil.example/cb"), "{d}");
    assert!(app.store.list_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn unsupported_grant_types_are_invalid_client_metadata() {
    let app = spawn_app().await;
    for grant in ["password", "client_credentials", "implicit"] {
        let d = assert_error(
            app.register(json!({
                "redirect_uris": ["https://app.example/cb"],
                "grant_types": ["authorization_code", grant],
            }))
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        )
        .await;
        assert!(
            d.contains(&format!("grant_types contains \"{grant}\"")),
            "{d}"
        );
    }
}

#[tokio::test]
async fn unsupported_response_types_are_invalid_client_metadata() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({
            "redirect_uris": ["https://app.example/cb"],
            "response_types": ["token"],
        }))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert_eq!(
        d,
        "response_types contains \"token\"; only code is supported"
    );
}

#[tokio::test]
async fn an_unsupported_token_endpoint_auth_method_is_invalid_client_metadata() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "client_secret_jwt",
        }))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert!(
        d.contains("token_endpoint_auth_method \"client_secret_jwt\" is not supported"),
        "{d}"
    );
}

/// private_key_jwt is supported, but only with the client's keys
/// (`private_key_jwt` module has the rest).
#[tokio::test]
async fn private_key_jwt_without_keys_is_invalid_client_metadata() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
        }))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert!(d.contains("send jwks_uri or jwks"), "{d}");
}

#[tokio::test]
async fn an_unknown_scope_is_invalid_client_metadata() {
    let app = spawn_app().await;
    let d = assert_error(
        app.register(json!({
            "redirect_uris": ["https://app.example/cb"],
            "scope": "mcp admin",
        }))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert_eq!(
        d,
        "scope admin is not offered by this server; supported: mcp offline_access"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_400() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/v1/oauth/register"))
        .header("content-type", "application/json")
        .body("{\"redirect_uris\": [")
        .send()
        .await
        .unwrap();
    let d = assert_error(r, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    assert!(d.starts_with("the request body is not valid JSON"), "{d}");

    let d = assert_error(
        app.register(json!(["https://app.example/cb"])).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert_eq!(d, "the registration request must be a JSON object");
    assert!(app.store.list_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_registration_without_a_json_content_type_is_invalid_request() {
    let app = spawn_app().await;
    let body = serde_json::to_string(&insomnia_body()).unwrap();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .http
            .post(app.url("/v1/oauth/register"))
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let d = assert_error(
            req.send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            d.contains("Content-Type: application/json"),
            "{content_type:?}: {d}"
        );
    }
    assert!(app.store.list_clients().await.unwrap().is_empty());

    // A charset parameter is fine.
    let r = app
        .http
        .post(app.url("/v1/oauth/register"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_registered_client_is_stored_with_its_metadata_and_survives_a_restart() {
    let app = spawn_app().await;
    let b: Value = post_json(&app, "/v1/oauth/register", &insomnia_body())
        .await
        .json()
        .await
        .unwrap();
    let id = ClientId::parse(b["client_id"].as_str().unwrap()).unwrap();
    let stored = app.store.client(&id).await.unwrap().expect("client stored");
    assert_eq!(stored.client_id, id);
    assert_eq!(
        stored.metadata.client_name.as_deref(),
        Some("Insomnia Local Test")
    );
    assert_eq!(
        stored
            .metadata
            .redirect_uris
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>(),
        ["http://localhost:3000/callback"]
    );
    assert_eq!(stored.metadata.token_endpoint_auth_method.as_str(), "none");
    assert_eq!(stored.issued_at, app.clock.now());

    let app = app.restart().await;
    let again = app
        .store
        .client(&id)
        .await
        .unwrap()
        .expect("client still stored");
    assert_eq!(again.metadata, stored.metadata);
    assert_eq!(again.issued_at, stored.issued_at);
}

#[tokio::test]
async fn a_registration_from_a_browser_origin_gets_cors_headers() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/v1/oauth/register"))
        .header("origin", "http://localhost:6274")
        .json(&insomnia_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // The preflight a browser sends first.
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/register"))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("content-type"), "{headers}");
}

#[tokio::test]
async fn the_fourth_registration_in_a_minute_from_one_address_is_rate_limited() {
    let app = spawn_app_with(|s| s.registration_rate_limit = 3).await;
    for i in 0..3 {
        let r = post_json(&app, "/v1/oauth/register", &insomnia_body()).await;
        assert_eq!(r.status(), StatusCode::CREATED, "registration {i}");
    }
    let r = post_json(&app, "/register", &insomnia_body()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "60");
    let d = assert_error(r, StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable").await;
    assert!(d.starts_with("too many client registrations"), "{d}");
    assert_eq!(app.store.list_clients().await.unwrap().len(), 3);
}
