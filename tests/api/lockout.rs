//! Nobody can lock a user out: failed sign-ins are limited per (account,
//! address) and per address with hard limits, while the account as a whole
//! is only slowed down (a growing delay), so the right password from
//! another address always works. The client address is the TCP peer, or
//! the `X-Forwarded-For` client when the peer is a trusted proxy.
//!
//! Distinct client addresses are real: the browsers bind 127.0.0.2,
//! 127.0.0.3, ... (all loopback on Linux).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::redirect::Policy;

use crate::helpers::{Browser, PASSWORD, TestApp, form_action, hidden_inputs, spawn_app_with};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

/// A browser whose connections come from `ip` (a loopback address).
fn browser_from(app: &TestApp, ip: &str) -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .cookie_store(true)
            .local_address(ip.parse::<IpAddr>().unwrap())
            .build()
            .unwrap(),
        base: app.base.clone(),
    }
}

/// A server with `login_rate_limit = limit`, users carol and bob, and a
/// client; returns the app and the authorization request parameters.
async fn app_with(
    limit: u32,
    tweak: impl FnOnce(&mut mcpgate::config::Settings),
) -> (TestApp, Vec<(String, String)>) {
    let app = spawn_app_with(|s| {
        s.login_rate_limit = limit;
        tweak(s);
    })
    .await;
    app.add_user("carol").await;
    app.add_user("bob").await;
    let client_id = app.register_public(REDIRECT).await;
    let params = app.auth_params(&client_id, REDIRECT);
    (app, params)
}

async fn login_page(b: &Browser, params: &[(String, String)]) -> String {
    let r = b.open_authorize(params).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// Posts the sign-in form with an `X-Forwarded-For` header.
async fn submit_forwarded(
    b: &Browser,
    html: &str,
    username: &str,
    password: &str,
    forwarded_for: &str,
) -> reqwest::Response {
    let mut form = hidden_inputs(html);
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    b.http
        .post(format!("{}{}", b.base, form_action(html)))
        .header("x-forwarded-for", forwarded_for)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The wait a rate-limited page announces, in seconds.
fn announced_wait(html: &str) -> u64 {
    let after = html
        .split("Wait ")
        .nth(1)
        .unwrap_or_else(|| panic!("no wait in {html}"));
    after
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number of seconds in {html}"))
}

#[tokio::test]
async fn an_attacker_failing_on_carol_cannot_stop_carol_signing_in_from_her_own_address() {
    let (app, params) = app_with(3, |_| {}).await;
    let attacker = browser_from(&app, "127.0.0.2");
    let mut html = login_page(&attacker, &params).await;
    for _ in 0..3 {
        let r = attacker
            .submit_login(&html, "carol", "wrong password")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        html = r.text().await.unwrap();
    }
    // The attacker's address is limited on carol, even with her password.
    let r = attacker.submit_login(&html, "carol", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many failed sign-in attempts"), "{page}");
    assert!(announced_wait(&page) > 0);

    // Carol, from her own address, signs in at once.
    let carol = browser_from(&app, "127.0.0.3");
    let html = login_page(&carol, &params).await;
    let r = carol.submit_login(&html, "carol", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_limited_address_is_told_how_long_to_wait_and_may_try_again_after_that() {
    let (app, params) = app_with(2, |_| {}).await;
    let attacker = browser_from(&app, "127.0.0.2");
    let mut html = login_page(&attacker, &params).await;
    for _ in 0..2 {
        let r = attacker
            .submit_login(&html, "carol", "wrong password")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        html = r.text().await.unwrap();
    }
    let r = attacker
        .submit_login(&html, "carol", "wrong password")
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let page = r.text().await.unwrap();
    let wait = announced_wait(&page);
    assert_eq!(wait as i64, retry_after, "{page}");
    assert!((1..=60).contains(&wait), "{page}");
    app.clock.advance(retry_after);
    let r = attacker.submit_login(&page, "carol", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "allowed again");
}

#[tokio::test]
async fn an_address_failing_on_many_accounts_is_limited_on_every_account() {
    // Per address: three times the per-account limit.
    let (app, params) = app_with(2, |_| {}).await;
    let attacker = browser_from(&app, "127.0.0.2");
    let mut html = login_page(&attacker, &params).await;
    for i in 0..6 {
        let r = attacker
            .submit_login(&html, &format!("nobody{i}"), "wrong password")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        html = r.text().await.unwrap();
    }
    let r = attacker.submit_login(&html, "bob", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Bob, elsewhere, is not affected.
    let bob = browser_from(&app, "127.0.0.4");
    let html = login_page(&bob, &params).await;
    let r = bob.submit_login(&html, "bob", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn attempts_on_an_account_over_its_failure_limit_are_delayed_but_the_right_password_works() {
    let (app, params) = app_with(2, |_| {}).await;
    // Five addresses fail twice each on carol: ten failures, limit two.
    for n in 2..7 {
        let attacker = browser_from(&app, &format!("127.0.0.{n}"));
        let mut html = login_page(&attacker, &params).await;
        for _ in 0..2 {
            let r = attacker
                .submit_login(&html, "carol", "wrong password")
                .await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            html = r.text().await.unwrap();
        }
    }
    // The delay grows with the failures beyond the limit, to its cap.
    assert_eq!(app.auth.sign_in_delay("CAROL"), Duration::from_secs(2));
    assert_eq!(app.auth.sign_in_delay("bob"), Duration::ZERO);
    let carol = browser_from(&app, "127.0.0.9");
    let html = login_page(&carol, &params).await;
    let started = Instant::now();
    let r = carol.submit_login(&html, "carol", PASSWORD).await;
    let took = started.elapsed();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "not blocked, only slowed"
    );
    // The delay is a server-side sleep; a sleep never ends early.
    assert!(took >= Duration::from_millis(1000), "took {took:?}");
}

#[tokio::test]
async fn the_account_delay_starts_after_the_limit_and_grows() {
    let (app, params) = app_with(2, |_| {}).await;
    let mut delays = Vec::new();
    for n in 2..6 {
        let attacker = browser_from(&app, &format!("127.0.0.{n}"));
        let html = login_page(&attacker, &params).await;
        let r = attacker
            .submit_login(&html, "carol", "wrong password")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        delays.push(app.auth.sign_in_delay("carol"));
    }
    assert_eq!(
        delays,
        [0, 0, 250, 500].map(Duration::from_millis),
        "none up to the limit, then doubling"
    );
    // A minute later the account's failures have drained.
    app.clock.advance(60);
    assert_eq!(app.auth.sign_in_delay("carol"), Duration::ZERO);
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_names_the_client() {
    let (app, params) = app_with(2, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.registration_rate_limit = 1;
    })
    .await;
    // Requests come from 127.0.0.1, the trusted proxy.
    let proxy = app.browser();
    let mut html = login_page(&proxy, &params).await;
    for _ in 0..2 {
        let r = submit_forwarded(&proxy, &html, "carol", "wrong password", "203.0.113.7").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        html = r.text().await.unwrap();
    }
    let r = submit_forwarded(&proxy, &html, "carol", PASSWORD, "203.0.113.7").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker is limited"
    );
    // A forged left part does not help: nginx appends the real address.
    let r = submit_forwarded(
        &proxy,
        &html,
        "carol",
        PASSWORD,
        "198.51.100.9, 203.0.113.7",
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Carol, through the same proxy from her own address, signs in.
    let r = submit_forwarded(&proxy, &html, "carol", PASSWORD, "198.51.100.9").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Registration limits use the same address.
    let register = |from: &'static str| {
        app.http
            .post(app.url("/v1/oauth/register"))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
            .send()
    };
    // (app_with registered once from 127.0.0.1 itself, without the header.)
    assert_eq!(
        register("192.0.2.1").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        register("192.0.2.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        register("192.0.2.2").await.unwrap().status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (app, params) = app_with(2, |_| {}).await;
    let attacker = browser_from(&app, "127.0.0.2");
    let mut html = login_page(&attacker, &params).await;
    for i in 0..2 {
        let r = submit_forwarded(
            &attacker,
            &html,
            "carol",
            "wrong password",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        html = r.text().await.unwrap();
    }
    // A new spoofed address does not escape the limit of the real one.
    let r = submit_forwarded(&attacker, &html, "carol", PASSWORD, "198.51.100.99").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
