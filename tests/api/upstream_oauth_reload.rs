//! `auth = "oauth"` upstreams by live reload (docs/operations.md,
//! "Reload"; docs/upstream-oauth.md): added, removed and changed like any
//! other upstream, with two users' sessions open. A removed upstream's
//! pending links and sign-ins end on their own page; its users' tokens are
//! kept and count again when it returns at the same URL; a token is never
//! used with another URL than the one it was issued for. The upstreams are
//! real mcpgates with their own authorization servers.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{FIXTURE, connect, next, tool_names, user_id};
use crate::helpers::{Browser, PASSWORD, TestApp, location, spawn_app_from_file};
use crate::mcp_support::{bearer, signed_in};
use crate::upstream_oauth::{connect_with_link, upstream};

fn fixture_toml() -> String {
    format!("[[upstream]]\nname = \"fx\"\ncommand = {FIXTURE:?}\n")
}

fn oauth_toml(b: &TestApp) -> String {
    format!(
        "[[upstream]]\nname = \"b\"\nurl = \"{}\"\nauth = \"oauth\"\nisolation = \"per_user\"\n",
        b.resource()
    )
}

/// A gateway configured by a file in its own directory; returns the file.
async fn spawn_with(config: &str) -> (TestApp, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mcpgate.toml");
    std::fs::write(&file, config).expect("write the config");
    (spawn_app_from_file(dir, file.clone()).await, file)
}

async fn reload(a: &TestApp, file: &Path, config: &str) -> mcpgate::reload::Report {
    std::fs::write(file, config).expect("write the config");
    let report = a.reloader.reload().await.expect("the reload succeeds");
    assert!(report.needs_restart.is_empty(), "{report:?}");
    report
}

async fn rest_call(a: &TestApp, token: &str, tool: &str) -> (StatusCode, Value) {
    let r = a
        .http
        .post(a.url(&format!("/tools/{tool}")))
        .header("authorization", bearer(token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// The account the upstream saw, through the gateway; `None` if the call
/// did not reach it.
async fn upstream_account(a: &TestApp, token: &str) -> Option<String> {
    let (status, v) = rest_call(a, token, "b_whoami").await;
    if status != StatusCode::OK || v["isError"] == true {
        return None;
    }
    v["structuredContent"]["user"].as_str().map(str::to_string)
}

/// A connect link of `b` for `token`'s user (the tool's result over REST).
async fn link(a: &TestApp, token: &str) -> String {
    let (status, v) = rest_call(a, token, "b_connect").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let text = v["content"][0]["text"].as_str().unwrap();
    text.split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_string()
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

/// Opens `link` at the gateway signed in as `gateway_user`, signs in and
/// approves at the upstream as `upstream_user`; returns the gateway's
/// browser and the callback, not yet opened.
async fn sign_in_until_callback(
    a: &TestApp,
    b: &TestApp,
    link: &str,
    gateway_user: &str,
    upstream_user: &str,
) -> (Browser, String) {
    let browser_a = a.browser();
    let r = browser_a
        .get(link.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    let html = r.text().await.unwrap();
    let r = browser_a.submit_login(&html, gateway_user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser_a.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let authorize = location(&r);
    let browser_b = Browser {
        base: b.urls.issuer.clone(),
        ..b.browser()
    };
    let r = browser_b.http.get(&authorize).send().await.unwrap();
    let html = r.text().await.unwrap();
    let r = browser_b.submit_login(&html, upstream_user, PASSWORD).await;
    let r = browser_b.get(&location(&r)).await;
    let html = r.text().await.unwrap();
    let r = browser_b.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    (browser_a, location(&r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_upstream_comes_and_goes_by_reload_and_each_user_keeps_their_own_connection() {
    let b = upstream().await;
    let (a, file) = spawn_with(&fixture_toml()).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;
    let (alice_session, mut alice_events) = connect(&a, &alice).await;
    let (bob_session, mut bob_events) = connect(&a, &bob).await;
    assert!(!has(&tool_names(&alice_session).await, "b_connect"));

    // Added: both open sessions hear of it, and see its connect tool.
    let report = reload(&a, &file, &format!("{}{}", fixture_toml(), oauth_toml(&b))).await;
    assert_eq!(report.upstreams_added, ["b"]);
    next(
        &mut alice_events.tools_changed,
        "alice's tools/list_changed",
    )
    .await;
    next(&mut bob_events.tools_changed, "bob's tools/list_changed").await;
    for (who, s) in [("alice", &alice_session), ("bob", &bob_session)] {
        let names = tool_names(s).await;
        assert!(
            has(&names, "b_connect") && !has(&names, "b_whoami"),
            "{who}: {names:?}"
        );
        assert!(has(&names, "fx_echo"), "{who}: {names:?}");
    }

    // Alice connects her own account; Bob does not.
    let (_, page) = connect_with_link(&a, &b, &link(&a, &alice).await, "alice", "alice-at-b").await;
    assert!(page.contains("Connected"), "{page}");
    assert!(has(&tool_names(&alice_session).await, "b_whoami"));
    assert_eq!(
        upstream_account(&a, &alice).await.as_deref(),
        Some("alice-at-b")
    );
    assert!(!has(&tool_names(&bob_session).await, "b_whoami"));
    assert_eq!(upstream_account(&a, &bob).await, None);
    let bobs_link = link(&a, &bob).await;

    // Removed: both sessions hear of it; its tools are gone for both.
    let report = reload(&a, &file, &fixture_toml()).await;
    assert_eq!(report.upstreams_removed, ["b"]);
    next(
        &mut alice_events.tools_changed,
        "alice's tools/list_changed",
    )
    .await;
    next(&mut bob_events.tools_changed, "bob's tools/list_changed").await;
    for (who, s) in [("alice", &alice_session), ("bob", &bob_session)] {
        let names = tool_names(s).await;
        assert!(
            !names.iter().any(|n| n.starts_with("b_")),
            "{who}: {names:?}"
        );
    }
    assert_eq!(upstream_account(&a, &alice).await, None);
    // Bob's link made before the removal says what happened.
    let r = a
        .browser()
        .get(bobs_link.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::GONE);
    let html = r.text().await.unwrap();
    assert!(html.contains("was removed from this server"), "{html}");
    assert!(html.contains("upstream_oauth.upstream_withdrawn"), "{html}");
    // Alice's tokens were kept.
    let alice_id = user_id(&a, "alice").await;
    assert!(
        a.store
            .upstream_token(&alice_id, "b")
            .await
            .unwrap()
            .is_some()
    );

    // Back at the same URL: Alice's connection counts again, Bob's link
    // is still spent and Bob is still not connected.
    reload(&a, &file, &format!("{}{}", fixture_toml(), oauth_toml(&b))).await;
    next(
        &mut alice_events.tools_changed,
        "alice's tools/list_changed",
    )
    .await;
    next(&mut bob_events.tools_changed, "bob's tools/list_changed").await;
    assert!(has(&tool_names(&alice_session).await, "b_whoami"));
    assert_eq!(
        upstream_account(&a, &alice).await.as_deref(),
        Some("alice-at-b")
    );
    let names = tool_names(&bob_session).await;
    assert!(
        has(&names, "b_connect") && !has(&names, "b_whoami"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_url_gets_no_token_issued_for_the_old_one_and_ends_sign_ins_under_way() {
    let b1 = upstream().await;
    let b2 = upstream().await;
    b2.add_user("alice-at-b2").await;
    let (a, file) = spawn_with(&oauth_toml(&b1)).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;
    let (alice_session, mut alice_events) = connect(&a, &alice).await;
    let (bob_session, mut bob_events) = connect(&a, &bob).await;
    connect_with_link(&a, &b1, &link(&a, &alice).await, "alice", "alice-at-b").await;
    assert_eq!(
        upstream_account(&a, &alice).await.as_deref(),
        Some("alice-at-b")
    );
    // Bob is halfway: approved at b1, the callback not yet back.
    let (bob_browser, callback) =
        sign_in_until_callback(&a, &b1, &link(&a, &bob).await, "bob", "bob-at-b").await;

    // `b` now points at another server.
    let report = reload(&a, &file, &oauth_toml(&b2)).await;
    assert_eq!(report.upstreams_changed, ["b"]);
    next(
        &mut alice_events.tools_changed,
        "alice's tools/list_changed",
    )
    .await;
    next(&mut bob_events.tools_changed, "bob's tools/list_changed").await;

    // Alice's token was issued for b1: she is not connected to the new b,
    // and nothing of hers is sent there.
    let names = tool_names(&alice_session).await;
    assert!(
        has(&names, "b_connect") && !has(&names, "b_whoami"),
        "{names:?}"
    );
    assert_eq!(upstream_account(&a, &alice).await, None);
    let alice_id = user_id(&a, "alice").await;
    let row = a
        .store
        .upstream_token(&alice_id, "b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.url.as_deref(), Some(b1.resource().as_str()));
    let page = alice_connections(&a).await;
    assert!(!page.contains("Disconnect"), "{page}");

    // Bob's callback from b1 exchanges nothing and says why.
    let r = bob_browser
        .get(callback.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::GONE);
    let html = r.text().await.unwrap();
    assert!(html.contains("its address changed"), "{html}");
    let bob_id = user_id(&a, "bob").await;
    assert!(
        a.store
            .upstream_token(&bob_id, "b")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!has(&tool_names(&bob_session).await, "b_whoami"));

    // Alice connects at the new server: her calls go there, with its token.
    connect_with_link(&a, &b2, &link(&a, &alice).await, "alice", "alice-at-b2").await;
    assert_eq!(
        upstream_account(&a, &alice).await.as_deref(),
        Some("alice-at-b2")
    );
    assert!(!has(&tool_names(&bob_session).await, "b_whoami"));
}

/// Alice's connections page (signed in by a fresh browser).
async fn alice_connections(a: &TestApp) -> String {
    let browser = a.browser();
    let r = browser.get("/connections").await;
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}
