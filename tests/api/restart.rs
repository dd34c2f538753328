//! A restart (same database file, new port) keeps clients, users, tokens
//! and the key that derives refresh successors.

use mcpgate_core::crypto::hash_secret;
use reqwest::StatusCode;

use crate::helpers::spawn_app;
use crate::token::{
    REDIRECT, access_record, code_for, exchange, expect_error, expect_tokens, refresh, s,
};

#[tokio::test]
async fn a_restart_keeps_clients_users_and_tokens() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let t = expect_tokens(exchange(&app, &code, &client_id).await).await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
    let old_base = app.base.clone();

    let app = app.restart().await;
    assert_ne!(app.base, old_base, "the server listens on a new port");

    // The access token record is still found.
    let record = access_record(&app, &at).await;
    assert_eq!(record.client_id.as_str(), client_id);
    assert_eq!(record.revoked_at, None);
    assert!(
        app.store
            .access_token(&hash_secret("mcp_00000000000000000000000000000000"))
            .await
            .unwrap()
            .is_none()
    );

    // The refresh token issued before the restart refreshes after it.
    let t2 = expect_tokens(refresh(&app, &rt, &client_id).await).await;
    assert_ne!(s(&t2, "refresh_token"), rt);

    // The client registered before still authorizes, and alice still signs in.
    let code = code_for(&app, "alice", &client_id).await;
    let t3 = expect_tokens(exchange(&app, &code, &client_id).await).await;
    assert_eq!(
        access_record(&app, &s(&t3, "access_token")).await.user_id,
        record.user_id
    );
}

#[tokio::test]
async fn a_refresh_repeated_across_a_restart_returns_the_same_successor() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client_id, t) = app.full_flow("alice").await;
    let rt1 = s(&t, "refresh_token");
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;

    let app = app.restart().await;
    app.clock.advance(5);
    // Inside the grace window: the successor is derived with the stored key,
    // so the repeat after the restart returns the very same tokens.
    let again = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    assert_eq!(again["access_token"], t2["access_token"]);
    assert_eq!(again["refresh_token"], t2["refresh_token"]);

    // After the grace period it is reuse, as before the restart.
    app.clock.advance(60);
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;
}
