//! The OAuth flow on PostgreSQL over HTTP: one server, then two servers on
//! one database (as behind a load balancer, with one public URL), where a
//! browser's and a client's consecutive requests reach different instances,
//! and where two instances receive the same code or refresh token at the
//! same moment (the rules of `refresh`, RFC 9700 §4.14.2, must hold across
//! instances: one successor, handed out again within the grace window, or
//! reuse detection when there is no grace window).

use std::time::Duration;

use mcpgate::store::Store;
use mcpgate::store::postgres::PgStore;
use mcpgate_core::crypto::hash_secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::cluster_support::two_instances_with;
use crate::helpers::{PASSWORD, TestApp, VERIFIER, location, query_param, spawn_app_with};
use crate::mcp_support::McpClient;
use crate::pg_support::PgTestDb;
use crate::token::{
    REDIRECT, access_record, exchange, expect_error, expect_tokens, refresh, refresh_record, s,
};

const VERSION: &str = "2025-06-18";

/// `whoami` over a new MCP session on `app`; returns its structured result.
async fn whoami(app: &TestApp, token: &str) -> Value {
    let mut c = McpClient::new(app, token);
    c.initialize(VERSION).await;
    let m = c.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["isError"], json!(false), "{m}");
    m["result"]["structuredContent"].clone()
}

/// The status of an MCP `initialize` with `token` on `app`.
async fn mcp_status(app: &TestApp, token: &str) -> StatusCode {
    McpClient::new(app, token)
        .post(&crate::mcp_support::initialize_body(1, VERSION))
        .send()
        .await
        .expect("initialize")
        .status()
}

/// Posts `form` to the token endpoint from several tasks at once, the tasks
/// alternating between `apps`; returns each (status, body).
async fn token_race(apps: &[&TestApp], form: Vec<(String, String)>) -> Vec<(StatusCode, Value)> {
    const TASKS: usize = 8;
    let barrier = std::sync::Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let app = apps[i % apps.len()];
            let (http, url) = (app.http.clone(), app.url("/v1/oauth/token"));
            let (form, barrier) = (form.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let r = http.post(url).form(&form).send().await.expect("request");
                let status = r.status();
                (status, r.json::<Value>().await.expect("JSON"))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn refresh_form(rt: &str, client_id: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), rt.into()),
        ("client_id".into(), client_id.into()),
    ]
}

#[tokio::test]
async fn the_whole_flow_runs_on_postgresql() {
    let db = PgTestDb::create().await;
    let app = spawn_app_with(|s| s.database_url = db.url().to_string()).await;
    app.add_user("alice").await;

    // register -> authorize (sign in, consent) -> token
    let client_id = app.register_public(REDIRECT).await;
    let code = app
        .authorize("alice", &app.auth_params(&client_id, REDIRECT))
        .await;
    let t1 = expect_tokens(exchange(&app, &code, &client_id).await).await;
    let (at1, rt1) = (s(&t1, "access_token"), s(&t1, "refresh_token"));

    // -> MCP call
    let who = whoami(&app, &at1).await;
    assert_eq!(who["user"], "alice");
    assert_eq!(who["client_id"], json!(client_id));

    // -> refresh -> MCP call with the new token
    app.clock.advance(5);
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let (at2, rt2) = (s(&t2, "access_token"), s(&t2, "refresh_token"));
    assert_ne!(at2, at1);
    assert_eq!(whoami(&app, &at2).await["user"], "alice");

    // Everything is in PostgreSQL: a store of its own on the database sees it.
    let direct = PgStore::connect(db.url()).await.unwrap();
    assert_eq!(
        direct
            .user_by_username("alice")
            .await
            .unwrap()
            .unwrap()
            .username,
        "alice"
    );
    let old = direct
        .refresh_token(&hash_secret(&rt1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.successor_hash, Some(hash_secret(&rt2)));

    // -> revoke the refresh token: its whole grant goes.
    let r = app
        .http
        .post(app.url("/v1/oauth/revoke"))
        .form(&[("token", rt2.as_str()), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = refresh(&app, &rt2, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    assert_eq!(mcp_status(&app, &at2).await, StatusCode::UNAUTHORIZED);
    assert!(
        direct
            .access_token(&hash_secret(&at2))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );

    // A restart on the same database keeps the user and the client.
    let app = app
        .restart_with(|s| s.database_url = db.url().to_string())
        .await;
    let r = app
        .http
        .post(app.url("/v1/oauth/token"))
        .form(&refresh_form(&rt2, &client_id))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    let code = app
        .authorize("alice", &app.auth_params(&client_id, REDIRECT))
        .await;
    let t3 = expect_tokens(exchange(&app, &code, &client_id).await).await;
    assert_eq!(whoami(&app, &s(&t3, "access_token")).await["user"], "alice");
}

#[tokio::test]
async fn a_browser_and_a_client_bouncing_between_two_instances_complete_the_flow() {
    let (_db, a, b) = two_instances_with(|_| {}).await;
    a.add_user("alice").await;
    // Registered on b, authorized through both, exchanged on a.
    let client_id = b.register_public(REDIRECT).await;
    assert_eq!(a.resource(), b.resource(), "one resource for both");
    let params = a.auth_params(&client_id, REDIRECT);

    // The browser's requests alternate between a and b; its cookie jar
    // holds the instances' cookies (same host, other port).
    let mut browser = a.browser();
    let r = browser.open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::OK, "a shows the login page");
    let html = r.text().await.unwrap();
    browser.base = b.base.clone();
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "b accepts a's login form (its CSRF token)"
    );
    let back = location(&r);
    browser.base = a.base.clone();
    let r = browser.get(&back).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a knows the login session made on b and asks for consent"
    );
    let html = r.text().await.unwrap();
    browser.base = b.base.clone();
    let r = browser.submit_consent(&html, "approve").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "b accepts a's consent form"
    );
    let code = query_param(&location(&r), "code").expect("a code");

    // The code issued on b is exchanged on a, and the token works on both.
    let t = expect_tokens(exchange(&a, &code, &client_id).await).await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
    assert_eq!(whoami(&b, &at).await["user"], "alice");
    assert_eq!(whoami(&a, &at).await["user"], "alice");

    // Refreshed on b, used on a.
    let t2 = expect_tokens(refresh(&b, &rt, &client_id).await).await;
    let at2 = s(&t2, "access_token");
    assert_eq!(whoami(&a, &at2).await["user"], "alice");

    // The consent given through a and b is remembered on b.
    let r = browser.open_authorize(&params).await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "signed in, consent remembered"
    );
    assert!(location(&r).contains("code="));

    // The code is spent for both instances: replayed on b, it is refused
    // and revokes the grant (RFC 6749 §4.1.2), refreshed tokens included.
    let r = exchange(&b, &code, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;
    assert_eq!(mcp_status(&b, &at2).await, StatusCode::UNAUTHORIZED);
    let r = refresh(&a, &s(&t2, "refresh_token"), &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_redeemed_on_two_instances_at_once_succeeds_once() {
    let (_db, a, b) = two_instances_with(|_| {}).await;
    a.add_user("alice").await;
    let client_id = a.register_public(REDIRECT).await;
    let code = a
        .authorize("alice", &a.auth_params(&client_id, REDIRECT))
        .await;
    let form = vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code),
        ("redirect_uri".into(), REDIRECT.into()),
        ("client_id".into(), client_id.clone()),
        ("code_verifier".into(), VERIFIER.into()),
        ("resource".into(), a.resource()),
    ];
    let results = token_race(&[&a, &b], form).await;
    let ok: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "exactly one redemption succeeds: {results:?}");
    for (status, body) in &results {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    // The code reused after the success revokes what it issued (RFC 6749
    // §4.1.2), wherever the reuse arrived.
    let at = s(&ok[0].1, "access_token");
    assert!(access_record(&a, &at).await.revoked_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_refreshing_one_token_at_once_hand_out_one_successor() {
    // The default 30-second grace window.
    let (_db, a, b) = two_instances_with(|_| {}).await;
    a.add_user("alice").await;
    let (client_id, t) = a.full_flow("alice").await;
    let rt1 = s(&t, "refresh_token");

    let results = token_race(&[&a, &b], refresh_form(&rt1, &client_id)).await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let first = &results[0].1;
    for (_, body) in &results {
        assert_eq!(body["access_token"], first["access_token"]);
        assert_eq!(body["refresh_token"], first["refresh_token"]);
    }
    let (at2, rt2) = (s(first, "access_token"), s(first, "refresh_token"));
    assert_ne!(rt2, rt1);
    let old = refresh_record(&b, &rt1).await;
    assert_eq!(old.successor_hash, Some(hash_secret(&rt2)));
    assert_eq!(old.revoked_at, None);
    let successor = refresh_record(&a, &rt2).await;
    assert_eq!((successor.rotated_at, successor.revoked_at), (None, None));
    assert_eq!(access_record(&a, &at2).await.revoked_at, None);

    // Both instances serve the successor, which rotates in turn.
    assert_eq!(whoami(&b, &at2).await["user"], "alice");
    let t3 = expect_tokens(refresh(&b, &rt2, &client_id).await).await;
    assert_ne!(s(&t3, "refresh_token"), rt2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_grace_window_one_token_refreshed_on_two_instances_at_once_revokes_its_family() {
    let (_db, a, b) = two_instances_with(|s| s.refresh_grace_period = Duration::ZERO).await;
    a.add_user("alice").await;
    let (client_id, t) = a.full_flow("alice").await;
    let (at1, rt1) = (s(&t, "access_token"), s(&t, "refresh_token"));

    let results = token_race(&[&a, &b], refresh_form(&rt1, &client_id)).await;
    let ok: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "exactly one rotation wins: {results:?}");
    for (status, body) in &results {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    // The other requests were reuse: the whole family is revoked, the
    // winner's tokens included.
    let (at2, rt2) = (s(&ok[0].1, "access_token"), s(&ok[0].1, "refresh_token"));
    let r = refresh(&b, &rt2, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    for at in [&at1, &at2] {
        assert!(access_record(&a, at).await.revoked_at.is_some());
    }
    assert!(refresh_record(&b, &rt1).await.revoked_at.is_some());
    assert_eq!(mcp_status(&b, &at2).await, StatusCode::UNAUTHORIZED);
}
