//! The client credentials grant (RFC 6749 §4.4, MCP SEP-1046) for
//! pre-registered machine clients, and the service identity its tokens
//! carry to the MCP endpoint.

use mcpgate_core::crypto::hash_secret;
use mcpgate_core::oauth::preregister::Auth;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};
use crate::machine_support::{add_client, add_machine, basic, client_credentials, service_token};
use crate::mcp_support::{MCP, McpClient, bearer, signed_in};

#[tokio::test]
async fn a_machine_client_gets_a_service_token_with_basic_or_post_and_no_refresh_token() {
    let app = spawn_app().await;
    let (id, secret) = add_machine(&app, "Nightly report", None).await;

    let (status, body) = client_credentials(&app, &id, &secret, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token = body["access_token"].as_str().unwrap();
    let record = app
        .store
        .access_token(&hash_secret(token))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(record.user_id, None, "a service token has no user");
    assert_eq!(record.client_id.as_str(), id);
    assert_eq!(record.resource.as_str(), app.resource());

    // client_secret_post, with the resource and scope named.
    let resource = app.resource();
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "mcp"),
            ("resource", &resource),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "mcp");
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn whoami_shows_the_service_identity_and_no_user() {
    let app = spawn_app().await;
    let (id, token) = service_token(&app, "Nightly report").await;
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("whoami", json!({})).await;
    let s = &m["result"]["structuredContent"];
    assert_eq!(s["subject_type"], "service", "{m}");
    assert_eq!(s["service"], "Nightly report");
    assert_eq!(s["client_id"], id);
    assert!(s.get("user").is_none() && s.get("user_id").is_none(), "{m}");
    let text = m["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("service identity Nightly report"), "{text}");
    assert!(text.contains("not a user"), "{text}");

    // The REST path sees the same identity.
    let r = app
        .http
        .post(app.url("/tools/whoami"))
        .header("authorization", bearer(&token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("Nightly report"), "{body}");
    assert!(body.to_string().contains("\"service\""), "{body}");
}

#[tokio::test]
async fn scopes_are_those_the_client_was_given_at_most() {
    let app = spawn_app_with(|s| s.scopes = vec!["mcp".into(), "admin".into()]).await;
    let (id, secret) = add_machine(&app, "Narrow", Some("mcp")).await;
    let (status, body) = client_credentials(&app, &id, &secret, &[("scope", "mcp admin")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("beyond")
    );
    let (status, body) = client_credentials(&app, &id, &secret, &[("scope", "nope")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );

    let (id, secret) = add_machine(&app, "Wide", Some("mcp admin")).await;
    let (status, body) = client_credentials(&app, &id, &secret, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "admin mcp");
    let (status, body) = client_credentials(&app, &id, &secret, &[("scope", "admin")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "admin");

    let (status, body) = client_credentials(
        &app,
        &id,
        &secret,
        &[("resource", "https://elsewhere.example/mcp")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target", "{body}");
}

#[tokio::test]
async fn clients_that_may_not_use_the_grant_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let redirect = "http://127.0.0.1:1/callback";

    // A self-registered (DCR) confidential client.
    let (dcr, dcr_secret) = app
        .register_confidential(redirect, "client_secret_basic")
        .await;
    let (status, body) = client_credentials(&app, &dcr, &dcr_secret, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("registered itself")
    );

    // A pre-registered public client.
    let (public, _) = add_client(&app, "Desktop", Auth::Public, &[redirect], &[], None).await;
    let r = app
        .token(&[("grant_type", "client_credentials"), ("client_id", &public)])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("public client"),
        "{body}"
    );

    // A pre-registered confidential client not given the grant.
    let (web, web_secret) = add_client(&app, "Web app", Auth::Secret, &[redirect], &[], None).await;
    let (status, body) = client_credentials(&app, &web, &web_secret.unwrap(), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not given"),
        "{body}"
    );

    // A wrong secret.
    let (id, _) = add_machine(&app, "Job", None).await;
    let r = app
        .http
        .post(app.url("/v1/oauth/token"))
        .header("authorization", basic(&id, "mcps_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // No token was issued to any of them.
    for c in [&dcr, &public, &web, &id] {
        let n = app
            .store
            .count_active_access_tokens(
                &mcpgate_core::domain::ClientId::parse(c).unwrap(),
                i64::MAX / 2,
            )
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}

#[tokio::test]
async fn a_service_token_is_refused_once_its_client_is_removed_or_it_is_revoked() {
    let app = spawn_app().await;
    let (id, secret) = add_machine(&app, "Job", None).await;
    let (_, body) = client_credentials(&app, &id, &secret, &[]).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;

    // RFC 7009 revocation by the client itself.
    let r = app
        .http
        .post(app.url("/v1/oauth/revoke"))
        .header("authorization", basic(&id, &secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (r, _) = c.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Removing the client removes its service tokens.
    let (_, body) = client_credentials(&app, &id, &secret, &[]).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    assert!(
        app.store
            .delete_client(&mcpgate_core::domain::ClientId::parse(&id).unwrap())
            .await
            .unwrap()
    );
    app.auth.forget_cached_tokens();
    let r = app
        .http
        .post(app.url(MCP))
        .header("authorization", bearer(&token))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn removing_a_user_leaves_service_tokens_alone() {
    let app = spawn_app().await;
    let (_, user_token) = signed_in(&app, "alice").await;
    let (_, service) = service_token(&app, "Job").await;
    mcpgate::auth::users::remove(app.store.as_ref(), "alice")
        .await
        .unwrap();
    app.auth.forget_cached_tokens();
    let mut u = McpClient::new(&app, &user_token);
    let (r, _) = u.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut s = McpClient::new(&app, &service);
    s.initialize("2025-06-18").await;
    let m = s.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["structuredContent"]["service"], "Job");
}

#[tokio::test]
async fn the_metadata_advertises_the_grant() {
    let app = spawn_app().await;
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")), "{m}");
}
