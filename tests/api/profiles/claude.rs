//! Claude (claude.ai, claude.com, Claude Desktop): DCR with
//! `client_secret_post`, the secret in the token request body only (no
//! Basic fallback), only 302 and 303 in the browser flow, and no secret
//! for a `none` registration.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    Authorized, ClientAuth, USER, authorize_in, discover, issued_secret, pkce, post_token,
    register, tokens,
};
use crate::helpers::{PASSWORD, TestApp, location, query_param, spawn_app};
use crate::mcp_support::header;

const CLAUDE_AI: &str = "https://claude.ai/api/mcp/auth_callback";
const CLAUDE_COM: &str = "https://claude.com/api/mcp/auth_callback";

/// Claude's DCR request.
fn registration(callback: &str, method: &str) -> Value {
    json!({
        "client_name": "Claude",
        "redirect_uris": [callback],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    })
}

/// Asserts that every redirect of a flow is a 302 or a 303, never a 307.
fn assert_no_307(a: &Authorized) {
    for s in &a.redirects {
        assert!(
            *s == StatusCode::FOUND || *s == StatusCode::SEE_OTHER,
            "{s} in {:?}",
            a.redirects
        );
    }
}

/// The authorization request parameters Claude sends.
fn params<'a>(
    client_id: &'a str,
    callback: &'a str,
    challenge: &'a str,
    state: &'a str,
    resource: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("redirect_uri", callback),
        ("state", state),
        ("scope", "mcp"),
        ("resource", resource),
    ]
}

/// A whole Claude connection through `callback`: discovery, DCR with
/// client_secret_post, sign-in and consent, the code exchange and a refresh
/// with the secret in the body, `tools/call`, and a second connection.
async fn claude_connects_through(callback: &str) {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let d = discover(&app).await;
    let methods = d.asm["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("client_secret_post")), "{}", d.asm);
    let resource = d.prm["resource"].as_str().unwrap().to_string();
    let token_endpoint = d.endpoint("token_endpoint");
    let authorization_endpoint = d.endpoint("authorization_endpoint");

    let reg = register(
        &app,
        &d.endpoint("registration_endpoint"),
        &registration(callback, "client_secret_post"),
    )
    .await;
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(reg["redirect_uris"], json!([callback]));
    let secret = issued_secret(&reg);
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // Login → consent → callback: 303 after each form, nothing else.
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let a = authorize_in(
        &app,
        &browser,
        &authorization_endpoint,
        &params(
            &client_id,
            callback,
            &challenge,
            "claude-state-1",
            &resource,
        ),
        "approve",
    )
    .await;
    assert_no_307(&a);
    assert_eq!(a.pages, ["login", "consent"]);
    assert_eq!(a.redirects, [StatusCode::SEE_OTHER, StatusCode::SEE_OTHER]);
    assert!(
        a.callback.starts_with(&format!("{callback}?code=")),
        "{}",
        a.callback
    );
    assert_eq!(a.param("state").as_deref(), Some("claude-state-1"));

    // client_secret_post: the secret in the body, no Authorization header.
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("redirect_uri", callback),
                ("code_verifier", &verifier),
                ("resource", &resource),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    super::assert_whoami(&app, t["access_token"].as_str().unwrap(), &client_id).await;

    let refreshed = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("resource", &resource),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    assert_ne!(refreshed["refresh_token"], t["refresh_token"]);
    super::assert_whoami(
        &app,
        refreshed["access_token"].as_str().unwrap(),
        &client_id,
    )
    .await;

    // A second connection in the same browser: one 302 straight back.
    let (verifier, challenge) = pkce();
    let a = authorize_in(
        &app,
        &browser,
        &authorization_endpoint,
        &params(
            &client_id,
            callback,
            &challenge,
            "claude-state-2",
            &resource,
        ),
        "approve",
    )
    .await;
    assert_no_307(&a);
    assert!(a.pages.is_empty(), "{:?}", a.pages);
    assert_eq!(a.redirects, [StatusCode::FOUND]);
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("redirect_uri", callback),
                ("code_verifier", &verifier),
                ("resource", &resource),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    super::assert_whoami(&app, t["access_token"].as_str().unwrap(), &client_id).await;
}

#[tokio::test]
async fn claude_ai_registers_client_secret_post_and_authenticates_with_the_secret_in_the_body_only()
{
    claude_connects_through(CLAUDE_AI).await;
}

#[tokio::test]
async fn claude_com_registers_client_secret_post_and_authenticates_with_the_secret_in_the_body_only()
 {
    claude_connects_through(CLAUDE_COM).await;
}

/// Registers a client_secret_post client for `callback`; returns its id.
async fn registered(app: &TestApp, callback: &str) -> String {
    let reg = register(
        app,
        &format!("{}/v1/oauth/register", app.urls.issuer),
        &registration(callback, "client_secret_post"),
    )
    .await;
    reg["client_id"].as_str().unwrap().to_string()
}

/// Asserts an error redirect to `callback` with `status`, `error` and the
/// state; returns the Location.
fn assert_error_redirect(
    r: &reqwest::Response,
    status: StatusCode,
    callback: &str,
    error: &str,
) -> String {
    assert_eq!(r.status(), status, "never 307");
    let loc = location(r);
    assert!(loc.starts_with(&format!("{callback}?")), "{loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st"), "{loc}");
    assert_eq!(query_param(&loc, "code"), None, "{loc}");
    loc
}

#[tokio::test]
async fn claude_never_gets_a_307_from_the_authorization_flow_not_even_for_errors() {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let resource = app.resource();
    let authorization_endpoint = format!("{}/v1/oauth/authorize", app.urls.issuer);
    let client_id = registered(&app, CLAUDE_AI).await;
    let (_, challenge) = pkce();
    let good = params(&client_id, CLAUDE_AI, &challenge, "st", &resource);
    let open = |params: Vec<(&str, &str)>| {
        let browser = app.browser();
        let q: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move { browser.open_authorize(&q).await }
    };

    // Errors sent back to the callback from the GET: 302.
    let mut bad_scope = good.clone();
    bad_scope.retain(|(k, _)| *k != "scope");
    bad_scope.push(("scope", "admin"));
    let r = open(bad_scope).await;
    assert_error_redirect(&r, StatusCode::FOUND, CLAUDE_AI, "invalid_scope");
    let no_pkce: Vec<_> = good
        .iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .cloned()
        .collect();
    let r = open(no_pkce).await;
    assert_error_redirect(&r, StatusCode::FOUND, CLAUDE_AI, "invalid_request");
    let mut other_resource = good.clone();
    other_resource.retain(|(k, _)| *k != "resource");
    other_resource.push(("resource", "https://elsewhere.example/mcp"));
    let r = open(other_resource).await;
    assert_error_redirect(&r, StatusCode::FOUND, CLAUDE_AI, "invalid_target");

    // A wrong password shows the page again (no redirect); then sign-in
    // and the denial are 303s, and the denial reaches the callback.
    let browser = app.browser();
    let a_params: Vec<(String, String)> = good
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = browser.open_authorize(&a_params).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, USER, "wrong password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "location").is_none());
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser.submit_consent(&html, "deny").await;
    let loc = assert_error_redirect(&r, StatusCode::SEE_OTHER, CLAUDE_AI, "access_denied");
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.urls.issuer.as_str())
    );

    // The same through the whole flow driver, on the claude.com callback.
    let client_id = registered(&app, CLAUDE_COM).await;
    let a = authorize_in(
        &app,
        &app.browser(),
        &authorization_endpoint,
        &params(&client_id, CLAUDE_COM, &challenge, "st", &resource),
        "deny",
    )
    .await;
    assert_no_307(&a);
    assert_eq!(a.redirects, [StatusCode::SEE_OTHER, StatusCode::SEE_OTHER]);
    assert_eq!(a.param("error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn claude_desktop_registering_none_gets_no_secret_and_still_connects() {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let d = discover(&app).await;
    let reg = register(
        &app,
        &d.endpoint("registration_endpoint"),
        &registration(CLAUDE_AI, "none"),
    )
    .await;
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert!(reg.get("client_secret").is_none(), "{reg}");
    assert!(reg.get("client_secret_expires_at").is_none(), "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    let resource = app.resource();
    let (verifier, challenge) = pkce();
    let a = authorize_in(
        &app,
        &app.browser(),
        &d.endpoint("authorization_endpoint"),
        &params(&client_id, CLAUDE_AI, &challenge, "st", &resource),
        "approve",
    )
    .await;
    assert_no_307(&a);
    let token_endpoint = d.endpoint("token_endpoint");
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("redirect_uri", CLAUDE_AI),
                ("code_verifier", &verifier),
                ("resource", &resource),
                ("client_id", &client_id),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    let refreshed = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    super::assert_whoami(
        &app,
        refreshed["access_token"].as_str().unwrap(),
        &client_id,
    )
    .await;
}
