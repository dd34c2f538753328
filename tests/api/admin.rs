//! The admin console at `/admin` (docs/operations.md "Admin console"):
//! the gate (sign-in first, then `403` for non-admins), the CSRF check on
//! every action, each action and its visible result, revocation that
//! really ends tokens, and isolation: an action on one user leaves the
//! others' accounts and tokens alone.

use reqwest::StatusCode;

use crate::gateway_support::{WAIT, fixture, spawn_gateway, wait_for_upstream};
use crate::helpers::{Browser, PASSWORD, TestApp, hidden_inputs, location, spawn_app};
use crate::mcp_support::bearer;

type Form = Vec<(String, String)>;

/// Signs `user` in at `/admin` in a new browser; returns the browser.
pub(crate) async fn admin_browser(app: &TestApp, user: &str) -> Browser {
    let b = app.browser();
    let r = b.get("/admin").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    assert!(html.contains("to open the admin console"), "{html}");
    let r = b.submit_login(&html, user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin");
    b
}

/// The page's CSRF token.
pub(crate) async fn csrf(b: &Browser, path: &str) -> String {
    let html = b.get(path).await.text().await.unwrap();
    hidden_inputs(&html)
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
        .expect("a csrf_token on the page")
}

/// Posts an action with the browser's CSRF token; returns (status, page).
pub(crate) async fn act(b: &Browser, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let mut form: Form = vec![("csrf_token".into(), csrf(b, "/admin").await)];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let r = b.post_form("/admin", &form).await;
    (r.status(), r.text().await.unwrap())
}

pub(crate) async fn page(b: &Browser, path: &str) -> String {
    let r = b.get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// Whether the access token still opens the MCP endpoint.
async fn token_works(app: &TestApp, token: &str) -> bool {
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(token))
        .send()
        .await
        .unwrap();
    match r.status() {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        s => panic!("unexpected {s}"),
    }
}

async fn exists(app: &TestApp, name: &str) -> bool {
    app.store.user_by_username(name).await.unwrap().is_some()
}

fn access(t: &serde_json::Value) -> String {
    t["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_console_asks_for_sign_in_then_shows_an_admin_the_users_with_page_protections() {
    let app = spawn_app().await;
    app.add_user("alice").await; // the first user: admin
    app.add_user("bob").await;
    let b = admin_browser(&app, "alice").await;
    let r = b.get("/admin").await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Users</h1>"), "{html}");
    assert!(
        html.contains(">alice</a>") && html.contains(">bob</a>"),
        "{html}"
    );
    assert!(!html.contains("<script"), "no scripts");
    // Search narrows the list.
    let html = page(&b, "/admin?q=bo").await;
    assert!(
        html.contains(">bob</a>") && !html.contains(">alice</a>"),
        "{html}"
    );
    for p in [
        "/admin/clients",
        "/admin/upstreams",
        "/admin/audit",
        "/admin/user?name=bob",
    ] {
        page(&b, p).await;
    }
}

#[tokio::test]
async fn a_signed_in_user_without_the_admin_role_gets_403_and_changes_nothing() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let b = admin_browser(&app, "bob").await;
    for p in [
        "/admin",
        "/admin/clients",
        "/admin/upstreams",
        "/admin/audit",
        "/admin/user?name=alice",
    ] {
        let r = b.get(p).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{p}");
        assert!(r.text().await.unwrap().contains("Admins only"));
    }
    let html = b.get("/admin").await.text().await.unwrap();
    assert!(!html.contains("csrf_token"), "no forms for a non-admin");
    // With a valid CSRF token of bob's own session, the role check still
    // refuses the action.
    let signin = app.browser();
    let login = signin.get("/admin").await.text().await.unwrap();
    let r = signin.submit_login(&login, "bob", PASSWORD).await;
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let value = cookie.split_once('=').unwrap().1.to_string();
    let form: Form = vec![
        ("csrf_token".into(), app.auth.csrf_token(&value)),
        ("action".into(), "user.remove".into()),
        ("username".into(), "alice".into()),
    ];
    let r = app
        .http
        .post(app.url("/admin"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(exists(&app, "alice").await);
}

#[tokio::test]
async fn an_action_without_a_valid_csrf_token_is_a_400_page_and_changes_nothing() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let b = admin_browser(&app, "alice").await;
    for token in [None, Some("forged")] {
        let mut form: Form = vec![
            ("action".into(), "user.remove".into()),
            ("username".into(), "bob".into()),
        ];
        if let Some(t) = token {
            form.push(("csrf_token".into(), t.into()));
        }
        let r = b.post_form("/admin", &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let html = r.text().await.unwrap();
        assert!(html.contains("csrf_token"), "{html}");
    }
    assert!(exists(&app, "bob").await);
    // The same action with the token works.
    let (s, html) = act(&b, &[("action", "user.remove"), ("username", "bob")]).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(!exists(&app, "bob").await);
}

#[tokio::test]
async fn user_actions_work_are_visible_afterwards_are_audited_and_touch_only_their_user() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let bob_before = app.store.user_by_username("bob").await.unwrap().unwrap();
    let b = admin_browser(&app, "alice").await;

    // Create carol, an admin.
    let (s, html) = act(
        &b,
        &[
            ("action", "user.create"),
            ("username", "Carol"),
            ("password", "a long password 1"),
            ("admin", "on"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Created user carol."), "{html}");
    let carol = app.store.user_by_username("carol").await.unwrap().unwrap();
    assert!(
        app.store
            .admin_user_ids()
            .await
            .unwrap()
            .contains(&carol.id)
    );
    // A bad name is a clear error, and nothing is created.
    let (s, html) = act(
        &b,
        &[
            ("action", "user.create"),
            ("username", "bad name"),
            ("password", "a long password 1"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("class=\"error\""), "{html}");

    // Groups.
    let (s, _) = act(
        &b,
        &[
            ("action", "user.group_add"),
            ("username", "carol"),
            ("group", "ops"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let html = page(&b, "/admin/user?name=carol").await;
    assert!(html.contains("<span class=\"tag\">ops</span>"), "{html}");
    let (s, _) = act(
        &b,
        &[
            ("action", "user.group_remove"),
            ("username", "carol"),
            ("group", "ops"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        app.store
            .groups_of_user(&carol.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Password: carol signs in with the new one only.
    let (s, _) = act(
        &b,
        &[
            ("action", "user.password"),
            ("username", "carol"),
            ("password", "another long password"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let addr: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert!(
        app.auth
            .sign_in("carol", "another long password", addr)
            .await
            .is_ok()
    );
    assert!(
        app.auth
            .sign_in("carol", "a long password 1", addr)
            .await
            .is_err()
    );

    // Role off, then removal.
    let (s, _) = act(
        &b,
        &[
            ("action", "user.admin"),
            ("username", "carol"),
            ("role", "off"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !app.store
            .admin_user_ids()
            .await
            .unwrap()
            .contains(&carol.id)
    );
    // An admin cannot remove their own account here.
    let (s, html) = act(&b, &[("action", "user.remove"), ("username", "alice")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(exists(&app, "alice").await);
    let (s, html) = act(&b, &[("action", "user.remove"), ("username", "carol")]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Removed user carol."), "{html}");
    assert!(!page(&b, "/admin").await.contains(">carol</a>"));

    // Bob was never touched.
    let bob = app.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(bob.password_hash, bob_before.password_hash);
    assert!(!app.store.admin_user_ids().await.unwrap().contains(&bob.id));

    // Every action is in the audit log, by alice, and the audit page shows it.
    app.auth.audit.flush().await;
    let html = page(&b, "/admin/audit?user=carol").await;
    for action in [
        "user.create",
        "user.group_add",
        "user.group_remove",
        "user.password",
        "user.admin",
        "user.remove",
    ] {
        assert!(
            html.contains(&format!("&quot;action&quot;:&quot;{action}&quot;")),
            "{action}: {html}"
        );
    }
    assert!(!html.contains("<td>bob</td>"), "filtered to carol: {html}");
}

#[tokio::test]
async fn revoking_a_grant_ends_its_tokens_and_no_other_users() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    app.add_user("carol").await;
    let (client_id, bob_t) = app.full_flow("bob").await;
    let (_, carol_t) = app.full_flow("carol").await;
    assert!(token_works(&app, &access(&bob_t)).await);
    let b = admin_browser(&app, "alice").await;

    let html = page(&b, "/admin/user?name=bob").await;
    assert!(html.contains(&client_id), "{html}");
    let grant_id = hidden_inputs(&html)
        .into_iter()
        .find(|(k, _)| k == "grant_id")
        .map(|(_, v)| v)
        .expect("bob's grant");
    // carol's grant id is not bob's: revoking it "as bob" is refused.
    let carol = app.store.user_by_username("carol").await.unwrap().unwrap();
    let carol_grant = app
        .store
        .live_grants(Some(&carol.id), None, app.auth.now())
        .await
        .unwrap()[0]
        .grant_id
        .clone();
    let (s, _) = act(
        &b,
        &[
            ("action", "grant.revoke"),
            ("username", "bob"),
            ("grant_id", &carol_grant),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(token_works(&app, &access(&carol_t)).await);

    let (s, html) = act(
        &b,
        &[
            ("action", "grant.revoke"),
            ("username", "bob"),
            ("grant_id", &grant_id),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("No live grants."), "{html}");
    assert!(!token_works(&app, &access(&bob_t)).await);
    // The refresh token is dead too.
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                bob_t["refresh_token"].as_str().unwrap_or("none"),
            ),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // carol keeps hers.
    assert!(token_works(&app, &access(&carol_t)).await);

    // Revoke all of carol's grants.
    let (s, _) = act(
        &b,
        &[("action", "user.revoke_grants"), ("username", "carol")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!token_works(&app, &access(&carol_t)).await);
}

#[tokio::test]
async fn clients_show_kind_and_live_grants_and_can_be_revoked_and_removed() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let (client_a, bob_a) = app.full_flow("bob").await;
    let (client_b, bob_b) = app.full_flow("bob").await;
    let b = admin_browser(&app, "alice").await;
    let html = page(&b, "/admin/clients").await;
    assert!(
        html.contains(&client_a) && html.contains(&client_b),
        "{html}"
    );
    assert!(html.contains("<td>DCR</td>"), "{html}");
    assert!(html.contains("http://127.0.0.1:1/callback"), "{html}");

    let (s, html) = act(
        &b,
        &[("action", "client.revoke_grants"), ("client_id", &client_a)],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Revoked all 1 grants"), "{html}");
    assert!(!token_works(&app, &access(&bob_a)).await);
    assert!(
        token_works(&app, &access(&bob_b)).await,
        "the other client's grant stays"
    );

    let (s, _) = act(&b, &[("action", "client.remove"), ("client_id", &client_a)]).await;
    assert_eq!(s, StatusCode::OK);
    let html = page(&b, "/admin/clients").await;
    assert!(
        !html.contains(&client_a) && html.contains(&client_b),
        "{html}"
    );
    let (s, _) = act(&b, &[("action", "client.remove"), ("client_id", &client_a)]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn upstreams_show_their_last_error_and_restart() {
    let app = spawn_gateway(vec![
        fixture("fx", ""),
        fixture("broken", "args = [\"--fail-start\"]"),
    ])
    .await;
    app.add_user("alice").await;
    wait_for_upstream(&app, "fx", WAIT, |u| u["state"] == "running").await;
    wait_for_upstream(&app, "broken", WAIT, |u| u["state"] == "restarting").await;
    let b = admin_browser(&app, "alice").await;
    let html = page(&b, "/admin/upstreams").await;
    assert!(
        html.contains("<strong>fx</strong>") && html.contains("<strong>broken</strong>"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"tag\">restarting</span>"),
        "{html}"
    );
    assert!(html.contains("<code>"), "the last error is shown: {html}");

    let (s, html) = act(&b, &[("action", "upstream.restart"), ("upstream", "fx")]).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Restarting fx."), "{html}");
    // It comes back running.
    wait_for_upstream(&app, "fx", WAIT, |u| u["state"] == "running").await;
    let (s, _) = act(&b, &[("action", "upstream.restart"), ("upstream", "nope")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn disabling_a_user_stops_their_sign_in_and_tokens_and_no_one_elses() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    app.add_user("carol").await;
    let (_, bob_t) = app.full_flow("bob").await;
    let (_, carol_t) = app.full_flow("carol").await;
    // bob, signed in at the console (which refuses him).
    let bob_browser = admin_browser(&app, "bob").await;
    assert_eq!(
        bob_browser.get("/admin").await.status(),
        StatusCode::FORBIDDEN
    );
    let b = admin_browser(&app, "alice").await;
    // An admin cannot disable themselves.
    let (s, _) = act(&b, &[("action", "user.disable"), ("username", "alice")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, html) = act(&b, &[("action", "user.disable"), ("username", "bob")]).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("<strong>disabled</strong>"), "{html}");
    assert!(
        page(&b, "/admin")
            .await
            .contains("<span class=\"tag\">disabled</span>")
    );
    assert!(!token_works(&app, &access(&bob_t)).await);
    assert!(token_works(&app, &access(&carol_t)).await);
    // bob's browser session ended; he cannot sign in again.
    let r = bob_browser.get("/admin").await;
    assert!(r.text().await.unwrap().contains("<h1>Sign in</h1>"));
    let addr: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert!(app.auth.sign_in("bob", PASSWORD, addr).await.is_err());
    assert!(app.auth.sign_in("carol", PASSWORD, addr).await.is_ok());

    let (s, _) = act(&b, &[("action", "user.enable"), ("username", "bob")]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(app.auth.sign_in("bob", PASSWORD, addr).await.is_ok());
    assert!(
        !token_works(&app, &access(&bob_t)).await,
        "revoked tokens stay revoked"
    );
}
