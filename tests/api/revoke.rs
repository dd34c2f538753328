//! Token revocation (RFC 7009) at `/v1/oauth/revoke` and `/revoke`.

use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app};
use crate::token::{
    REDIRECT, access_record, basic, expect_error, expect_tokens, post_form, refresh,
    refresh_record, s,
};

/// Signs alice in through a fresh public client; returns (client_id, AT, RT).
async fn signed_in(app: &TestApp) -> (String, String, String) {
    app.add_user("alice").await;
    let (client_id, t) = app.full_flow("alice").await;
    (client_id, s(&t, "access_token"), s(&t, "refresh_token"))
}

async fn revoke(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    post_form(app, path, form, None).await
}

#[tokio::test]
async fn revoking_an_access_token_marks_it_revoked_and_leaves_the_refresh_token() {
    let app = spawn_app().await;
    let (client_id, at, rt) = signed_in(&app).await;
    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[
            ("token", &at),
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(access_record(&app, &at).await.revoked_at.is_some());
    // Only that token: the grant's refresh token still works.
    assert_eq!(refresh_record(&app, &rt).await.revoked_at, None);
    expect_tokens(refresh(&app, &rt, &client_id).await).await;
}

#[tokio::test]
async fn the_root_revoke_path_works_the_same() {
    let app = spawn_app().await;
    let (client_id, at, _) = signed_in(&app).await;
    let r = revoke(
        &app,
        "/revoke",
        &[("token", &at), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(access_record(&app, &at).await.revoked_at.is_some());
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_whole_grant() {
    let app = spawn_app().await;
    let (client_id, at1, rt1) = signed_in(&app).await;
    let t2 = expect_tokens(refresh(&app, &rt1, &client_id).await).await;
    let (at2, rt2) = (s(&t2, "access_token"), s(&t2, "refresh_token"));

    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[
            ("token", &rt2),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = refresh(&app, &rt2, &client_id).await;
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant", "revoked").await;
    assert!(refresh_record(&app, &rt2).await.revoked_at.is_some());
    assert!(access_record(&app, &at1).await.revoked_at.is_some());
    assert!(access_record(&app, &at2).await.revoked_at.is_some());
}

#[tokio::test]
async fn a_confidential_client_revokes_with_basic_authentication() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client_id, secret) = app
        .register_confidential(REDIRECT, "client_secret_basic")
        .await;
    let code = crate::token::code_for(&app, "alice", &client_id).await;
    let r = post_form(
        &app,
        "/v1/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", crate::helpers::VERIFIER),
        ],
        Some(&basic(&client_id, &secret)),
    )
    .await;
    let at = s(&expect_tokens(r).await, "access_token");

    let r = post_form(
        &app,
        "/v1/oauth/revoke",
        &[("token", &at)],
        Some(&basic(&client_id, "wrong")),
    )
    .await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "wrong client_secret",
    )
    .await;
    assert!(h.contains_key("www-authenticate"));
    assert_eq!(access_record(&app, &at).await.revoked_at, None);

    let r = post_form(
        &app,
        "/v1/oauth/revoke",
        &[("token", &at)],
        Some(&basic(&client_id, &secret)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(access_record(&app, &at).await.revoked_at.is_some());
}

#[tokio::test]
async fn an_unknown_token_is_accepted_silently() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[
            ("token", "mcp_00000000000000000000000000000000"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[
            ("token", "not-a-token-at-all"),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_clients_token_is_unauthorized_client_and_nothing_is_revoked() {
    let app = spawn_app().await;
    let (client_a, at, rt) = signed_in(&app).await;
    let client_b = app.register_public(REDIRECT).await;

    for token in [&at, &rt] {
        let r = revoke(
            &app,
            "/v1/oauth/revoke",
            &[("token", token), ("client_id", &client_b)],
        )
        .await;
        expect_error(
            r,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "issued to another client",
        )
        .await;
    }
    assert_eq!(access_record(&app, &at).await.revoked_at, None);
    assert_eq!(refresh_record(&app, &rt).await.revoked_at, None);
    expect_tokens(refresh(&app, &rt, &client_a).await).await;
}

#[tokio::test]
async fn a_missing_token_is_invalid_request() {
    let app = spawn_app().await;
    let client_id = app.register_public(REDIRECT).await;
    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ],
    )
    .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "token parameter is missing",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_token_type_hint_is_unsupported_token_type() {
    let app = spawn_app().await;
    let (client_id, at, _) = signed_in(&app).await;
    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[
            ("token", &at),
            ("token_type_hint", "id_token"),
            ("client_id", &client_id),
        ],
    )
    .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "unsupported_token_type",
        "token_type_hint \"id_token\"",
    )
    .await;
    assert_eq!(access_record(&app, &at).await.revoked_at, None);
}

#[tokio::test]
async fn revocation_requires_client_authentication() {
    let app = spawn_app().await;
    let (_, at, _) = signed_in(&app).await;
    let r = revoke(&app, "/v1/oauth/revoke", &[("token", &at)]).await;
    let h = expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication is missing",
    )
    .await;
    assert!(h.get("www-authenticate").is_none());
    let r = revoke(
        &app,
        "/v1/oauth/revoke",
        &[("token", &at), ("client_id", "no-such-client")],
    )
    .await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "no-such-client",
    )
    .await;
    assert_eq!(access_record(&app, &at).await.revoked_at, None);
}
