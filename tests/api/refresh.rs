//! The refresh_token grant: rotation, reuse detection (RFC 9700 §4.14.2)
//! and the grace window that keeps clients which repeat a refresh alive.

use std::time::Duration;

use mcpgate_core::crypto::hash_secret;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::token::{
    REDIRECT, access_record, code_for, exchange, expect_error, expect_tokens, refresh,
    refresh_record, s,
};

/// Signs alice in through a fresh public client; returns (client_id, AT, RT).
async fn signed_in(app: &TestApp) -> (String, String, String) {
    app.add_user("alice").await;
    let (client_id, t) = app.full_flow("alice").await;
    (client_id, s(&t, "access_token"), s(&t, "refresh_token"))
}

#[tokio::test]
async fn each_refresh_rotates_both_tokens_and_the_old_access_token_stays_valid() {
    let app = spawn_app().await;
    let (client_id, at1, rt1) = signed_in(&app).await;

    app.clock.advance(5);
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let (at2, rt2) = (s(&t2, "access_token"), s(&t2, "refresh_token"));
    assert_ne!(at2, at1);
    assert_ne!(rt2, rt1);
    assert_eq!(t2["token_type"], "Bearer");
    assert_eq!(t2["expires_in"], 86_400);
    assert_eq!(t2["scope"], "mcp");

    let old = refresh_record(&app, &rt1).await;
    assert!(old.rotated_at.is_some(), "the old refresh token is rotated");
    assert_eq!(
        old.successor_hash.as_deref(),
        Some(hash_secret(&rt2).as_str())
    );
    assert_eq!(old.revoked_at, None);
    let new = refresh_record(&app, &rt2).await;
    assert_eq!(new.grant_id, old.grant_id);
    assert_eq!(new.rotated_at, None);

    // The old access token is still valid until its own expiry.
    let a1 = access_record(&app, &at1).await;
    assert_eq!(a1.revoked_at, None);
    let now = a1.created_at + 5;
    assert!(a1.is_active(now));
    assert!(!a1.is_active(a1.expires_at));
    assert!(access_record(&app, &at2).await.is_active(now));

    // And the successor rotates in turn.
    let t3 = expect_tokens(refresh(&app, &rt2, &client_id).await).await;
    assert_ne!(s(&t3, "refresh_token"), rt2);
    assert_ne!(s(&t3, "access_token"), at2);
}

#[tokio::test]
async fn a_narrower_or_equal_scope_is_allowed_but_a_wider_one_is_invalid_scope() {
    let app = spawn_app().await;
    let (client_id, _, rt1) = signed_in(&app).await;

    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", &client_id),
            ("scope", "admin"),
        ])
        .await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_scope", "scope admin").await;

    // The refused request did not consume the token.
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", &client_id),
            ("scope", "mcp"),
        ])
        .await;
    let t = expect_tokens(r).await;
    assert_eq!(t["scope"], "mcp");
}

#[tokio::test]
async fn a_resource_mismatch_on_refresh_is_invalid_target() {
    let app = spawn_app().await;
    let (client_id, _, rt1) = signed_in(&app).await;
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", &client_id),
            ("resource", "https://other.example/v1/ai/mcp"),
        ])
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_target",
        "resource https://other.example/v1/ai/mcp",
    )
    .await;

    // The right resource is accepted.
    let resource = app.resource();
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", &client_id),
            ("resource", &resource),
        ])
        .await;
    expect_tokens(r).await;
}

#[tokio::test]
async fn a_refresh_token_of_client_a_used_by_client_b_is_invalid_grant() {
    let app = spawn_app().await;
    let (_client_a, _, rt1) = signed_in(&app).await;
    let client_b = app.register_public(REDIRECT).await;
    let r = refresh(&app, &rt1, &client_b).await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "issued to another client",
    )
    .await;
    let record = refresh_record(&app, &rt1).await;
    assert_eq!(record.rotated_at, None);
    assert_eq!(record.revoked_at, None);
}

#[tokio::test]
async fn reuse_of_a_rotated_token_after_the_grace_period_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (client_id, at1, rt1) = signed_in(&app).await;
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let (at2, rt2) = (s(&t2, "access_token"), s(&t2, "refresh_token"));

    app.clock.advance(31);
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;

    let r = refresh(&app, &rt2, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    assert!(refresh_record(&app, &rt2).await.revoked_at.is_some());
    assert!(access_record(&app, &at1).await.revoked_at.is_some());
    assert!(access_record(&app, &at2).await.revoked_at.is_some());
}

#[tokio::test]
async fn repeating_a_refresh_within_the_grace_window_returns_the_same_successor() {
    let app = spawn_app().await;
    let (client_id, at1, rt1) = signed_in(&app).await;
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;

    app.clock.advance(29);
    let again = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    assert_eq!(again["access_token"], t2["access_token"]);
    assert_eq!(again["refresh_token"], t2["refresh_token"]);
    assert_eq!(again["token_type"], "Bearer");
    assert_eq!(again["scope"], "mcp");
    assert_eq!(again["expires_in"], 86_400 - 29);

    // Nothing was revoked, and only one successor exists.
    let rt2 = s(&t2, "refresh_token");
    assert_eq!(
        refresh_record(&app, &rt1).await.successor_hash.as_deref(),
        Some(hash_secret(&rt2).as_str())
    );
    assert_eq!(access_record(&app, &at1).await.revoked_at, None);
    assert_eq!(
        access_record(&app, &s(&t2, "access_token"))
            .await
            .revoked_at,
        None
    );

    let t3 = expect_tokens(refresh(&app, &rt2, &client_id).await).await;
    assert_ne!(t3["refresh_token"], t2["refresh_token"]);
}

#[tokio::test]
async fn once_the_successor_was_used_the_old_token_is_reuse_even_inside_the_window() {
    let app = spawn_app().await;
    let (client_id, _, rt1) = signed_in(&app).await;
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let rt2 = s(&t2, "refresh_token");
    app.clock.advance(1);
    let t3 = expect_tokens(refresh(&app, &rt2, &client_id).await).await;
    let (at3, rt3) = (s(&t3, "access_token"), s(&t3, "refresh_token"));

    app.clock.advance(1);
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;

    let r = refresh(&app, &rt3, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    assert!(access_record(&app, &at3).await.revoked_at.is_some());
    assert!(
        access_record(&app, &s(&t2, "access_token"))
            .await
            .revoked_at
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_all_get_the_same_single_successor() {
    let app = spawn_app().await;
    let (client_id, _, rt1) = signed_in(&app).await;
    let url = app.url("/v1/oauth/token");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = app.http.clone();
        let url = url.clone();
        let form = vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("refresh_token".to_string(), rt1.clone()),
            ("client_id".to_string(), client_id.clone()),
        ];
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).form(&form).send().await.expect("request");
            let status = r.status();
            let body: Value = r.json().await.expect("json");
            (status, body)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        results.push(body);
    }
    let first = &results[0];
    for r in &results {
        assert_eq!(r["access_token"], first["access_token"]);
        assert_eq!(r["refresh_token"], first["refresh_token"]);
    }
    let rt2 = s(first, "refresh_token");
    assert_ne!(rt2, rt1);
    let old = refresh_record(&app, &rt1).await;
    assert_eq!(
        old.successor_hash.as_deref(),
        Some(hash_secret(&rt2).as_str())
    );
    let succ = refresh_record(&app, &rt2).await;
    assert_eq!(succ.rotated_at, None);
    assert_eq!(succ.revoked_at, None);

    let t3 = expect_tokens(refresh(&app, &rt2, &client_id).await).await;
    assert_ne!(s(&t3, "refresh_token"), rt2);
}

#[tokio::test]
async fn with_a_zero_grace_period_an_immediate_repeat_is_reuse() {
    let app = spawn_app_with(|s| s.refresh_grace_period = Duration::ZERO).await;
    let (client_id, at1, rt1) = signed_in(&app).await;
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;
    let r = refresh(&app, &s(&t2, "refresh_token"), &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    assert!(access_record(&app, &at1).await.revoked_at.is_some());
}

#[tokio::test]
async fn with_a_zero_grace_period_a_repeat_one_second_later_is_reuse() {
    let app = spawn_app_with(|s| s.refresh_grace_period = Duration::ZERO).await;
    let (client_id, _, rt1) = signed_in(&app).await;
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    app.clock.advance(1);
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "already used").await;
    let r = refresh(&app, &s(&t2, "refresh_token"), &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let app = spawn_app_with(|s| s.refresh_token_ttl = Duration::from_secs(7200)).await;
    let (client_id, _, rt1) = signed_in(&app).await;
    assert_eq!(
        {
            let r = refresh_record(&app, &rt1).await;
            r.expires_at - r.created_at
        },
        7200
    );
    app.clock.advance(7201);
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "expired").await;
}

#[tokio::test]
async fn the_default_refresh_token_lifetime_is_thirty_days() {
    let app = spawn_app().await;
    let (client_id, _, rt1) = signed_in(&app).await;
    app.clock.advance(30 * 24 * 3600 + 1);
    let r = refresh(&app, &rt1, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "expired").await;
}

#[tokio::test]
async fn chatgpt_posting_the_same_refresh_twice_in_a_row_keeps_the_session() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(&app, "alice", &client_id).await;
    let t = expect_tokens(exchange(&app, &code, &client_id).await).await;
    let rt1 = s(&t, "refresh_token");

    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt1.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let first = expect_tokens(app.token(&form).await).await;
    let second = expect_tokens(app.token(&form).await).await;
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(first["refresh_token"], second["refresh_token"]);

    let at = s(&second, "access_token");
    assert_eq!(access_record(&app, &at).await.revoked_at, None);
    assert_eq!(
        access_record(&app, &s(&t, "access_token")).await.revoked_at,
        None
    );
    // The session goes on.
    let next = expect_tokens(refresh(&app, &s(&second, "refresh_token"), &client_id).await).await;
    assert!(next["access_token"].is_string());
}

/// The token endpoint caches clients (`src/auth/client_cache.rs`): a
/// client removed behind the running server's back (as `mcpgate client
/// remove` does from another process) is still in that cache, but its
/// refresh tokens went with it, so it obtains nothing; and a confidential
/// client's wrong secret is refused on a cache hit as on a miss.
#[tokio::test]
async fn a_cached_client_that_was_removed_obtains_nothing() {
    let app = spawn_app().await;
    let (client_id, _at, rt1) = signed_in(&app).await;
    // The grant reads the client into the cache.
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let rt2 = s(&t2, "refresh_token");

    let id = mcpgate_core::domain::ClientId::parse(&client_id).unwrap();
    assert!(app.store.delete_client(&id).await.unwrap());
    assert!(
        app.store
            .refresh_token(&hash_secret(&rt2))
            .await
            .unwrap()
            .is_none(),
        "the client's tokens are removed with it"
    );
    // Cached: the client passes and the token is unknown (`invalid_grant`);
    // not cached: the client is unknown (`invalid_client`). Never tokens.
    let r = refresh(&app, &rt2, &client_id).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(
        matches!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
                | (StatusCode::UNAUTHORIZED, Some("invalid_client"))
        ),
        "{status} {body}"
    );
    assert!(body.get("access_token").is_none(), "{body}");
}

#[tokio::test]
async fn a_cached_confidential_client_still_needs_its_secret() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client_id, secret) = app
        .register_confidential(crate::token::REDIRECT, "client_secret_post")
        .await;
    let code = crate::token::code_for(&app, "alice", &client_id).await;
    let resource = app.resource();
    let t = expect_tokens(
        app.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", crate::token::REDIRECT),
            ("code_verifier", crate::helpers::VERIFIER),
            ("resource", &resource),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await,
    )
    .await;
    // The client is cached now; a wrong secret is refused all the same.
    let rt = s(&t, "refresh_token");
    expect_error(
        app.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &client_id),
            ("client_secret", "not-the-secret"),
        ])
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "",
    )
    .await;
    expect_tokens(
        app.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await,
    )
    .await;
}
