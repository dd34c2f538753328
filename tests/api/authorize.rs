//! The browser flow at `GET|POST /v1/oauth/authorize` and `/authorize`:
//! error pages versus error redirects, the sign-in and consent pages, their
//! security headers, cookies and CSRF protection, remembered consent, and
//! the code in the final redirect.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Browser, PASSWORD, TestApp, VERIFIER, form_action, hidden_inputs, location, query_param,
    serde_urlencoded_pairs, spawn_app, spawn_app_with,
};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

type Params = Vec<(String, String)>;

/// `params` with `name` set to `value` (replaced, or added at the end).
fn with(params: &[(String, String)], name: &str, value: &str) -> Params {
    let mut out: Params = params.to_vec();
    match out.iter_mut().find(|(k, _)| k == name) {
        Some(pair) => pair.1 = value.to_string(),
        None => out.push((name.to_string(), value.to_string())),
    }
    out
}

/// `params` without `name`.
fn without(params: &[(String, String)], name: &str) -> Params {
    params.iter().filter(|(k, _)| k != name).cloned().collect()
}

/// A server with user alice and a public client redirecting to [`REDIRECT`].
async fn app_with_client() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    (app, client_id)
}

/// The headers every HTML page carries.
fn assert_page_headers(r: &reqwest::Response) {
    let h = r.headers();
    assert!(
        h["content-type"].to_str().unwrap().starts_with("text/html"),
        "{:?}",
        h["content-type"]
    );
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
}

/// Asserts an HTML error page (never a redirect) and returns its text.
async fn assert_error_page(r: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    assert!(
        r.headers().get("location").is_none(),
        "an error page, not a redirect"
    );
    assert_page_headers(&r);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<form"), "{html}");
    html
}

/// Asserts a 302 error redirect to `redirect` carrying `code`, the state and
/// the issuer; returns the `error_description`.
fn assert_error_redirect(
    app: &TestApp,
    r: &reqwest::Response,
    redirect: &str,
    code: &str,
) -> String {
    assert_eq!(r.status(), StatusCode::FOUND, "302, never 307");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let loc = location(r);
    assert!(loc.starts_with(&format!("{redirect}?")), "{loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some(code), "{loc}");
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some("state-123"),
        "{loc}"
    );
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.urls.issuer.as_str()),
        "{loc}"
    );
    assert_eq!(query_param(&loc, "code"), None, "{loc}");
    query_param(&loc, "error_description").expect("error_description")
}

/// Asserts the sign-in page (200) and returns its HTML.
async fn assert_login_page(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::OK);
    assert_page_headers(&r);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    assert!(html.contains(r#"<input type="hidden" name="action" value="login">"#));
    html
}

/// Opens the authorization request in `browser`, signs in as `user` and
/// returns the consent page's HTML.
async fn consent_page(browser: &Browser, params: &[(String, String)], user: &str) -> String {
    let html = assert_login_page(browser.open_authorize(params).await).await;
    let r = browser.submit_login(&html, user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_page_headers(&r);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Allow access?</h1>"), "{html}");
    html
}

async fn exchange(
    app: &TestApp,
    code: &str,
    client_id: &str,
    redirect: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let resource = app.resource();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("client_id", client_id),
        ("resource", resource.as_str()),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    app.token(&form).await
}

fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string()
}

fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap();
    first.split_once('=').unwrap().1.to_string()
}

// ---------------------------------------------------------------------------
// Errors that are shown as a page: the client or redirect URI is not trusted.

#[tokio::test]
async fn an_unknown_client_id_gets_an_html_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    let params = app.auth_params("00000000-0000-4000-8000-000000000000", REDIRECT);
    let r = app.browser().open_authorize(&params).await;
    let html = assert_error_page(r, StatusCode::BAD_REQUEST).await;
    assert!(
        html.contains(
            "No application is registered with client_id 00000000-0000-4000-8000-000000000000"
        ),
        "{html}"
    );
    assert!(html.contains("<code>invalid_client</code>"), "{html}");
}

#[tokio::test]
async fn a_missing_client_id_gets_an_html_error_page_and_never_a_redirect() {
    let (app, client_id) = app_with_client().await;
    let params = without(&app.auth_params(&client_id, REDIRECT), "client_id");
    let r = app.browser().open_authorize(&params).await;
    let html = assert_error_page(r, StatusCode::BAD_REQUEST).await;
    assert!(
        html.contains("The client_id parameter is missing"),
        "{html}"
    );
    assert!(html.contains("<code>invalid_request</code>"), "{html}");
}

#[tokio::test]
async fn a_redirect_uri_mismatch_gets_a_page_that_does_not_list_the_registered_uris() {
    let app = spawn_app().await;
    let client_id = app.register_public("https://app.example.com/cb").await;
    let params = app.auth_params(&client_id, "https://evil.example.com/cb?a=1&b='x'");
    let r = app.browser().open_authorize(&params).await;
    let html = assert_error_page(r, StatusCode::BAD_REQUEST).await;
    assert!(
        html.contains(
            "Redirect URI mismatch: https://evil.example.com/cb?a=1&amp;b=&#x27;x&#x27; is not registered for this client"
        ),
        "{html}"
    );
    assert!(
        !html.contains("app.example.com"),
        "the registered redirect URI is not revealed: {html}"
    );
}

#[tokio::test]
async fn a_missing_redirect_uri_with_several_registered_does_not_list_them() {
    let app = spawn_app().await;
    let r = app
        .register(serde_json::json!({
            "redirect_uris": ["https://app.example.com/cb", "https://app.example.com/cb2"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let params: Vec<(String, String)> = app
        .auth_params(&client_id, "https://app.example.com/cb")
        .into_iter()
        .filter(|(k, _)| k != "redirect_uri")
        .collect();
    let r = app.browser().open_authorize(&params).await;
    let html = assert_error_page(r, StatusCode::BAD_REQUEST).await;
    assert!(
        html.contains("registered more than one redirect URI"),
        "{html}"
    );
    assert!(!html.contains("app.example.com"), "{html}");
}

#[tokio::test]
async fn a_loopback_redirect_with_another_path_is_a_mismatch_page() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, "http://127.0.0.1:1/other");
    let html = assert_error_page(
        app.browser().open_authorize(&params).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        html.contains("Redirect URI mismatch: http://127.0.0.1:1/other"),
        "{html}"
    );
}

#[tokio::test]
async fn a_repeated_client_id_gets_an_error_page() {
    let (app, client_id) = app_with_client().await;
    let mut params = app.auth_params(&client_id, REDIRECT);
    params.push(("client_id".into(), client_id.clone()));
    let html = assert_error_page(
        app.browser().open_authorize(&params).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        html.contains("The parameter &quot;client_id&quot; was sent more than once"),
        "{html}"
    );
}

// ---------------------------------------------------------------------------
// Errors after the redirect URI is verified: sent back to the client.

#[tokio::test]
async fn a_request_without_pkce_is_redirected_back_with_invalid_request() {
    let (app, client_id) = app_with_client().await;
    let params = without(
        &without(&app.auth_params(&client_id, REDIRECT), "code_challenge"),
        "code_challenge_method",
    );
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_request");
    assert_eq!(
        d,
        "PKCE is required: send code_challenge (the base64url SHA-256 of a code_verifier) with code_challenge_method=S256"
    );
}

#[tokio::test]
async fn the_plain_pkce_method_is_redirected_back_with_invalid_request() {
    let (app, client_id) = app_with_client().await;
    let params = with(
        &app.auth_params(&client_id, REDIRECT),
        "code_challenge_method",
        "plain",
    );
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_request");
    assert_eq!(
        d,
        "code_challenge_method must be S256; the plain method is not allowed"
    );

    // A challenge without a method means plain (RFC 7636 §4.3): refused too.
    let params = without(
        &app.auth_params(&client_id, REDIRECT),
        "code_challenge_method",
    );
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_request");
    assert_eq!(
        d,
        "code_challenge_method must be S256; the plain method is not allowed"
    );
}

#[tokio::test]
async fn an_unknown_scope_is_redirected_back_with_invalid_scope() {
    let (app, client_id) = app_with_client().await;
    let params = with(&app.auth_params(&client_id, REDIRECT), "scope", "admin");
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_scope");
    assert_eq!(
        d,
        "unknown scope admin; this server offers: mcp offline_access"
    );
}

#[tokio::test]
async fn a_resource_for_another_server_is_redirected_back_with_invalid_target() {
    let (app, client_id) = app_with_client().await;
    let params = with(
        &app.auth_params(&client_id, REDIRECT),
        "resource",
        "https://other.example/v1/ai/mcp",
    );
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_target");
    assert_eq!(
        d,
        format!(
            "resource https://other.example/v1/ai/mcp is not served here; the resource must be the MCP endpoint URL {}",
            app.resource()
        )
    );
}

#[tokio::test]
async fn a_missing_resource_when_required_is_invalid_target_naming_the_expected_url() {
    let app = spawn_app_with(|s| s.require_resource = true).await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let params = without(&app.auth_params(&client_id, REDIRECT), "resource");
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_target");
    let expected = app.resource();
    assert!(expected.ends_with("/v1/ai/mcp"), "{expected}");
    assert!(d.contains(&expected), "{d}");
    assert_eq!(
        d,
        format!("the resource parameter is required; set it to the MCP endpoint URL {expected}")
    );

    // With the resource, the same request is accepted.
    let r = app
        .browser()
        .open_authorize(&app.auth_params(&client_id, REDIRECT))
        .await;
    assert_login_page(r).await;
}

#[tokio::test]
async fn a_missing_resource_is_accepted_when_not_required() {
    let (app, client_id) = app_with_client().await;
    let params = without(&app.auth_params(&client_id, REDIRECT), "resource");
    assert_login_page(app.browser().open_authorize(&params).await).await;
}

#[tokio::test]
async fn response_type_token_is_redirected_back_as_unsupported_response_type() {
    let (app, client_id) = app_with_client().await;
    let params = with(
        &app.auth_params(&client_id, REDIRECT),
        "response_type",
        "token",
    );
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "unsupported_response_type");
    assert_eq!(
        d,
        "response_type \"token\" is not supported; use response_type=code"
    );
}

#[tokio::test]
async fn a_missing_response_type_is_redirected_back_with_invalid_request() {
    let (app, client_id) = app_with_client().await;
    let params = without(&app.auth_params(&client_id, REDIRECT), "response_type");
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_request");
    assert_eq!(
        d,
        "the response_type parameter is missing; use response_type=code"
    );
}

/// RFC 6749 §4.1.2.1: a parameter "included more than once" is an
/// `invalid_request` for the client once client_id and redirect_uri are known.
#[tokio::test]
async fn a_repeated_parameter_is_redirected_back_with_invalid_request() {
    let (app, client_id) = app_with_client().await;
    let mut params = app.auth_params(&client_id, REDIRECT);
    params.push(("scope".into(), "mcp".into()));
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, REDIRECT, "invalid_request");
    assert_eq!(d, "the parameter \"scope\" was sent more than once");
}

// ---------------------------------------------------------------------------
// Redirect URI exceptions: ChatGPT without PKCE, loopback ports.

#[tokio::test]
async fn a_chatgpt_connector_may_authorize_without_pkce_and_gets_a_code() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let redirect = "https://chatgpt.com/connector_platform_oauth_redirect";
    let client_id = app.register_public(redirect).await;
    let params = without(
        &without(&app.auth_params(&client_id, redirect), "code_challenge"),
        "code_challenge_method",
    );

    let html = assert_login_page(app.browser().open_authorize(&params).await).await;
    assert!(html.contains("<strong>chatgpt.com</strong>"), "{html}");

    let loc = app
        .browser()
        .sign_in_and_approve(&params, "alice", PASSWORD)
        .await;
    assert!(loc.starts_with(&format!("{redirect}?code=")), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("state-123"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.urls.issuer.as_str())
    );
    let code = query_param(&loc, "code").unwrap();
    let r = exchange(&app, &code, &client_id, redirect, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "mcp");
}

#[tokio::test]
async fn a_lookalike_chatgpt_host_must_still_use_pkce() {
    let app = spawn_app().await;
    let redirect = "https://chatgpt.com.evil.example/cb";
    let client_id = app.register_public(redirect).await;
    let params = without(
        &without(&app.auth_params(&client_id, redirect), "code_challenge"),
        "code_challenge_method",
    );
    let r = app.browser().open_authorize(&params).await;
    let d = assert_error_redirect(&app, &r, redirect, "invalid_request");
    assert!(d.starts_with("PKCE is required"), "{d}");
}

#[tokio::test]
async fn a_loopback_redirect_registered_without_a_port_accepts_any_port() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public("http://localhost/callback").await;
    let redirect = "http://localhost:53123/callback";
    let params = app.auth_params(&client_id, redirect);
    let html = assert_login_page(app.browser().open_authorize(&params).await).await;
    assert!(html.contains("<strong>localhost:53123</strong>"), "{html}");

    let loc = app
        .browser()
        .sign_in_and_approve(&params, "alice", PASSWORD)
        .await;
    assert!(
        loc.starts_with("http://localhost:53123/callback?code="),
        "{loc}"
    );
    let code = query_param(&loc, "code").unwrap();
    let r = exchange(&app, &code, &client_id, redirect, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_empty_scope_grants_the_default_scope() {
    let (app, client_id) = app_with_client().await;
    let params = with(&app.auth_params(&client_id, REDIRECT), "scope", "");
    let browser = app.browser();
    let html = consent_page(&browser, &params, "alice").await;
    assert!(html.contains("<code>mcp</code>"), "{html}");
    let r = browser.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(&r), "code").expect("code");
    let r = exchange(&app, &code, &client_id, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "mcp");
}

// ---------------------------------------------------------------------------
// The pages.

#[tokio::test]
async fn the_login_page_names_the_client_and_carries_the_request_in_one_form() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let r = app.browser().open_authorize(&params).await;
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let html = assert_login_page(r).await;
    assert!(
        html.contains(r#"<strong class="client-name">Test Client</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(&format!("<code>{client_id}</code>")),
        "{html}"
    );
    assert!(
        html.contains("You will be sent back to <strong>127.0.0.1:1</strong>."),
        "{html}"
    );
    assert_eq!(html.matches("<form").count(), 1);
    assert!(html.contains(r#"<form method="post" action="/v1/oauth/authorize">"#));
    assert_eq!(form_action(&html), "/v1/oauth/authorize");
    assert!(html.contains(r#"name="username""#));
    assert!(html.contains(r#"type="password" name="password""#));

    let hidden = hidden_inputs(&html);
    let csrf = hidden
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.clone())
        .expect("csrf_token");
    assert!(csrf.len() >= 32, "{csrf}");
    let mut expected: Params = vec![
        ("action".into(), "login".into()),
        ("csrf_token".into(), csrf),
    ];
    expected.extend(params);
    assert_eq!(hidden, expected);
}

#[tokio::test]
async fn the_login_page_does_not_repost_form_fields_smuggled_into_the_request() {
    let (app, client_id) = app_with_client().await;
    let mut params = app.auth_params(&client_id, REDIRECT);
    params.push(("csrf_token".into(), "attacker".into()));
    params.push(("action".into(), "consent".into()));
    params.push(("decision".into(), "approve".into()));
    let html = assert_login_page(app.browser().open_authorize(&params).await).await;
    let hidden = hidden_inputs(&html);
    assert_eq!(hidden.iter().filter(|(k, _)| k == "csrf_token").count(), 1);
    assert!(!hidden.iter().any(|(_, v)| v == "attacker"));
    assert_eq!(hidden.iter().filter(|(k, _)| k == "action").count(), 1);
    assert!(!hidden.iter().any(|(k, _)| k == "decision"));
}

#[tokio::test]
async fn login_consent_and_error_pages_all_carry_the_security_headers() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();

    // Login page (and the 401 login page after a wrong password).
    let r = browser.open_authorize(&params).await;
    assert_page_headers(&r);
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", "wrong").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_page_headers(&r);

    // Consent page.
    consent_page(&browser, &params, "alice").await;

    // Error pages: 400 and 403.
    let r = browser
        .open_authorize(&app.auth_params("no-such-client", REDIRECT))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_page_headers(&r);
    let r = browser
        .post_form("/v1/oauth/authorize", &with(&params, "action", "login"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_page_headers(&r);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax_and_renewed_at_sign_in() {
    let (app, client_id) = app_with_client().await;
    let browser = app.browser();
    let r = browser
        .open_authorize(&app.auth_params(&client_id, REDIRECT))
        .await;
    let c = set_cookie(&r);
    assert!(c.starts_with("mcpgate_session="), "{c}");
    assert!(c.contains("; HttpOnly"), "{c}");
    assert!(c.contains("; SameSite=Lax"), "{c}");
    assert!(c.contains("; Path=/"), "{c}");
    assert!(!c.contains("Secure"), "{c}");
    let before = cookie_value(&c);
    assert!(before.len() >= 32, "{before}");

    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = set_cookie(&r);
    assert!(c.starts_with("mcpgate_session="), "{c}");
    assert!(
        c.contains("; HttpOnly") && c.contains("; SameSite=Lax"),
        "{c}"
    );
    assert_ne!(
        cookie_value(&c),
        before,
        "signing in issues a new session id"
    );
}

#[tokio::test]
async fn an_https_public_url_uses_the_host_prefixed_secure_cookie() {
    let app = spawn_app_with(|s| s.public_url = Some("https://mcp.example.com".into())).await;
    app.add_user("alice").await;
    assert_eq!(app.urls.issuer, "https://mcp.example.com");
    let client_id = app.register_public(REDIRECT).await;
    let params = app.auth_params(&client_id, REDIRECT);
    let q = serde_urlencoded_pairs(&params);
    let r = app
        .http
        .get(app.url(&format!("/v1/oauth/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let c = set_cookie(&r);
    assert!(c.starts_with("__Host-mcpgate_session="), "{c}");
    assert!(c.contains("; Secure"), "{c}");
    assert!(c.contains("; Path=/"), "{c}");
    assert!(!c.contains("Domain="), "{c}");
    assert!(
        c.contains("; HttpOnly") && c.contains("; SameSite=Lax"),
        "{c}"
    );

    // The browser sends the cookie back under the same name and signs in.
    let html = r.text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let r = app
        .http
        .post(app.url("/v1/oauth/authorize"))
        .header(
            "cookie",
            format!("__Host-mcpgate_session={}", cookie_value(&c)),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = set_cookie(&r);
    assert!(
        c.starts_with("__Host-mcpgate_session=") && c.contains("; Secure"),
        "{c}"
    );

    // The plain name is not accepted in its place.
    let r = app
        .http
        .post(app.url("/v1/oauth/authorize"))
        .header("cookie", format!("mcpgate_session={}", cookie_value(&c)))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------
// Signing in.

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_with_401_and_no_session() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = assert_login_page(browser.open_authorize(&params).await).await;
    let r = browser
        .submit_login(&html, "alice", "not the password")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.headers().get("location").is_none());
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<p class="error" role="alert">Wrong username or password.</p>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"type="text" value="alice""#),
        "the username is kept"
    );
    assert!(
        !html.contains("not the password"),
        "the password is never echoed"
    );

    // Still signed out.
    assert_login_page(browser.open_authorize(&params).await).await;
}

#[tokio::test]
async fn an_unknown_user_gets_the_same_401_and_no_session() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = assert_login_page(browser.open_authorize(&params).await).await;
    let r = browser.submit_login(&html, "mallory", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("Wrong username or password."), "{html}");
    assert_login_page(browser.open_authorize(&params).await).await;
}

#[tokio::test]
async fn the_third_sign_in_attempt_for_one_account_within_a_minute_is_rate_limited() {
    let app = spawn_app_with(|s| s.login_rate_limit = 2).await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let client_id = app.register_public(REDIRECT).await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let mut html = assert_login_page(browser.open_authorize(&params).await).await;
    for _ in 0..2 {
        let r = browser.submit_login(&html, "alice", "wrong").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        html = r.text().await.unwrap();
    }
    // Even the right password is refused now.
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("set-cookie").is_none());
    assert_page_headers(&r);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(
            "Too many failed sign-in attempts from your address. Wait 30 seconds and try again."
        ),
        "{html}"
    );
    assert_login_page(browser.open_authorize(&params).await).await;

    // The limit is per account: bob can still sign in from the same address.
    let r = browser.submit_login(&html, "bob", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

// ---------------------------------------------------------------------------
// Consent.

#[tokio::test]
async fn the_consent_page_names_the_client_redirect_host_and_scope_and_warns_about_localhost() {
    let (app, client_id) = app_with_client().await;
    let browser = app.browser();
    let html = consent_page(&browser, &app.auth_params(&client_id, REDIRECT), "alice").await;
    assert!(
        html.contains(r#"<strong class="client-name">Test Client</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(&format!("<code>{client_id}</code>")),
        "{html}"
    );
    assert!(
        html.contains("You will be sent back to <strong>127.0.0.1:1</strong>."),
        "{html}"
    );
    assert!(html.contains("<strong>alice</strong>"), "{html}");
    assert!(
        html.contains("<li><code>mcp</code> Use the tools, resources and prompts of mcpgate on your behalf</li>"),
        "{html}"
    );
    assert!(
        html.contains(r#"<p class="warning" role="note">"#),
        "{html}"
    );
    assert!(
        html.contains("an application running on this computer (localhost)"),
        "{html}"
    );
    assert_eq!(html.matches("<form").count(), 1);
    assert_eq!(form_action(&html), "/v1/oauth/authorize");
    assert!(html.contains(r#"<input type="hidden" name="action" value="consent">"#));
    assert!(
        html.contains(r#"<button type="submit" name="decision" value="approve">Allow</button>"#)
    );
    assert!(html.contains(r#"<button type="submit" name="decision" value="deny">Deny</button>"#));
}

#[tokio::test]
async fn the_consent_page_for_an_https_redirect_has_no_localhost_warning() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let redirect = "https://app.example.com/cb";
    let client_id = app.register_public(redirect).await;
    let html = consent_page(
        &app.browser(),
        &app.auth_params(&client_id, redirect),
        "alice",
    )
    .await;
    assert!(
        html.contains("You will be sent back to <strong>app.example.com</strong>."),
        "{html}"
    );
    assert!(!html.contains(r#"class="warning""#), "{html}");
    assert!(!html.contains("(localhost)"), "{html}");
    assert!(!html.contains("Warning:"), "{html}");
}

#[tokio::test]
async fn deny_redirects_with_access_denied_the_state_and_the_issuer() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = consent_page(&browser, &params, "alice").await;
    let r = browser.submit_consent(&html, "deny").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        query_param(&loc, "error_description").as_deref(),
        Some("the user denied access")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("state-123"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.urls.issuer.as_str())
    );
    assert_eq!(query_param(&loc, "code"), None);

    // Nothing was remembered: the next request asks again.
    let r = browser.open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<h1>Allow access?</h1>"));
}

#[tokio::test]
async fn consent_is_remembered_per_user_and_client() {
    let (app, client_id) = app_with_client().await;
    app.add_user("bob").await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let first = browser
        .sign_in_and_approve(&params, "alice", PASSWORD)
        .await;
    let first_code = query_param(&first, "code").expect("code");

    // Same browser, same client and scope: a code at once, no page.
    let r = browser.open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{REDIRECT}?code=")), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("state-123"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.urls.issuer.as_str())
    );
    let second_code = query_param(&loc, "code").expect("code");
    assert_ne!(first_code, second_code);
    let r = exchange(&app, &second_code, &client_id, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Another user in another browser is asked.
    let html = consent_page(&app.browser(), &params, "bob").await;
    assert!(html.contains("<strong>bob</strong>"), "{html}");

    // And so is alice for another client.
    let other = app.register_public(REDIRECT).await;
    let r = browser
        .open_authorize(&app.auth_params(&other, REDIRECT))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<h1>Allow access?</h1>"));
}

// ---------------------------------------------------------------------------
// CSRF and tampering.

#[tokio::test]
async fn a_login_form_without_a_csrf_token_is_refused_with_403_and_no_session() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = assert_login_page(browser.open_authorize(&params).await).await;
    let mut form = without(&hidden_inputs(&html), "csrf_token");
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let r = browser.post_form("/v1/oauth/authorize", &form).await;
    assert!(r.headers().get("set-cookie").is_none());
    let page = assert_error_page(r, StatusCode::FORBIDDEN).await;
    assert!(page.contains("This form cannot be accepted"), "{page}");
    assert!(
        page.contains("security token is missing or wrong"),
        "{page}"
    );
    assert_login_page(browser.open_authorize(&params).await).await;
}

#[tokio::test]
async fn a_login_form_with_a_wrong_csrf_token_is_refused_with_403_and_no_session() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = assert_login_page(browser.open_authorize(&params).await).await;
    let mut form = with(
        &hidden_inputs(&html),
        "csrf_token",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let r = browser.post_form("/v1/oauth/authorize", &form).await;
    assert!(r.headers().get("set-cookie").is_none());
    let page = assert_error_page(r, StatusCode::FORBIDDEN).await;
    assert!(
        page.contains("security token is missing or wrong"),
        "{page}"
    );
    assert_login_page(browser.open_authorize(&params).await).await;
}

#[tokio::test]
async fn a_login_form_posted_from_a_browser_without_the_cookie_is_refused_with_403() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = assert_login_page(browser.open_authorize(&params).await).await;
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));

    // A cross-site post: the valid token, but without the browser's cookie.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/v1/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    assert_error_page(r, StatusCode::FORBIDDEN).await;

    // Another browser's cookie does not fit this token either.
    let other = app.browser();
    other.open_authorize(&params).await;
    let r = other.post_form("/v1/oauth/authorize", &form).await;
    assert_error_page(r, StatusCode::FORBIDDEN).await;
    assert_login_page(other.open_authorize(&params).await).await;
    assert_login_page(browser.open_authorize(&params).await).await;
}

#[tokio::test]
async fn a_consent_form_without_a_csrf_token_is_refused_with_403_and_no_code() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = consent_page(&browser, &params, "alice").await;
    let mut form = without(&hidden_inputs(&html), "csrf_token");
    form.push(("decision".into(), "approve".into()));
    let r = browser.post_form(&form_action(&html), &form).await;
    let page = assert_error_page(r, StatusCode::FORBIDDEN).await;
    assert!(!page.contains("code="), "{page}");

    // Nothing was approved: the consent page is shown again, and works.
    let r = browser.open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Allow access?</h1>"));
    let r = browser.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(query_param(&location(&r), "code").is_some());
}

#[tokio::test]
async fn a_consent_form_tampered_to_an_unregistered_redirect_uri_gets_an_error_page() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let html = consent_page(&browser, &params, "alice").await;
    let mut form = with(
        &hidden_inputs(&html),
        "redirect_uri",
        "https://evil.example/cb",
    );
    form.push(("decision".into(), "approve".into()));
    let r = browser.post_form(&form_action(&html), &form).await;
    let page = assert_error_page(r, StatusCode::BAD_REQUEST).await;
    assert!(
        page.contains("Redirect URI mismatch: https://evil.example/cb"),
        "{page}"
    );
    assert!(!page.contains("code="), "{page}");
}

// ---------------------------------------------------------------------------
// The code.

#[tokio::test]
async fn the_code_is_bound_to_its_client_and_can_be_exchanged_only_once() {
    let (app, client_id) = app_with_client().await;
    let other_client = app.register_public(REDIRECT).await;
    let loc = app
        .browser()
        .sign_in_and_approve(&app.auth_params(&client_id, REDIRECT), "alice", PASSWORD)
        .await;
    let code = query_param(&loc, "code").expect("code");

    // Another client cannot use it.
    let r = exchange(&app, &code, &other_client, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(
        e["error_description"],
        "this authorization code was issued to another client"
    );

    // Its client with the verifier can, once.
    let r = exchange(&app, &code, &client_id, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "mcp");
    assert!(t["access_token"].as_str().unwrap().starts_with("mcp_"));

    let r = exchange(&app, &code, &client_id, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{e}"
    );
}

#[tokio::test]
async fn the_root_authorize_path_serves_the_same_flow() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let r = browser
        .get(&format!("/authorize?{}", serde_urlencoded_pairs(&params)))
        .await;
    let html = assert_login_page(r).await;
    assert!(
        html.contains(r#"<form method="post" action="/authorize">"#),
        "{html}"
    );
    assert_eq!(form_action(&html), "/authorize");

    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(back.starts_with("/authorize?"), "{back}");
    let r = browser.get(&back).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert_eq!(form_action(&html), "/authorize");
    let r = browser.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{REDIRECT}?code=")), "{loc}");
    let code = query_param(&loc, "code").unwrap();
    let r = exchange(&app, &code, &client_id, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Errors on the root path are the same.
    let r = browser
        .get(&format!(
            "/authorize?{}",
            serde_urlencoded_pairs(&with(&params, "scope", "admin"))
        ))
        .await;
    assert_error_redirect(&app, &r, REDIRECT, "invalid_scope");
}
