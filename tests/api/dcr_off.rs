//! `dynamic_client_registration = false`: no `registration_endpoint` in the
//! metadata, 404 at both registration paths, and pre-registered clients
//! (code flow and client credentials) work as before.

use mcpgate_core::oauth::preregister::Auth;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{VERIFIER, spawn_app, spawn_app_with};
use crate::machine_support::{add_client, client_credentials, service_token};

async fn as_metadata(app: &crate::helpers::TestApp) -> Value {
    app.http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn registration_is_on_by_default() {
    let app = spawn_app().await;
    let m = as_metadata(&app).await;
    assert_eq!(m["registration_endpoint"], app.urls.registration_endpoint);
}

#[tokio::test]
async fn turned_off_the_endpoint_is_gone_from_metadata_and_both_paths_answer_404() {
    let app = spawn_app_with(|s| s.dynamic_client_registration = false).await;
    let m = as_metadata(&app).await;
    assert!(m.get("registration_endpoint").is_none(), "{m}");
    assert!(m.get("token_endpoint").is_some());
    let body = json!({
        "redirect_uris": ["http://127.0.0.1:1/callback"],
        "token_endpoint_auth_method": "none",
    });
    for path in ["/v1/oauth/register", "/register"] {
        let r = app
            .http
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error_description"]
                .as_str()
                .unwrap()
                .contains("dynamic_client_registration = false"),
            "{e}"
        );
    }
    assert!(app.store.list_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn turned_off_pre_registered_clients_still_work() {
    let app = spawn_app_with(|s| s.dynamic_client_registration = false).await;
    // Client credentials.
    let (_, token) = service_token(&app, "Job").await;
    assert!(token.starts_with("mcp_"));
    // The code flow of a pre-registered public client.
    let redirect = "http://127.0.0.1:1/callback";
    let (id, _) = add_client(&app, "Desktop", Auth::Public, &[redirect], &[], None).await;
    app.add_user("alice").await;
    let code = app
        .authorize("alice", &app.auth_params(&id, redirect))
        .await;
    let resource = app.resource();
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &id),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert!(t["refresh_token"].is_string(), "{t}");
    // And a pre-registered client's secret still authenticates.
    let (id, secret) = add_client(&app, "Job 2", Auth::Secret, &[], &[], None).await;
    let (status, _) = client_credentials(&app, &id, &secret.unwrap(), &[]).await;
    assert_eq!(status, StatusCode::OK);
}
