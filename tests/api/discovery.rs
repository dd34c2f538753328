//! Discovery documents (RFC 8414, RFC 9728) and the CORS they need.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn authorization_server_metadata_has_every_required_field_and_an_exact_issuer() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m: Value = r.json().await.unwrap();
    let issuer = app.urls.issuer.clone();
    assert_eq!(m["issuer"], issuer.as_str());
    assert!(!issuer.ends_with('/'));
    assert_eq!(
        m["authorization_endpoint"],
        format!("{issuer}/v1/oauth/authorize")
    );
    assert_eq!(m["token_endpoint"], format!("{issuer}/v1/oauth/token"));
    assert_eq!(
        m["registration_endpoint"],
        format!("{issuer}/v1/oauth/register")
    );
    assert_eq!(
        m["revocation_endpoint"],
        format!("{issuer}/v1/oauth/revoke")
    );
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["mcp", "offline_access"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        m["revocation_endpoint_auth_methods_supported"],
        m["token_endpoint_auth_methods_supported"]
    );
    assert_eq!(
        m["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
    assert_eq!(
        m["revocation_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn protected_resource_metadata_is_served_path_suffixed_and_at_the_root() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/oauth-protected-resource/v1/ai/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["resource"], app.resource());
        assert_eq!(m["resource"], format!("{}/v1/ai/mcp", app.urls.issuer));
        assert_eq!(
            m["authorization_servers"],
            serde_json::json!([app.urls.issuer])
        );
        assert_eq!(m["scopes_supported"], serde_json::json!(["mcp"]));
        assert_eq!(m["bearer_methods_supported"], serde_json::json!(["header"]));
    }
}

#[tokio::test]
async fn openid_configuration_is_a_clean_404_never_a_partial_document() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("issuer").is_none());
}

#[tokio::test]
async fn metadata_answers_cors_preflights_from_browser_clients() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/v1/ai/mcp",
        "/v1/oauth/register",
        "/v1/oauth/token",
        "/register",
        "/token",
    ] {
        let r = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "http://localhost:6274")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type, mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
    }
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("Origin", "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn the_authorization_endpoint_has_no_cors() {
    let app = spawn_app().await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/oauth/authorize"))
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn root_endpoint_style_advertises_the_root_paths() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.endpoint_style = mcpgate::config::EndpointStyleSetting::Root
    })
    .await;
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["authorization_endpoint"],
        format!("{}/authorize", app.urls.issuer)
    );
    assert_eq!(m["token_endpoint"], format!("{}/token", app.urls.issuer));
    assert_eq!(
        m["registration_endpoint"],
        format!("{}/register", app.urls.issuer)
    );
}

#[tokio::test]
async fn turning_refresh_tokens_off_removes_the_grant_from_metadata() {
    let app = crate::helpers::spawn_app_with(|s| s.issue_refresh_tokens = false).await;
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["authorization_code", "client_credentials"])
    );
    // No refresh token to ask for: offline_access is not offered either.
    assert_eq!(m["scopes_supported"], serde_json::json!(["mcp"]));
}

#[tokio::test]
async fn a_public_url_with_a_path_serves_metadata_at_the_rfc_8414_inserted_location() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.public_url = Some("http://localhost:9999/gate".into())
    })
    .await;
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server/gate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], "http://localhost:9999/gate");
    assert_eq!(
        m["token_endpoint"],
        "http://localhost:9999/gate/v1/oauth/token"
    );
    let r = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource/gate/v1/ai/mcp"))
        .send()
        .await
        .unwrap();
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["resource"], "http://localhost:9999/gate/v1/ai/mcp");
    // The health endpoint is served below the path too (the banner prints it there).
    let r = app.http.get(app.url("/gate/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The OAuth endpoints live below the path.
    let r = app
        .http
        .post(app.url("/gate/v1/oauth/token"))
        .form(&[("grant_type", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
