//! The account page, `GET /account` and `POST /account`: each signed-in
//! user sees only the applications they granted access to, and Revoke
//! ends that grant (its access and refresh tokens, and the event streams
//! they opened) and nothing else. The Revoke form needs the CSRF token of
//! the browser session; a grant of another user is "not found".

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Browser, PASSWORD, TestApp, form_action, hidden_inputs, location, spawn_app};
use crate::mcp_support::{MCP, McpClient, bearer, header, initialize_body};
use crate::token::{refresh, s};

const VERSION: &str = "2025-06-18";

/// A browser signed in as `user` through the account page's own sign-in
/// form: not signed in, `/account` shows the sign-in page, which comes
/// back to `/account`. Returns the browser and the account page.
async fn account_browser(app: &TestApp, user: &str) -> (Browser, String) {
    let browser = app.browser();
    let r = browser.get("/account").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    assert!(
        html.contains("to see the applications you let in"),
        "{html}"
    );
    assert_eq!(form_action(&html), "/account");
    let r = browser.submit_login(&html, user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account");
    let html = account_page(&browser).await;
    (browser, html)
}

async fn account_page(browser: &Browser) -> String {
    let r = browser.get("/account").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    let csp = header(&r, "content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Your account</h1>"), "{html}");
    html
}

/// The grant ids of the page's Revoke forms.
fn grants(html: &str) -> Vec<String> {
    hidden_inputs(html)
        .into_iter()
        .filter(|(k, _)| k == "grant")
        .map(|(_, v)| v)
        .collect()
}

fn csrf(html: &str) -> String {
    hidden_inputs(html)
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
        .expect("a csrf_token")
}

fn revoke_form(csrf: Option<&str>, grant: &str) -> Vec<(String, String)> {
    let mut form = vec![
        ("action".to_string(), "revoke".to_string()),
        ("grant".to_string(), grant.to_string()),
    ];
    if let Some(c) = csrf {
        form.push(("csrf_token".into(), c.into()));
    }
    form
}

/// The status of an MCP `initialize` with `token`.
async fn mcp_status(app: &TestApp, token: &str) -> StatusCode {
    app.http
        .post(app.url(MCP))
        .header("authorization", bearer(token))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_body(1, VERSION).to_string())
        .send()
        .await
        .unwrap()
        .status()
}

/// Adds `user` and runs `flows` OAuth flows (each a new client); returns
/// the token responses with their client ids, oldest first.
async fn user_with_grants(app: &TestApp, user: &str, flows: usize) -> Vec<(String, Value)> {
    app.add_user(user).await;
    let mut out = Vec::new();
    for _ in 0..flows {
        out.push(app.full_flow(user).await);
        // Later flows are newer uses, listed first.
        app.clock.advance(10);
    }
    out
}

/// The standalone GET stream of a new Streamable HTTP session of `token`.
async fn open_stream(app: &TestApp, token: &str) -> reqwest::Response {
    let mut client = McpClient::new(app, token);
    client.initialize(VERSION).await;
    let session = client.session.clone().unwrap();
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r
}

/// Whether the stream's body ends within `limit` (an error fails the test).
async fn ends_within(resp: &mut reqwest::Response, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return false,
            Ok(Ok(None)) => return true,
            Ok(Ok(Some(_))) => {}
            Ok(Err(e)) => panic!("the stream broke instead of ending cleanly: {e}"),
        }
    }
}

#[tokio::test]
async fn each_user_sees_only_the_applications_they_granted_access_to() {
    let app = spawn_app().await;
    user_with_grants(&app, "alice", 2).await;
    user_with_grants(&app, "bob", 1).await;

    let (_, alice) = account_browser(&app, "alice").await;
    let (_, bob) = account_browser(&app, "bob").await;
    let (alice_grants, bob_grants) = (grants(&alice), grants(&bob));
    assert_eq!(alice_grants.len(), 2, "{alice}");
    assert_eq!(bob_grants.len(), 1, "{bob}");
    assert!(
        alice_grants.iter().all(|g| !bob_grants.contains(g)),
        "a grant on both pages"
    );
    for html in [&alice, &bob] {
        assert!(html.contains("Test Client"), "{html}");
        assert!(html.contains("self-registered"), "{html}");
        assert!(html.contains("<dd>mcp</dd>"), "the scopes: {html}");
        assert!(
            html.contains(" UTC</dd>"),
            "when granted and last used: {html}"
        );
        // Sign-out posts the CSRF token to the logout endpoint.
        assert!(html.contains("action=\"/logout\""), "{html}");
    }
    assert!(alice.contains("Signed in as <strong>alice</strong>"));
    assert!(bob.contains("Signed in as <strong>bob</strong>"));
}

#[tokio::test]
async fn revoking_an_application_ends_its_tokens_and_open_streams_and_nothing_else() {
    let app = spawn_app().await;
    let alice = user_with_grants(&app, "alice", 2).await;
    let bob = user_with_grants(&app, "bob", 1).await;
    let (alice_client, alice_tokens) = &alice[0];
    let alice_at = s(alice_tokens, "access_token");
    let alice_rt = s(alice_tokens, "refresh_token");
    let alice_other_at = s(&alice[1].1, "access_token");
    let bob_at = s(&bob[0].1, "access_token");

    let mut doomed = open_stream(&app, &alice_at).await;
    let mut bobs = open_stream(&app, &bob_at).await;
    let mut kept = open_stream(&app, &alice_other_at).await;

    let (browser, html) = account_browser(&app, "alice").await;
    let before = grants(&html);
    // The newest use comes first: the first flow's grant is listed last.
    let target = before.last().unwrap().clone();
    let r = browser
        .post_form("/account", &revoke_form(Some(&csrf(&html)), &target))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Revoked access for Test Client."), "{html}");
    assert_eq!(grants(&html), vec![before[0].clone()], "{html}");

    assert!(
        ends_within(&mut doomed, Duration::from_secs(3)).await,
        "the revoked grant's stream is still open"
    );
    assert_eq!(mcp_status(&app, &alice_at).await, StatusCode::UNAUTHORIZED);
    let r = refresh(&app, &alice_rt, alice_client).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    // The revoked application must ask again; the other one's consent is
    // still remembered (straight back with a code).
    let redirect = "http://127.0.0.1:1/callback";
    let r = browser
        .open_authorize(&app.auth_params(alice_client, redirect))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<h1>Allow access?</h1>"));
    let r = browser
        .open_authorize(&app.auth_params(&alice[1].0, redirect))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);

    // Alice's other application and bob are untouched.
    assert!(!ends_within(&mut kept, Duration::from_millis(800)).await);
    assert!(!ends_within(&mut bobs, Duration::from_millis(100)).await);
    assert_eq!(mcp_status(&app, &alice_other_at).await, StatusCode::OK);
    assert_eq!(mcp_status(&app, &bob_at).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revoke_without_the_csrf_token_is_refused_and_revokes_nothing() {
    let app = spawn_app().await;
    let alice = user_with_grants(&app, "alice", 1).await;
    let at = s(&alice[0].1, "access_token");
    let (browser, html) = account_browser(&app, "alice").await;
    let grant = grants(&html).remove(0);

    for csrf in [None, Some("forged")] {
        let r = browser
            .post_form("/account", &revoke_form(csrf, &grant))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        let page = r.text().await.unwrap();
        assert!(page.contains("This form cannot be accepted"), "{page}");
        assert!(
            page.contains("security token is missing or wrong"),
            "{page}"
        );
    }
    assert_eq!(mcp_status(&app, &at).await, StatusCode::OK);
    assert_eq!(grants(&account_page(&browser).await), vec![grant]);
}

#[tokio::test]
async fn another_users_grant_is_not_found_and_stays_live() {
    let app = spawn_app().await;
    let alice = user_with_grants(&app, "alice", 1).await;
    user_with_grants(&app, "bob", 1).await;
    let alice_at = s(&alice[0].1, "access_token");
    let (_, alice_html) = account_browser(&app, "alice").await;
    let alice_grant = grants(&alice_html).remove(0);

    let (bob_browser, bob_html) = account_browser(&app, "bob").await;
    for grant in [alice_grant.as_str(), "no-such-grant"] {
        let r = bob_browser
            .post_form("/account", &revoke_form(Some(&csrf(&bob_html)), grant))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let page = r.text().await.unwrap();
        assert!(page.contains("No such application"), "{page}");
    }
    assert_eq!(mcp_status(&app, &alice_at).await, StatusCode::OK);
    assert_eq!(grants(&account_page(&bob_browser).await).len(), 1);
    let (_, alice_html) = account_browser(&app, "alice").await;
    assert_eq!(grants(&alice_html), vec![alice_grant]);
}

#[tokio::test]
async fn a_post_from_a_browser_not_signed_in_changes_nothing() {
    let app = spawn_app().await;
    let alice = user_with_grants(&app, "alice", 1).await;
    let at = s(&alice[0].1, "access_token");
    let (_, html) = account_browser(&app, "alice").await;
    let grant = grants(&html).remove(0);
    // A new browser: no cookie, so no CSRF token can match.
    let r = app
        .browser()
        .post_form("/account", &revoke_form(Some(&csrf(&html)), &grant))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(mcp_status(&app, &at).await, StatusCode::OK);
}
