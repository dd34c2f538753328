//! The whole authorization code flow, end to end over HTTP.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{VERIFIER, query_param, spawn_app};

#[tokio::test]
async fn register_sign_in_approve_exchange_and_refresh() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let redirect = "http://127.0.0.1:1/callback";
    let client_id = app.register_public(redirect).await;

    let browser = app.browser();
    let loc = browser
        .sign_in_and_approve(
            &app.auth_params(&client_id, redirect),
            "alice",
            crate::helpers::PASSWORD,
        )
        .await;
    assert!(
        loc.starts_with("http://127.0.0.1:1/callback?code="),
        "{loc}"
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("state-123"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.urls.issuer.as_str())
    );
    let code = query_param(&loc, "code").unwrap();

    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", &app.resource()),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let t: Value = r.json().await.unwrap();
    let at = t["access_token"].as_str().unwrap();
    assert!(
        at.starts_with("mcp_")
            && at.len() == 36
            && at[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 86_400);
    assert_eq!(t["scope"], "mcp");
    let rt = t["refresh_token"].as_str().unwrap();

    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: Value = r.json().await.unwrap();
    assert_ne!(t2["access_token"], t["access_token"]);
    assert_ne!(t2["refresh_token"], t["refresh_token"]);

    // A second authorization skips the consent page: consent is remembered.
    let r = browser
        .open_authorize(&app.auth_params(&client_id, redirect))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(crate::helpers::location(&r).contains("code="));
}

#[tokio::test]
async fn turning_refresh_tokens_off_also_refuses_refresh_tokens_issued_before() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (client_id, t) = app.full_flow("alice").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let app = app.restart_with(|s| s.issue_refresh_tokens = false).await;
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("issue_refresh_tokens")
    );
}
