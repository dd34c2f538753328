//! The token endpoint: the authorization_code grant (RFC 6749 §4.1.3,
//! RFC 7636, RFC 8707, RFC 9700 §4.2.4) and client authentication
//! (RFC 6749 §2.3). The small helpers at the top are shared with the
//! refresh, revoke and restart tests.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcpgate_core::crypto::hash_secret;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, VERIFIER, spawn_app, spawn_app_with};

/// The redirect URI the tests register (never contacted).
pub(crate) const REDIRECT: &str = "http://127.0.0.1:1/callback";
/// A valid code_verifier that is not the one behind [`CHALLENGE`].
pub(crate) const OTHER_VERIFIER: &str =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// A redirect URI on a host that may skip PKCE (the ChatGPT connector).
const CHATGPT_REDIRECT: &str = "https://chatgpt.com/connector_platform_oauth_redirect";

/// `Authorization: Basic base64(id:secret)`.
pub(crate) fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// POSTs a form to `path`, with an optional `Authorization` header.
pub(crate) async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut req = app.http.post(app.url(path)).form(form);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.expect("request")
}

/// POSTs a raw body with a content type to `path`.
pub(crate) async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

/// Asserts an OAuth JSON error: status, `error`, that `error_description`
/// contains `needle`, and `Cache-Control: no-store`. Returns the headers.
pub(crate) async fn expect_error(
    r: reqwest::Response,
    status: StatusCode,
    code: &str,
    needle: &str,
) -> reqwest::header::HeaderMap {
    let headers = r.headers().clone();
    let got = r.status();
    let body: Value = r.json().await.expect("a JSON error body");
    assert_eq!(got, status, "status of {body}");
    assert_eq!(body["error"], code, "error code of {body}");
    let desc = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        desc.contains(needle),
        "error_description {desc:?} should mention {needle:?}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    headers
}

/// Asserts a 200 token response and returns its JSON.
pub(crate) async fn expect_tokens(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "token response: {text}");
    serde_json::from_str(&text).expect("JSON")
}

pub(crate) fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

/// Signs `user` in for `client_id` (standard parameters, [`REDIRECT`]) and
/// returns the code.
pub(crate) async fn code_for(app: &TestApp, user: &str, client_id: &str) -> String {
    app.authorize(user, &app.auth_params(client_id, REDIRECT))
        .await
}

/// Exchanges `code` as the public client `client_id` with the right
/// verifier, redirect URI and resource.
pub(crate) async fn exchange(app: &TestApp, code: &str, client_id: &str) -> reqwest::Response {
    app.token(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
        ("code_verifier", VERIFIER),
        ("resource", &app.resource()),
    ])
    .await
}

/// Refreshes as the public client `client_id`.
pub(crate) async fn refresh(app: &TestApp, rt: &str, client_id: &str) -> reqwest::Response {
    app.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", client_id),
    ])
    .await
}

/// The stored access token record for a plaintext token.
pub(crate) async fn access_record(app: &TestApp, at: &str) -> mcpgate_core::model::AccessToken {
    app.store
        .access_token(&hash_secret(at))
        .await
        .expect("store")
        .expect("the access token is stored")
}

/// The stored refresh token record for a plaintext token.
pub(crate) async fn refresh_record(app: &TestApp, rt: &str) -> mcpgate_core::model::RefreshToken {
    app.store
        .refresh_token(&hash_secret(rt))
        .await
        .expect("store")
        .expect("the refresh token is stored")
}

fn is_access_token(at: &str) -> bool {
    at.len() == 36
        && at.starts_with("mcp_")
        && at[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Authorization parameters without PKCE, for the exempt redirect host.
fn params_without_pkce(app: &TestApp, client_id: &str, redirect: &str) -> Vec<(String, String)> {
    app.auth_params(client_id, redirect)
        .into_iter()
        .filter(|(k, _)| k != "code_challenge" && k != "code_challenge_method")
        .collect()
}

// ---------------------------------------------------------------- success

#[tokio::test]
async fn a_code_exchange_returns_a_bearer_token_in_the_seed_format_with_no_store_headers() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = exchange(&app, &code, &client_id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let t: Value = r.json().await.unwrap();
    let at = s(&t, "access_token");
    assert!(is_access_token(&at), "{at}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 86_400);
    assert_eq!(t["scope"], "mcp");
    let rt = s(&t, "refresh_token");
    assert!(!rt.is_empty() && rt != at);

    let record = access_record(&app, &at).await;
    assert_eq!(record.client_id.as_str(), client_id);
    assert_eq!(record.revoked_at, None);
    assert_eq!(record.expires_at - record.created_at, 86_400);
    assert_eq!(refresh_record(&app, &rt).await.grant_id, record.grant_id);
}

#[tokio::test]
async fn the_root_token_path_works_the_same() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let resource = app.resource();
    let r = post_form(
        &app,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ],
        None,
    )
    .await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let t = expect_tokens(r).await;
    assert!(is_access_token(&s(&t, "access_token")));
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 86_400);
    assert_eq!(t["scope"], "mcp");
    assert!(t["refresh_token"].is_string());

    // And errors there are the same JSON errors.
    let r = post_form(
        &app,
        "/token",
        &[("grant_type", "password"), ("client_id", &client_id)],
        None,
    )
    .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        "password",
    )
    .await;
}

#[tokio::test]
async fn the_access_token_ttl_setting_is_reflected_in_expires_in() {
    let app = spawn_app_with(|s| s.access_token_ttl = Duration::from_secs(3600)).await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let t = expect_tokens(exchange(&app, &code, &client_id).await).await;
    assert_eq!(t["expires_in"], 3600);
    let record = access_record(&app, &s(&t, "access_token")).await;
    assert_eq!(record.expires_at - record.created_at, 3600);
}

// ------------------------------------------------- the seed's common errors

#[tokio::test]
async fn a_redirect_uri_differing_from_the_authorization_request_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:1/other"),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "redirect_uri http://127.0.0.1:1/other differs",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_code_verifier_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", OTHER_VERIFIER),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "PKCE verification failed",
    )
    .await;
}

#[tokio::test]
async fn a_missing_code_verifier_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "code_verifier is required",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_resource_is_invalid_target() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/v1/ai/mcp"),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_target",
        "resource https://other.example/v1/ai/mcp",
    )
    .await;
}

#[tokio::test]
async fn a_resource_with_a_trailing_slash_is_accepted() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let resource = format!("{}/", app.resource());
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ])
        .await;
    let t = expect_tokens(r).await;
    assert!(is_access_token(&s(&t, "access_token")));
}

// ------------------------------------------------------ one-time codes

#[tokio::test]
async fn a_code_used_twice_is_invalid_grant_and_revokes_the_tokens_of_the_first_use() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let t = expect_tokens(exchange(&app, &code, &client_id).await).await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
    assert_eq!(access_record(&app, &at).await.revoked_at, None);

    let r = exchange(&app, &code, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;

    assert!(
        access_record(&app, &at).await.revoked_at.is_some(),
        "the access token from the first use is revoked"
    );
    assert!(refresh_record(&app, &rt).await.revoked_at.is_some());
    let r = refresh(&app, &rt, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_of_one_code_give_exactly_one_success() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let url = app.url("/v1/oauth/token");
    let resource = app.resource();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = app.http.clone();
        let form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.clone()),
            ("redirect_uri".to_string(), REDIRECT.to_string()),
            ("client_id".to_string(), client_id.clone()),
            ("code_verifier".to_string(), VERIFIER.to_string()),
            ("resource".to_string(), resource.clone()),
        ];
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).form(&form).send().await.expect("request");
            let status = r.status();
            let body: Value = r.json().await.expect("json");
            (status, body)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
            assert!(is_access_token(body["access_token"].as_str().unwrap()));
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("already used"),
                "{body}"
            );
        }
    }
    assert_eq!(ok, 1, "exactly one redemption succeeds");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    app.clock.advance(61);
    let r = exchange(&app, &code, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "expired").await;
}

#[tokio::test]
async fn a_code_is_still_valid_just_before_the_default_60_seconds() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    app.clock.advance(59);
    expect_tokens(exchange(&app, &code, &client_id).await).await;
}

#[tokio::test]
async fn the_auth_code_ttl_setting_is_respected() {
    let app = spawn_app_with(|s| s.auth_code_ttl = Duration::from_secs(300)).await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;

    // 120 s: expired under the default 60 s, valid under 300 s.
    let code = code_for(&app, "alice", &client_id).await;
    app.clock.advance(120);
    expect_tokens(exchange(&app, &code, &client_id).await).await;

    let code = code_for(&app, "alice", &client_id).await;
    app.clock.advance(301);
    let r = exchange(&app, &code, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "expired").await;
}

#[tokio::test]
async fn a_code_issued_to_client_a_presented_by_client_b_is_invalid_grant() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_a = app.register_public(REDIRECT).await;
    let client_b = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_a).await;
    let r = exchange(&app, &code, &client_b).await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "issued to another client",
    )
    .await;
}

#[tokio::test]
async fn a_failed_pkce_attempt_burns_the_code() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", OTHER_VERIFIER),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "PKCE verification failed",
    )
    .await;
    let r = exchange(&app, &code, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;
}

#[tokio::test]
async fn a_code_verifier_for_a_code_issued_without_a_challenge_is_refused_as_a_pkce_downgrade() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(CHATGPT_REDIRECT).await;

    // Without the challenge, the code is issued (the host is exempt).
    let code = app
        .authorize(
            "alice",
            &params_without_pkce(&app, &client_id, CHATGPT_REDIRECT),
        )
        .await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CHATGPT_REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the authorization request had no code_challenge",
    )
    .await;

    // The same flow without a verifier succeeds.
    let code = app
        .authorize(
            "alice",
            &params_without_pkce(&app, &client_id, CHATGPT_REDIRECT),
        )
        .await;
    let resource = app.resource();
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CHATGPT_REDIRECT),
            ("client_id", &client_id),
            ("resource", &resource),
        ])
        .await;
    let t = expect_tokens(r).await;
    assert!(is_access_token(&s(&t, "access_token")));
}

// ------------------------------------------------- client authentication

#[tokio::test]
async fn a_public_client_may_send_an_empty_client_secret_in_the_body() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("client_secret", ""),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let t = expect_tokens(r).await;
    assert!(is_access_token(&s(&t, "access_token")));
}

#[tokio::test]
async fn a_public_client_may_use_http_basic_with_an_empty_secret() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = post_form(
        &app,
        "/v1/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(&basic(&client_id, "")),
    )
    .await;
    let t = expect_tokens(r).await;
    let record = access_record(&app, &s(&t, "access_token")).await;
    assert_eq!(record.client_id.as_str(), client_id);
}

#[tokio::test]
async fn a_public_client_sending_a_secret_is_invalid_client() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("client_secret", "not-a-secret"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "public client",
    )
    .await;
    assert!(h.get("www-authenticate").is_none());
    // Client authentication failed before the code was looked at: it still works.
    expect_tokens(exchange(&app, &code, &client_id).await).await;
}

/// A confidential client registered with `method` exchanges a code
/// authenticating with Basic, then another with client_secret_post.
async fn confidential_client_uses_basic_and_post(method: &str) {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client_id, secret) = app.register_confidential(REDIRECT, method).await;

    let code = code_for(&app, "alice", &client_id).await;
    let r = post_form(
        &app,
        "/v1/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        Some(&basic(&client_id, &secret)),
    )
    .await;
    let t = expect_tokens(r).await;
    assert_eq!(
        access_record(&app, &s(&t, "access_token"))
            .await
            .client_id
            .as_str(),
        client_id
    );

    let code = code_for(&app, "alice", &client_id).await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let t = expect_tokens(r).await;
    assert!(t["refresh_token"].is_string());

    // Without its secret, the confidential client is refused.
    let code = code_for(&app, "alice", &client_id).await;
    let r = exchange(&app, &code, &client_id).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "this client is confidential",
    )
    .await;
}

#[tokio::test]
async fn a_client_secret_post_client_may_authenticate_with_basic_or_in_the_body() {
    confidential_client_uses_basic_and_post("client_secret_post").await;
}

#[tokio::test]
async fn a_client_secret_basic_client_may_authenticate_with_basic_or_in_the_body() {
    confidential_client_uses_basic_and_post("client_secret_basic").await;
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_with_a_basic_challenge_only_when_basic_was_used() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client_id, secret) = app
        .register_confidential(REDIRECT, "client_secret_basic")
        .await;
    let code = code_for(&app, "alice", &client_id).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];

    let r = post_form(
        &app,
        "/v1/oauth/token",
        &form,
        Some(&basic(&client_id, "wrong-secret")),
    )
    .await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "wrong client_secret",
    )
    .await;
    let challenge = h["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");

    let mut post = form.to_vec();
    post.push(("client_id", &client_id));
    post.push(("client_secret", "wrong-secret"));
    let r = app.token(&post).await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "wrong client_secret",
    )
    .await;
    assert!(h.get("www-authenticate").is_none(), "{h:?}");

    // The failures did not burn the code: the right secret still redeems it.
    let r = post_form(
        &app,
        "/v1/oauth/token",
        &form,
        Some(&basic(&client_id, &secret)),
    )
    .await;
    expect_tokens(r).await;
}

#[tokio::test]
async fn basic_and_a_client_secret_in_the_body_at_once_is_invalid_request() {
    let app = spawn_app().await;
    let (client_id, secret) = app
        .register_confidential(REDIRECT, "client_secret_basic")
        .await;
    let r = post_form(
        &app,
        "/v1/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("redirect_uri", REDIRECT),
            ("client_secret", &secret),
        ],
        Some(&basic(&client_id, &secret)),
    )
    .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "authenticated twice",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_client_id_is_invalid_client() {
    let app = spawn_app().await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("client_id", "no-such-client"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "no client is registered with client_id no-such-client",
    )
    .await;
    assert!(h.get("www-authenticate").is_none());

    // The same with Basic carries the challenge.
    let r = post_form(
        &app,
        "/v1/oauth/token",
        &[("grant_type", "authorization_code"), ("code", "whatever")],
        Some(&basic("no-such-client", "x")),
    )
    .await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "no-such-client",
    )
    .await;
    assert!(h.contains_key("www-authenticate"));
}

#[tokio::test]
async fn a_request_without_any_client_id_is_invalid_client() {
    let app = spawn_app().await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication is missing",
    )
    .await;
    assert!(h.get("www-authenticate").is_none());
}

// ------------------------------------------------------ request format

#[tokio::test]
async fn the_password_grant_is_unsupported_grant_type_and_client_credentials_refuses_a_public_client()
 {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    // The client credentials grant exists (issue #16), for pre-registered
    // confidential clients only (tests/api/client_credentials.rs).
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
        ])
        .await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "public client",
    )
    .await;
    for grant in ["password"] {
        let r = app
            .token(&[
                ("grant_type", grant),
                ("client_id", &client_id),
                ("username", "alice"),
                ("password", "x"),
            ])
            .await;
        expect_error(
            r,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type \"{grant}\" is not supported"),
        )
        .await;
    }
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    let r = app
        .token(&[("code", "whatever"), ("client_id", &client_id)])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "grant_type parameter is missing",
    )
    .await;
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    let body = format!(
        "grant_type=authorization_code&code=a&code=b&client_id={client_id}&code_verifier={VERIFIER}"
    );
    let r = post_raw(
        &app,
        "/v1/oauth/token",
        "application/x-www-form-urlencoded",
        body,
    )
    .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "\"code\" was sent more than once",
    )
    .await;
}

#[tokio::test]
async fn a_json_body_is_invalid_request_asking_for_a_form() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    let body = json!({
        "grant_type": "authorization_code",
        "code": "whatever",
        "client_id": client_id,
        "code_verifier": VERIFIER,
    })
    .to_string();
    let r = post_raw(&app, "/v1/oauth/token", "application/json", body).await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "application/x-www-form-urlencoded",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_code_is_invalid_grant() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    let r = exchange(&app, "no-such-code", &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "unknown").await;
}

// ------------------------------------------------ refresh token issuance

#[tokio::test]
async fn a_client_without_the_refresh_token_grant_gets_no_refresh_token() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let r = app
        .register(json!({
            "client_name": "No refresh",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let client_id = s(&r.json::<Value>().await.unwrap(), "client_id");
    let code = code_for(&app, "alice", &client_id).await;
    let t = expect_tokens(exchange(&app, &code, &client_id).await).await;
    assert!(is_access_token(&s(&t, "access_token")));
    assert!(t.get("refresh_token").is_none(), "{t}");
}

#[tokio::test]
async fn with_issue_refresh_tokens_off_no_refresh_token_is_returned() {
    let app = spawn_app_with(|s| s.issue_refresh_tokens = false).await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let t = expect_tokens(exchange(&app, &code, &client_id).await).await;
    assert!(is_access_token(&s(&t, "access_token")));
    assert!(t.get("refresh_token").is_none(), "{t}");
}
