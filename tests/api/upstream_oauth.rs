//! Per-user OAuth to upstream MCP servers (issue #19), end to end with a
//! second mcpgate as the upstream: its real authorization server (dynamic
//! registration, sign-in, consent, refresh rotation, revocation) and its
//! `whoami` tool, which tells which account each call came with.
//!
//! Each side has its own scripted browser (cookie jar): both servers are on
//! `localhost` and name their session cookie alike.

use std::sync::Arc;

use mcpgate::clock::Clock;
use mcpgate::store::Store;
use mcpgate::upstream_oauth::vault::Vault;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Browser, PASSWORD, TestApp, form_action, hidden_inputs, location, spawn_app_with,
};
use crate::mcp_support::{bearer, signed_in};

/// The upstream: a plain mcpgate (dynamic registration; no metadata
/// documents, whose URLs must be https) with two accounts.
pub(crate) async fn upstream() -> TestApp {
    let b = spawn_app_with(|s| s.client_id_metadata_documents = false).await;
    b.add_user("alice-at-b").await;
    b.add_user("bob-at-b").await;
    b
}

pub(crate) async fn gateway(b: &TestApp) -> TestApp {
    let cfg: mcpgate::gateway::config::UpstreamConfig = toml::from_str(&format!(
        "name = \"b\"\nurl = \"{}\"\nauth = \"oauth\"\nisolation = \"per_user\"\n",
        b.resource()
    ))
    .unwrap();
    spawn_app_with(|s| s.upstream = vec![cfg]).await
}

async fn tool_names(a: &TestApp, token: &str) -> Vec<String> {
    let r = a
        .http
        .get(a.url("/tools"))
        .header("authorization", bearer(token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn call(a: &TestApp, token: &str, tool: &str) -> (StatusCode, Value) {
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

/// The account the upstream saw: its `whoami` through the gateway.
async fn upstream_user(a: &TestApp, token: &str) -> String {
    let (status, v) = call(a, token, "b_whoami").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["structuredContent"]["user"]
        .as_str()
        .unwrap_or_else(|| panic!("no user in {v}"))
        .to_string()
}

fn absolute_get(browser: &Browser, url: &str) -> reqwest::RequestBuilder {
    browser.http.get(url)
}

/// A browser of the upstream at its issuer's host (`localhost`), where the
/// authorization request sends it, so that its cookies go along.
fn upstream_browser(b: &TestApp) -> Browser {
    Browser {
        base: b.urls.issuer.clone(),
        ..b.browser()
    }
}

/// Calls `b_connect` for `token`'s user, opens the link in a fresh browser
/// at the gateway (signing in as `gateway_user`), signs in at the upstream
/// as `upstream_user` and approves; returns the gateway browser and the
/// callback page.
async fn connect(
    a: &TestApp,
    b: &TestApp,
    token: &str,
    gateway_user: &str,
    upstream_user: &str,
) -> (Browser, String) {
    let (status, v) = call(a, token, "b_connect").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let text = v["content"][0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_string();
    connect_with_link(a, b, &link, gateway_user, upstream_user).await
}

/// Opens the connect `link` in a fresh browser at the gateway (signing in
/// as `gateway_user`), signs in at the upstream as `upstream_user` and
/// approves; returns the gateway browser and the callback page.
pub(crate) async fn connect_with_link(
    a: &TestApp,
    b: &TestApp,
    link: &str,
    gateway_user: &str,
    upstream_user: &str,
) -> (Browser, String) {
    assert!(link.starts_with(&a.urls.issuer), "{link}");
    // The gateway's browser: not signed in, so the sign-in page first.
    let browser_a = a.browser();
    let path = link.strip_prefix(&a.urls.issuer).unwrap();
    let r = browser_a.get(path).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("connect your <strong>b</strong> account"),
        "{html}"
    );
    let r = browser_a.submit_login(&html, gateway_user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser_a.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&b.urls.authorization_endpoint),
        "{authorize}"
    );
    for p in [
        "code_challenge_method=S256",
        "resource=",
        "state=",
        "code_challenge=",
    ] {
        assert!(authorize.contains(p), "{p} in {authorize}");
    }
    // The upstream's own sign-in and consent, in the upstream's browser.
    let browser_b = upstream_browser(b);
    let r = absolute_get(&browser_b, &authorize).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser_b.submit_login(&html, upstream_user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser_b.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser_b.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{}/oauth/upstream/callback?", a.urls.issuer)),
        "{callback}"
    );
    let r = browser_a
        .get(callback.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    (browser_a, page)
}

async fn vault_of(a: &TestApp) -> Vault {
    let key = a
        .store
        .server_key(mcpgate::auth::operator::SERVER_KEY_NAME, &[0; 32])
        .await
        .unwrap();
    Vault::new(a.store.clone(), &key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_connect_their_own_accounts_and_each_call_carries_only_their_token() {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;

    // Not connected: only the connect tool of the upstream.
    let names = tool_names(&a, &alice).await;
    assert!(names.contains(&"b_connect".to_string()), "{names:?}");
    assert!(!names.contains(&"b_whoami".to_string()), "{names:?}");
    let (status, v) = call(&a, &alice, "b_whoami").await;
    assert!(
        status != StatusCode::OK || v["isError"] == true,
        "an unconnected user reaches no upstream tool: {v}"
    );

    let (_, page) = connect(&a, &b, &alice, "alice", "alice-at-b").await;
    assert!(
        page.contains("Connected to b. You can return to your assistant."),
        "{page}"
    );
    let names = tool_names(&a, &alice).await;
    assert!(names.contains(&"b_whoami".to_string()), "{names:?}");
    assert!(!names.contains(&"b_connect".to_string()), "{names:?}");
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");

    // A service (client credentials) has no user: no connect tool, and it
    // cannot connect.
    let (_, service) = crate::machine_support::service_token(&a, "nightly").await;
    let names = tool_names(&a, &service).await;
    assert!(!names.iter().any(|n| n.starts_with("b_")), "{names:?}");
    let (status, v) = call(&a, &service, "b_connect").await;
    assert!(status != StatusCode::OK || v["isError"] == true, "{v}");
    assert!(!v.to_string().contains("ticket="), "{v}");

    // mcpgate's client metadata document (for upstreams that take them).
    let doc: Value = a
        .http
        .get(a.url("/oauth/client.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["client_id"],
        format!("{}/oauth/client.json", a.urls.issuer)
    );
    assert_eq!(
        doc["redirect_uris"],
        json!([format!("{}/oauth/upstream/callback", a.urls.issuer)])
    );
    assert_eq!(doc["token_endpoint_auth_method"], "none");

    // Bob is not connected by Alice's connection.
    assert!(
        tool_names(&a, &bob)
            .await
            .contains(&"b_connect".to_string())
    );
    connect(&a, &b, &bob, "bob", "bob-at-b").await;
    for _ in 0..3 {
        assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");
        assert_eq!(upstream_user(&a, &bob).await, "bob-at-b");
    }

    // A connect link is bound to its user: Bob's link opened by Alice fails.
    let (_, v) = call(&a, &bob, "b_connect").await;
    let text = v["content"][0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap();
    let browser = a.browser();
    let r = browser
        .get(link.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("upstream_oauth.link_wrong_user")
    );
    // ... and it was used up: Bob cannot use it either now.
    let bob_browser = a.browser();
    let r = bob_browser
        .get(link.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    let html = r.text().await.unwrap();
    let r = bob_browser.submit_login(&html, "bob", PASSWORD).await;
    let r = bob_browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("upstream_oauth.link_invalid")
    );
    // Bob's connection is unchanged by all this.
    assert_eq!(upstream_user(&a, &bob).await, "bob-at-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_sealed_at_rest_refreshed_before_expiry_survive_key_rotation_and_are_revoked_on_disconnect()
 {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (browser_a, _) = connect(&a, &b, &alice, "alice", "alice-at-b").await;
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");
    let alice_id = a.store.user_by_username("alice").await.unwrap().unwrap().id;

    // At rest: no plaintext token anywhere in the gateway's database file.
    let vault = vault_of(&a).await;
    let first = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    let access = first.tokens.secrets.access_token.expose().clone();
    let refresh = first
        .tokens
        .secrets
        .refresh_token
        .as_ref()
        .unwrap()
        .expose()
        .clone();
    assert!(!first.record.sealed.contains(&access));
    assert!(!format!("{:?}", first).contains(&access));
    let mut raw = std::fs::read(&a.db_path).unwrap();
    if let Ok(wal) = std::fs::read(a.db_path.with_extension("db-wal")) {
        raw.extend(wal);
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains(&access) && !raw.contains(&refresh));
    assert!(
        raw.contains(&first.record.sealed[..40]),
        "the sealed value is what the database holds"
    );

    // Shortly before expiry the next call refreshes first: new tokens,
    // the refresh token rotated, the row's version up by one.
    let ttl = first.tokens.expires_at.unwrap() - a.clock.now();
    a.clock.advance(ttl - 30);
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");
    let second = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    assert_eq!(second.record.version, first.record.version + 1);
    assert_ne!(second.tokens.secrets.access_token.expose(), &access);
    assert_ne!(
        second
            .tokens
            .secrets
            .refresh_token
            .as_ref()
            .unwrap()
            .expose(),
        &refresh
    );

    // Key rotation re-seals every row under a new key id; calls go on.
    let (kid, resealed, unreadable) = vault.rotate(a.clock.now()).await.unwrap();
    assert_eq!((resealed, unreadable), (1, 0));
    let third = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    assert_eq!(third.record.kid, kid);
    assert_ne!(third.record.sealed, second.record.sealed);
    assert_eq!(third.tokens.secrets, second.tokens.secrets);
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");

    // The same by the command line, while the server runs; it prints no
    // token.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("rotate-vault-key")
        .env(
            "MCPGATE_DATABASE_URL",
            format!("sqlite://{}", a.db_path.display()),
        )
        .env_remove("MCPGATE_CONFIG")
        .current_dir(a.db_path.parent().unwrap())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("1 connection(s) re-encrypted"),
        "{printed}"
    );
    let fourth = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    assert_ne!(fourth.record.kid, third.record.kid);
    assert!(printed.contains(&fourth.record.kid), "{printed}");
    for secret in [
        fourth.tokens.secrets.access_token.expose(),
        fourth
            .tokens
            .secrets
            .refresh_token
            .as_ref()
            .unwrap()
            .expose(),
    ] {
        assert!(!printed.contains(secret.as_str()));
    }
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");

    // Disconnect from the connections page: revoked at the upstream (its
    // token no longer works there) and deleted here.
    // The browser session ended with the hour the clock moved on: the
    // page signs the user in first.
    let r = browser_a.get("/connections").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("to see your connections"), "{html}");
    let r = browser_a.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser_a.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Connected") && html.contains("Disconnect"),
        "{html}"
    );
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "{html}"
    );
    let mut form: Vec<(String, String)> = hidden_inputs(&html);
    form.push(("action".into(), "disconnect".into()));
    let r = browser_a.post_form(&form_action(&html), &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Disconnected from b."));
    assert!(
        a.store
            .upstream_token(&alice_id, "b")
            .await
            .unwrap()
            .is_none()
    );
    let revoked = b
        .http
        .post(b.url("/tools/whoami"))
        .header(
            "authorization",
            bearer(third.tokens.secrets.access_token.expose()),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let names = tool_names(&a, &alice).await;
    assert!(names.contains(&"b_connect".to_string()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_at_the_upstream_and_a_foreign_state_end_on_clear_pages() {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, v) = call(&a, &alice, "b_connect").await;
    let text = v["content"][0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap();
    let browser_a = a.browser();
    let r = browser_a
        .get(link.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    let html = r.text().await.unwrap();
    let r = browser_a.submit_login(&html, "alice", PASSWORD).await;
    let r = browser_a.get(&location(&r)).await;
    let authorize = location(&r);
    let browser_b = upstream_browser(&b);
    let html = browser_b
        .http
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser_b.submit_login(&html, "alice-at-b", PASSWORD).await;
    let html = browser_b.get(&location(&r)).await.text().await.unwrap();
    let r = browser_b.submit_consent(&html, "deny").await;
    let callback = location(&r);
    assert!(callback.contains("error=access_denied"), "{callback}");
    // Another browser cannot finish this flow (the state is bound to the
    // browser that started it); the state is then used up.
    let stranger = a.browser();
    let path = callback.strip_prefix(&a.urls.issuer).unwrap();
    let r = stranger.get(path).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("upstream_oauth.state_invalid")
    );
    // A refusal in the right browser: the refusal page.
    let (_, v) = call(&a, &alice, "b_connect").await;
    let text = v["content"][0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap();
    let r = browser_a
        .get(link.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::FOUND, "signed in already");
    let authorize = location(&r);
    let r = browser_b.http.get(&authorize).send().await.unwrap();
    let html = r.text().await.unwrap();
    let r = browser_b.submit_consent(&html, "deny").await;
    let callback = location(&r);
    let r = browser_a
        .get(callback.strip_prefix(&a.urls.issuer).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("upstream_oauth.denied"), "{page}");
    assert!(page.contains("did not give mcpgate access"), "{page}");
    let alice_id = a.store.user_by_username("alice").await.unwrap().unwrap().id;
    assert!(
        a.store
            .upstream_token(&alice_id, "b")
            .await
            .unwrap()
            .is_none()
    );
    let _: Arc<dyn Store> = a.store.clone();
}

/// Two gateway instances on one PostgreSQL database, many concurrent calls
/// of one user whose upstream token is about to expire: exactly one
/// refresh (the row's version goes up by one), and every call succeeds
/// (a second use of the rotated refresh token would make the upstream
/// revoke the grant, RFC 9700 §4.14.2, and the calls fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_at_expiry_on_two_instances_refresh_exactly_once() {
    use mcpgate_core::upstream_oauth::tokens::TokenSet;

    let b = upstream().await;
    // A client at the upstream and Alice's tokens from it, as if she had
    // connected through it.
    let (client_id, issued) = b.full_flow("alice-at-b").await;
    let cfg = format!(
        "name = \"b\"\nurl = \"{}\"\nauth = \"oauth\"\nisolation = \"per_user\"\noauth_client_id = \"{client_id}\"\n",
        b.resource()
    );
    let (_db, a1, a2) = crate::cluster_support::two_instances_with(|s| {
        s.upstream = vec![toml::from_str(&cfg).unwrap()];
    })
    .await;
    let (_, alice) = signed_in(&a1, "alice").await;
    let alice_id = a1
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = a1.clock.now();
    let mut tokens =
        TokenSet::from_response(issued.to_string().as_bytes(), now, Some("mcp")).unwrap();
    assert!(tokens.secrets.refresh_token.is_some());
    tokens.expires_at = Some(now + 30);
    let vault = vault_of(&a1).await;
    vault
        .connect(&alice_id, "b", &b.resource(), &tokens, None, now)
        .await
        .unwrap();
    let before = a1
        .store
        .upstream_token(&alice_id, "b")
        .await
        .unwrap()
        .unwrap();

    let mut calls = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &a1 } else { &a2 };
        let url = app.url("/tools/b_whoami");
        let http = app.http.clone();
        let token = alice.clone();
        calls.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("authorization", bearer(&token))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }));
    }
    for c in calls {
        let (status, v) = c.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["structuredContent"]["user"], "alice-at-b", "{v}");
    }
    let after = a1
        .store
        .upstream_token(&alice_id, "b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, before.version + 1, "exactly one refresh");
    let refreshed = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    assert_ne!(
        refreshed.tokens.secrets.refresh_token, tokens.secrets.refresh_token,
        "the refresh token was rotated and the new one stored"
    );
    assert!(refreshed.tokens.expires_at.unwrap() > now + 30);
}
