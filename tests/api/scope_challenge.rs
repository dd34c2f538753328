//! The resource side of scopes (MCP 2025-11-25 / 2026-07-28 authorization,
//! RFC 6750 §3, RFC 9728): challenges name the scope the endpoints need, a
//! token without it gets 403 `insufficient_scope`, and `offline_access`
//! yields a refresh token but never appears in a challenge or in the
//! protected resource metadata.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, VERIFIER, spawn_app_with};
use crate::mcp_support::{MCP, bearer, insert_token, www_authenticate};

fn two_scopes(s: &mut mcpgate::config::Settings) {
    s.scopes = vec!["mcp".into(), "admin".into(), "offline_access".into()];
    s.default_scope = "mcp offline_access".into();
}

async fn post_mcp(app: &TestApp, path: &str, auth: Option<&str>) -> reqwest::Response {
    let mut rb = app
        .http
        .post(app.url(path))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string());
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn the_challenge_names_the_needed_scope_without_offline_access() {
    let app = spawn_app_with(two_scopes).await;
    for path in [MCP, "/sse", "/tools"] {
        let r = if path == "/sse" || path == "/tools" {
            app.http.get(app.url(path)).send().await.unwrap()
        } else {
            post_mcp(&app, path, None).await
        };
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let h = www_authenticate(&r);
        assert!(h.contains("scope=\"mcp\""), "{path}: {h}");
        assert!(!h.contains("offline_access"), "{path}: {h}");
        assert!(h.contains("resource_metadata=\""), "{path}: {h}");
    }
}

#[tokio::test]
async fn a_token_without_the_needed_scope_gets_403_naming_it() {
    let app = spawn_app_with(two_scopes).await;
    app.add_user("alice").await;
    let client = app.register_public("http://127.0.0.1:1/callback").await;
    let token = insert_token(&app, "alice", &client, "admin", &app.resource()).await;
    for path in [MCP, "/tools"] {
        let r = if path == "/tools" {
            app.http
                .get(app.url(path))
                .header("authorization", bearer(&token))
                .send()
                .await
                .unwrap()
        } else {
            post_mcp(&app, path, Some(&bearer(&token))).await
        };
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let h = www_authenticate(&r);
        assert!(h.starts_with("Bearer error=\"insufficient_scope\""), "{h}");
        assert!(h.contains("scope=\"mcp\""), "{h}");
        assert!(
            h.contains(&format!(
                "resource_metadata=\"{}\"",
                app.urls.resource_metadata
            )),
            "{h}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }
    // With the scope it is let in.
    let token = insert_token(&app, "alice", &client, "mcp admin", &app.resource()).await;
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn offline_access_is_in_the_as_metadata_and_not_in_the_resource_metadata() {
    let app = spawn_app_with(two_scopes).await;
    let get = |p: String| {
        let http = app.http.clone();
        async move {
            http.get(p)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let prm = get(app
        .urls
        .resource_metadata
        .replace(&app.urls.issuer, &app.base))
    .await;
    assert_eq!(prm["scopes_supported"], json!(["mcp", "admin"]), "{prm}");
    let prm = get(app
        .urls
        .sse_resource_metadata
        .replace(&app.urls.issuer, &app.base))
    .await;
    assert_eq!(prm["scopes_supported"], json!(["mcp", "admin"]), "{prm}");
    // Not configured in `scopes`, offline_access is still offered by the AS.
    let app = spawn_app_with(|_| {}).await;
    let asm = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(asm["scopes_supported"], json!(["mcp", "offline_access"]));
    let prm = app
        .http
        .get(
            app.urls
                .resource_metadata
                .replace(&app.urls.issuer, &app.base),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(prm["scopes_supported"], json!(["mcp"]));
}

/// Runs the code flow for a client registered with `grants`, asking for
/// `scope`; returns the client id and the token response.
async fn flow(app: &TestApp, grants: &[&str], scope: &str) -> (String, Value) {
    let redirect = "http://127.0.0.1:1/callback";
    let r = app
        .register(json!({
            "client_name": "Offline",
            "redirect_uris": [redirect],
            "grant_types": grants,
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut params = app.auth_params(&id, redirect);
    for (k, v) in params.iter_mut() {
        if k == "scope" {
            *v = scope.to_string();
        }
    }
    let code = app.authorize("alice", &params).await;
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
    (id, r.json().await.unwrap())
}

#[tokio::test]
async fn offline_access_is_accepted_and_yields_a_refresh_token_that_works() {
    let app = spawn_app_with(|_| {}).await;
    app.add_user("alice").await;
    let (id, t) = flow(
        &app,
        &["authorization_code", "refresh_token"],
        "mcp offline_access",
    )
    .await;
    assert_eq!(t["scope"], "mcp offline_access", "{t}");
    let refresh = t["refresh_token"].as_str().expect("a refresh token");
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &id),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    assert_eq!(rotated["scope"], "mcp offline_access");
    assert!(rotated["refresh_token"].is_string());
    // The token with offline_access is accepted at the MCP endpoint.
    let at = t["access_token"].as_str().unwrap();
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn offline_access_is_left_out_when_no_refresh_token_can_be_issued() {
    // The client did not register the refresh_token grant.
    let app = spawn_app_with(|_| {}).await;
    app.add_user("alice").await;
    let (_, t) = flow(&app, &["authorization_code"], "mcp offline_access").await;
    assert_eq!(t["scope"], "mcp", "{t}");
    assert!(t.get("refresh_token").is_none(), "{t}");
    // Refresh tokens are off on the server.
    let app = spawn_app_with(|s| s.issue_refresh_tokens = false).await;
    app.add_user("alice").await;
    let (_, t) = flow(
        &app,
        &["authorization_code", "refresh_token"],
        "mcp offline_access",
    )
    .await;
    assert_eq!(t["scope"], "mcp", "{t}");
    assert!(t.get("refresh_token").is_none(), "{t}");
}
