//! `public_clients = false` (docs/configuration.md): clients that register
//! themselves or are metadata documents must authenticate. A public client
//! registered before the switch can no longer redeem its code; a
//! confidential one; the
//! metadata lists no `none`. (Registration and metadata documents with
//! `none` are refused: tests/api/upstream_oauth_pkjwt.rs.)

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{VERIFIER, spawn_app};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

#[tokio::test]
async fn after_the_switch_an_earlier_public_client_gets_invalid_client_and_a_confidential_one_works()
 {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let public = app.register_public(REDIRECT).await;
    let (confidential, secret) = app
        .register_confidential(REDIRECT, "client_secret_basic")
        .await;
    let app = app.restart_with(|s| s.public_clients = false).await;

    let meta: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for list in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = meta[list].as_array().unwrap();
        assert!(!methods.iter().any(|m| m == "none"), "{list}: {methods:?}");
        assert!(methods.iter().any(|m| m == "private_key_jwt"));
    }

    let code = app
        .authorize("alice", &app.auth_params(&public, REDIRECT))
        .await;
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &public),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("public_clients = false"),
        "{e}"
    );

    let code = app
        .authorize("alice", &app.auth_params(&confidential, REDIRECT))
        .await;
    let r = app
        .http
        .post(app.url("/v1/oauth/token"))
        .basic_auth(&confidential, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}
