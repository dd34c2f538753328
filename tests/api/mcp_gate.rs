//! The gate in front of every MCP route (issue 3): bearer tokens and their
//! RFC 6750 / RFC 9728 challenges, Origin and Host checks, CORS, and the
//! public manifest.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::mcp_support::{
    MCP, McpClient, assert_invalid_token, bearer, header, initialize_body, insert_token,
    metadata_url_for, missing_token_challenge, missing_token_challenge_for, signed_in,
    www_authenticate,
};

const SESSION: &str = "0123456789abcdef0123456789abcdef";

/// One request to each kind of MCP route, with `auth` as the Authorization
/// header (if any) and `query` appended to the URL.
async fn each_route(
    app: &TestApp,
    auth: Option<&str>,
    query: &str,
) -> Vec<(String, reqwest::Response)> {
    let sep = |path: &str| if path.contains('?') { "&" } else { "?" };
    let with_query = |path: &str| {
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}{}{query}", sep(path))
        }
    };
    let routes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::POST, MCP.to_string()),
        (reqwest::Method::GET, "/sse".into()),
        (reqwest::Method::GET, "/v1/ai/mcp/sse".into()),
        (
            reqwest::Method::POST,
            format!("/messages/?session_id={SESSION}"),
        ),
        (reqwest::Method::GET, "/tools".into()),
        (reqwest::Method::POST, "/tools/whoami".into()),
    ];
    let mut out = Vec::new();
    for (method, path) in routes {
        let path = with_query(&path);
        let mut rb = app
            .http
            .request(method.clone(), app.url(&path))
            .header("accept", "application/json, text/event-stream");
        if method == reqwest::Method::POST {
            rb = rb
                .header("content-type", "application/json")
                .body(initialize_body(1, "2025-06-18").to_string());
        }
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = rb.send().await.expect("request");
        out.push((format!("{method} {path}"), r));
    }
    out
}

#[tokio::test]
async fn every_mcp_route_without_a_token_answers_401_with_the_exact_challenge_and_no_error() {
    let app = spawn_app().await;
    let expected = missing_token_challenge(&app);
    assert_eq!(
        expected,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/v1/ai/mcp\", scope=\"mcp\"",
            app.urls.issuer
        )
    );
    for (route, r) in each_route(&app, None, "").await {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{route}");
        assert_eq!(
            www_authenticate(&r),
            missing_token_challenge_for(&app, r.url().path()),
            "{route}"
        );
        let body: Value = r.json().await.expect("json body");
        assert_eq!(body["error"], "unauthorized", "{route}");
    }
    // Another scheme counts as no credentials too.
    for (route, r) in each_route(&app, Some("Basic YWxpY2U6cHc="), "").await {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{route}");
        assert_eq!(
            www_authenticate(&r),
            missing_token_challenge_for(&app, r.url().path()),
            "{route}"
        );
    }
}

#[tokio::test]
async fn a_malformed_token_is_an_invalid_token_on_every_route() {
    let app = spawn_app().await;
    for (_, r) in each_route(&app, Some("Bearer not-a-real-token"), "").await {
        assert_invalid_token(
            &app,
            &r,
            "error_description=\"the access token is malformed",
        );
    }
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", "Bearer")
        .send()
        .await
        .unwrap();
    assert_invalid_token(&app, &r, "no token after Bearer");
}

#[tokio::test]
async fn an_unknown_well_formed_token_is_an_invalid_token() {
    let app = spawn_app().await;
    let unknown = format!("mcp_{}", "ab12".repeat(8));
    for (_, r) in each_route(&app, Some(&bearer(&unknown)), "").await {
        assert_invalid_token(
            &app,
            &r,
            "error_description=\"the access token is unknown\"",
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_an_invalid_token_even_after_it_was_cached() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let ok = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&at))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    app.clock.advance(24 * 3600 + 1);
    for (_, r) in each_route(&app, Some(&bearer(&at)), "").await {
        assert_invalid_token(
            &app,
            &r,
            "error_description=\"the access token has expired\"",
        );
    }
}

#[tokio::test]
async fn a_token_just_before_its_expiry_still_works() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    app.clock.advance(24 * 3600 - 1);
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_even_right_after_a_successful_call() {
    let app = spawn_app().await;
    let (client_id, at) = signed_in(&app, "alice").await;
    let call = || async {
        app.http
            .post(app.url("/tools/whoami"))
            .header("authorization", bearer(&at))
            .send()
            .await
            .unwrap()
    };
    // A successful call puts the token in the cache.
    assert_eq!(call().await.status(), StatusCode::OK);
    assert_eq!(call().await.status(), StatusCode::OK);

    let r = app
        .http
        .post(app.url("/v1/oauth/revoke"))
        .form(&[
            ("token", at.as_str()),
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = call().await;
    assert_invalid_token(
        &app,
        &r,
        "error_description=\"the access token has been revoked\"",
    );
    for (_, r) in each_route(&app, Some(&bearer(&at)), "").await {
        assert_invalid_token(
            &app,
            &r,
            "error_description=\"the access token has been revoked\"",
        );
    }
}

#[tokio::test]
async fn a_token_issued_for_another_resource_is_an_invalid_token() {
    let app = spawn_app().await;
    let (client_id, _) = signed_in(&app, "alice").await;
    let other = insert_token(
        &app,
        "alice",
        &client_id,
        "mcp",
        "https://other.example/v1/ai/mcp",
    )
    .await;
    // The same kind of token for this resource works (the insertion is sound).
    let mine = insert_token(&app, "alice", &client_id, "mcp", &app.resource()).await;
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&mine))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    for (_, r) in each_route(&app, Some(&bearer(&other)), "").await {
        assert_invalid_token(&app, &r, "was issued for https://other.example/v1/ai/mcp");
    }
}

#[tokio::test]
async fn a_token_without_the_mcp_scope_gets_403_insufficient_scope() {
    let app = spawn_app().await;
    let (client_id, _) = signed_in(&app, "alice").await;
    let token = insert_token(&app, "alice", &client_id, "other", &app.resource()).await;
    for (route, r) in each_route(&app, Some(&bearer(&token)), "").await {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{route}");
        let h = www_authenticate(&r);
        assert_eq!(
            h,
            format!(
                "Bearer error=\"insufficient_scope\", error_description=\"the access token lacks the scope mcp\", resource_metadata=\"{}\", scope=\"mcp\"",
                metadata_url_for(&app, r.url().path())
            ),
            "{route}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope", "{route}");
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused_with_400_even_with_a_valid_header() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let query = format!("access_token={at}");
    for auth in [None, Some(bearer(&at))] {
        for (route, r) in each_route(&app, auth.as_deref(), &query).await {
            assert_eq!(
                r.status(),
                StatusCode::BAD_REQUEST,
                "{route} with header {}",
                auth.is_some()
            );
            let h = www_authenticate(&r);
            assert!(h.starts_with("Bearer error=\"invalid_request\""), "{h}");
            assert!(h.contains("not accepted in the query string"), "{h}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{route}");
        }
    }
    // Without the query parameter the same token works.
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403_and_a_loopback_origin_is_allowed_for_a_loopback_server()
 {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let init = |origin: &str| {
        McpClient::new(&app, &at)
            .post(&initialize_body(1, "2025-06-18"))
            .header("origin", origin.to_string())
            .send()
    };
    let r = init("http://evil.example.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Origin"),
        "{body}"
    );

    // Refused before the token is even looked at.
    let r = app
        .http
        .get(app.url("/tools"))
        .header("origin", "http://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    for origin in [
        "http://localhost:1234",
        "http://127.0.0.1:6274",
        app.urls.issuer.as_str(),
    ] {
        let r = init(origin).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{origin}");
        assert!(header(&r, "mcp-session-id").is_some());
        let r = app
            .http
            .get(app.url("/tools"))
            .header("origin", origin)
            .header("authorization", bearer(&at))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{origin}");
    }
    // A look-alike of localhost is not loopback.
    let r = init("http://localhost.evil.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_a_public_url_only_its_origin_and_the_configured_origins_are_allowed() {
    let app = spawn_app_with(|s| {
        s.public_url = Some("https://mcp.example.com".into());
        s.allowed_origins = vec!["https://inspector.example".into()];
    })
    .await;
    assert_eq!(app.urls.issuer, "https://mcp.example.com");
    app.add_user("alice").await;
    let client_id = app.register_public("http://127.0.0.1:1/callback").await;
    let at = insert_token(&app, "alice", &client_id, "mcp", &app.resource()).await;
    let tools = |origin: &str| {
        app.http
            .get(app.url("/tools"))
            .header("origin", origin.to_string())
            .header("authorization", bearer(&at))
            .send()
    };
    for origin in [
        "http://localhost:1234",
        "http://127.0.0.1:6274",
        "https://evil.example.com",
    ] {
        assert_eq!(
            tools(origin).await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
    for origin in ["https://mcp.example.com", "https://inspector.example"] {
        assert_eq!(
            tools(origin).await.unwrap().status(),
            StatusCode::OK,
            "{origin}"
        );
    }
    // The public host is accepted as Host, and so are loopback hosts.
    let r = app
        .http
        .get(app.url("/tools"))
        .header("host", "mcp.example.com")
        .header("authorization", bearer(&at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_host_header_is_refused_with_403() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    for path in ["/tools", "/sse"] {
        let r = app
            .http
            .get(app.url(path))
            .header("host", "evil.example.com")
            .header("authorization", bearer(&at))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains("Host"),
            "{body}"
        );
    }
    let r = McpClient::new(&app, &at)
        .post(&initialize_body(1, "2025-06-18"))
        .header("host", "evil.example.com:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .http
        .get(app.url("/tools"))
        .header("host", "localhost")
        .header("authorization", bearer(&at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cors_preflight_on_the_mcp_endpoint_is_allowed() {
    let app = spawn_app().await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url(MCP))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let methods = header(&r, "access-control-allow-methods")
        .expect("allow-methods")
        .to_ascii_lowercase();
    for m in ["get", "post", "delete"] {
        assert!(methods.contains(m), "{methods}");
    }
    let allowed = header(&r, "access-control-allow-headers")
        .expect("allow-headers")
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
}

#[tokio::test]
async fn the_401_exposes_www_authenticate_and_the_session_header_to_browsers() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url(MCP))
        .header("origin", "http://localhost:6274")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_body(1, "2025-06-18").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let exposed = header(&r, "access-control-expose-headers")
        .expect("expose-headers")
        .to_ascii_lowercase();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    assert!(exposed.contains("mcp-session-id"), "{exposed}");
    assert_eq!(www_authenticate(&r), missing_token_challenge(&app));
}

#[tokio::test]
async fn the_manifest_is_public_and_names_the_endpoints_metadata_and_scopes() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/.well-known/mcp/manifest.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = header(&r, "content-type").unwrap();
    assert!(ct.starts_with("application/json"), "{ct}");
    let m: Value = r.json().await.unwrap();
    let issuer = &app.urls.issuer;
    assert_eq!(m["endpoints"]["streamable_http"], json!(app.resource()));
    assert_eq!(
        m["endpoints"]["streamable_http"],
        json!(format!("{issuer}/v1/ai/mcp"))
    );
    assert_eq!(m["endpoints"]["sse"], json!(format!("{issuer}/sse")));
    assert_eq!(
        m["endpoints"]["messages"],
        json!(format!("{issuer}/messages/"))
    );
    assert_eq!(m["endpoints"]["tools"], json!(format!("{issuer}/tools")));
    assert_eq!(m["authentication"]["type"], "oauth2");
    assert_eq!(
        m["authentication"]["protected_resource_metadata"],
        json!(app.urls.resource_metadata)
    );
    assert_eq!(
        m["authentication"]["authorization_servers"],
        json!([issuer])
    );
    assert_eq!(m["authentication"]["scopes"], json!(["mcp"]));
    assert_eq!(m["name"], "mcpgate");
    let versions = m["protocol_versions"].as_array().unwrap();
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        assert!(versions.contains(&json!(v)), "{v}");
    }
}

#[tokio::test]
async fn the_legacy_sse_endpoint_is_a_resource_of_its_own_with_matching_metadata() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/sse")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let h = www_authenticate(&r);
    let url = format!(
        "{}/.well-known/oauth-protected-resource/sse",
        app.urls.issuer
    );
    assert!(h.contains(&format!("resource_metadata=\"{url}\"")), "{h}");
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource/sse"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["resource"], format!("{}/sse", app.urls.issuer));
    assert_eq!(
        m["authorization_servers"],
        serde_json::json!([app.urls.issuer])
    );
    // A token bound to the SSE resource works on every MCP route, and one
    // for the main resource works on /sse.
    let (client_id, _) = signed_in(&app, "alice").await;
    let sse_token = insert_token(
        &app,
        "alice",
        &client_id,
        "mcp",
        &format!("{}/sse", app.urls.issuer),
    )
    .await;
    let r = app
        .http
        .post(app.url("/tools/whoami"))
        .header("authorization", bearer(&sse_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
