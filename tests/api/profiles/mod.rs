//! Client compatibility profiles: each module replays over real HTTP what
//! one MCP client is reported to send (`reference/clients.md`, the seeds),
//! from discovery to a successful `tools/call` and a refresh.
//!
//! The helpers here act as such a client would: they follow the URLs the
//! metadata documents advertise (issuer `http://localhost:<port>`, mapped to
//! `127.0.0.1:<port>` for the request) and drive the sign-in and consent
//! pages as a browser, recording every redirect on the way.

mod chatgpt;
mod claude;
mod claude_code;
mod insomnia;
mod inspector;

use mcpgate_core::crypto::random_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, TestApp, location, s256, serde_urlencoded_pairs};
use crate::mcp_support::{MCP, McpClient, header, initialize_body, missing_token_challenge};

/// The account every profile signs in with.
pub const USER: &str = "alice";

/// The URL a client would use for an advertised `url`, on the test's
/// listening address.
pub fn local(app: &TestApp, url: &str) -> String {
    let rest = url
        .strip_prefix(app.urls.issuer.as_str())
        .unwrap_or_else(|| panic!("{url} is not below the issuer {}", app.urls.issuer));
    app.url(rest)
}

/// The path (and query) of an advertised URL, for [`Browser::get`].
pub fn path_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(app.urls.issuer.as_str())
        .unwrap_or_else(|| panic!("{url} is not below the issuer {}", app.urls.issuer))
        .to_string()
}

/// A fresh PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = random_hex::<32>();
    let challenge = s256(&verifier);
    (verifier, challenge)
}

/// The metadata documents a client found.
pub struct Discovered {
    /// The protected resource metadata (RFC 9728).
    pub prm: Value,
    /// The authorization server metadata (RFC 8414).
    pub asm: Value,
}

impl Discovered {
    /// An endpoint URL of the authorization server metadata.
    pub fn endpoint(&self, name: &str) -> String {
        self.asm[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {}", self.asm))
            .to_string()
    }
}

/// GETs a public JSON document; asserts 200 and JSON.
pub async fn get_document(app: &TestApp, url: &str) -> Value {
    let r = app.http.get(local(app, url)).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    let ct = header(&r, "content-type").expect("content-type");
    assert!(ct.starts_with("application/json"), "{url}: {ct}");
    r.json().await.expect("JSON")
}

/// The discovery of the MCP authorization spec: an unauthenticated POST to
/// the MCP endpoint, its 401 challenge, the protected resource metadata
/// it names, then the authorization server metadata of its issuer.
pub async fn discover(app: &TestApp) -> Discovered {
    let r = app
        .http
        .post(app.url(MCP))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_body(1, "2025-06-18").to_string())
        .send()
        .await
        .expect("POST MCP");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&r, "www-authenticate").expect("WWW-Authenticate");
    assert_eq!(challenge, missing_token_challenge(app));
    let prm_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("resource_metadata in the challenge")
        .to_string();
    assert_eq!(prm_url, app.urls.resource_metadata);

    let prm = get_document(app, &prm_url).await;
    assert_eq!(prm["resource"], app.resource());
    assert_eq!(prm["authorization_servers"], json!([app.urls.issuer]));
    assert_eq!(prm["scopes_supported"], json!(["mcp"]));

    let issuer = prm["authorization_servers"][0].as_str().expect("issuer");
    let asm = get_document(
        app,
        &format!("{issuer}/.well-known/oauth-authorization-server"),
    )
    .await;
    assert_eq!(asm["issuer"], issuer);
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(asm["scopes_supported"], json!(["mcp", "offline_access"]));
    Discovered { prm, asm }
}

/// POSTs a registration request (JSON) to `url`; asserts 201 and returns
/// the response body.
pub async fn register(app: &TestApp, url: &str, body: &Value) -> Value {
    let r = app
        .http
        .post(local(app, url))
        .json(body)
        .send()
        .await
        .expect("register");
    let status = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(status, StatusCode::CREATED, "registration: {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// Asserts a fresh client secret in a registration response and returns it.
pub fn issued_secret(reg: &Value) -> String {
    let secret = reg["client_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("client_secret in {reg}"))
        .to_string();
    assert!(secret.starts_with("mcps_"), "{secret}");
    assert_eq!(secret.len(), "mcps_".len() + 64, "{secret}");
    assert_eq!(reg["client_secret_expires_at"], 0);
    secret
}

/// What a browser went through for one authorization request.
pub struct Authorized {
    /// The final `Location`, on the client's redirect URI.
    pub callback: String,
    /// The status of every redirect, in order.
    pub redirects: Vec<StatusCode>,
    /// The pages shown, in order (`login`, `consent`).
    pub pages: Vec<&'static str>,
}

impl Authorized {
    pub fn param(&self, name: &str) -> Option<String> {
        crate::helpers::query_param(&self.callback, name)
    }

    pub fn code(&self) -> String {
        self.param("code")
            .unwrap_or_else(|| panic!("a code in {}", self.callback))
    }
}

/// Whether a `Location` leaves this server (for the client's redirect URI).
fn leaves_server(app: &TestApp, loc: &str) -> bool {
    !(loc.starts_with('/') || loc.starts_with(&app.base) || loc.starts_with(&app.urls.issuer))
}

/// Opens `authorization_endpoint?params` in `browser` and walks the flow as
/// a user would: signs in as [`USER`] on a login page, clicks `decision` on
/// a consent page, follows redirects on this server, and stops at the first
/// redirect that leaves it.
pub async fn authorize_in(
    app: &TestApp,
    browser: &Browser,
    authorization_endpoint: &str,
    params: &[(&str, &str)],
    decision: &str,
) -> Authorized {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let first = format!(
        "{}?{}",
        path_of(app, authorization_endpoint),
        serde_urlencoded_pairs(&owned)
    );
    let mut r = browser.get(&first).await;
    let mut redirects = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..10 {
        let status = r.status();
        if status.is_redirection() {
            redirects.push(status);
            let loc = location(&r);
            if leaves_server(app, &loc) {
                return Authorized {
                    callback: loc,
                    redirects,
                    pages,
                };
            }
            let path = loc
                .strip_prefix(&app.base)
                .or_else(|| loc.strip_prefix(app.urls.issuer.as_str()))
                .unwrap_or(&loc)
                .to_string();
            r = browser.get(&path).await;
            continue;
        }
        let html = r.text().await.expect("html");
        assert_eq!(status, StatusCode::OK, "an unexpected page: {html}");
        if html.contains(r#"name="action" value="login""#) {
            pages.push("login");
            r = browser.submit_login(&html, USER, PASSWORD).await;
        } else if html.contains("<h1>Allow access?</h1>") {
            pages.push("consent");
            r = browser.submit_consent(&html, decision).await;
        } else {
            panic!("neither a login nor a consent page: {html}");
        }
    }
    panic!("the authorization flow did not end in 10 steps");
}

/// A client authenticating at the token endpoint.
pub enum ClientAuth<'a> {
    /// `client_id` (and any other fields) in the body only.
    Body,
    /// `Authorization: Basic base64(id:secret)`.
    Basic(&'a str, &'a str),
}

/// POSTs a form to an advertised token endpoint; returns the response.
pub async fn post_token(
    app: &TestApp,
    token_endpoint: &str,
    form: &[(&str, &str)],
    auth: ClientAuth<'_>,
) -> reqwest::Response {
    let mut rb = app.http.post(local(app, token_endpoint)).form(form);
    if let ClientAuth::Basic(id, secret) = auth {
        rb = rb.header("authorization", crate::token::basic(id, secret));
    }
    rb.send().await.expect("token request")
}

/// Asserts a successful token response (and its headers) and returns it.
pub async fn tokens(r: reqwest::Response) -> Value {
    assert_eq!(
        header(&r, "cache-control").as_deref(),
        Some("no-store"),
        "token responses are not cached"
    );
    let t = crate::token::expect_tokens(r).await;
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert_eq!(t["scope"], "mcp", "{t}");
    assert_eq!(t["expires_in"], 86_400, "{t}");
    let at = t["access_token"].as_str().expect("access_token");
    assert!(at.starts_with("mcp_") && at.len() == 36, "{at}");
    let rt = t["refresh_token"].as_str().expect("refresh_token");
    assert!(rt.starts_with("mcpr_"), "{rt}");
    t
}

/// Calls `whoami` over Streamable HTTP with `token` (initialize, initialized,
/// tools/call) and asserts who the server says the caller is.
pub async fn assert_whoami(app: &TestApp, token: &str, client_id: &str) {
    let mut c = McpClient::new(app, token);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["isError"], false, "{m}");
    let s = &m["result"]["structuredContent"];
    assert_eq!(s["user"], USER, "{m}");
    assert_eq!(s["client_id"], client_id, "{m}");
    assert_eq!(s["scopes"], json!(["mcp"]), "{m}");
    let text = m["result"]["content"][0]["text"].as_str().expect("text");
    assert!(text.starts_with(&format!("You are {USER} ")), "{text}");
}
