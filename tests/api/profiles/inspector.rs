//! MCP Inspector (and other browser-based clients): CORS preflights and
//! CORS on the actual responses of every endpoint the page calls with
//! `fetch`, `WWW-Authenticate` and `Mcp-Session-Id` exposed on the MCP
//! endpoint, and no CORS on the authorization endpoint.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{USER, authorize_in, local, path_of, pkce};
use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{
    MCP, McpClient, SseReader, header, initialize_body, initialized_notification,
    missing_token_challenge, response_message,
};

/// The Inspector page's origin.
const ORIGIN: &str = "http://localhost:6274";
/// The Inspector's OAuth callback.
const CALLBACK: &str = "http://localhost:6274/oauth/callback";
/// The headers the Inspector asks for in its preflights.
const REQUEST_HEADERS: &str = "authorization, content-type, mcp-protocol-version";

/// A comma-separated header as lower-case items.
fn items(r: &reqwest::Response, name: &str) -> Vec<String> {
    header(r, name)
        .unwrap_or_else(|| panic!("{name} on {} {}", r.status(), r.url()))
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

/// Asserts the CORS headers a browser needs to read an actual response.
fn assert_cors(r: &reqwest::Response) {
    assert_eq!(
        header(r, "access-control-allow-origin").as_deref(),
        Some("*"),
        "{} {}",
        r.status(),
        r.url()
    );
}

/// Asserts CORS on an MCP endpoint response, with the headers the
/// Inspector reads exposed.
fn assert_mcp_cors(r: &reqwest::Response) {
    assert_cors(r);
    let exposed = items(r, "access-control-expose-headers");
    for h in ["www-authenticate", "mcp-session-id"] {
        assert!(exposed.contains(&h.to_string()), "{h} in {exposed:?}");
    }
}

/// Sends the Inspector's preflight for `method` on `path`; asserts it is
/// allowed with every requested header.
async fn preflight(app: &TestApp, path: &str, method: &str) -> reqwest::Response {
    let r = app
        .http
        .request(Method::OPTIONS, app.url(path))
        .header("origin", ORIGIN)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", REQUEST_HEADERS)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    assert_cors(&r);
    let methods = items(&r, "access-control-allow-methods");
    assert!(
        methods.contains(&method.to_ascii_lowercase()),
        "{path}: {method} in {methods:?}"
    );
    let allowed = items(&r, "access-control-allow-headers");
    for h in REQUEST_HEADERS.split(", ") {
        assert!(
            allowed.contains(&h.to_string()),
            "{path}: {h} in {allowed:?}"
        );
    }
    r
}

#[tokio::test]
async fn mcp_inspector_preflights_are_answered_on_every_endpoint_it_fetches_and_never_on_authorize()
{
    let app = spawn_app().await;
    for (path, method) in [
        ("/.well-known/oauth-protected-resource/v1/ai/mcp", "GET"),
        ("/.well-known/oauth-protected-resource", "GET"),
        ("/.well-known/oauth-authorization-server", "GET"),
        ("/register", "POST"),
        ("/token", "POST"),
        ("/v1/oauth/register", "POST"),
        ("/v1/oauth/token", "POST"),
        (MCP, "POST"),
        (MCP, "GET"),
        (MCP, "DELETE"),
    ] {
        preflight(&app, path, method).await;
    }

    // The MCP endpoint also allows the session and protocol headers.
    let r = app
        .http
        .request(Method::OPTIONS, app.url(MCP))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let allowed = items(&r, "access-control-allow-headers");
    for h in ["mcp-session-id", "last-event-id"] {
        assert!(allowed.contains(&h.to_string()), "{h} in {allowed:?}");
    }

    // The authorization endpoint is a page, never fetched: no CORS.
    for path in ["/v1/oauth/authorize", "/authorize"] {
        let r = app
            .http
            .request(Method::OPTIONS, app.url(path))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", REQUEST_HEADERS)
            .send()
            .await
            .unwrap();
        assert!(!r.status().is_server_error(), "{path}: {}", r.status());
        for h in [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ] {
            assert!(header(&r, h).is_none(), "{path}: {h}");
        }
    }
}

#[tokio::test]
async fn mcp_inspector_reads_every_response_of_its_flow_from_the_browser() {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let origin_get = |url: String| app.http.get(url).header("origin", ORIGIN);

    // The 401 from the MCP endpoint, readable with its challenge.
    let r = app
        .http
        .post(app.url(MCP))
        .header("origin", ORIGIN)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_body(1, "2025-06-18").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_mcp_cors(&r);
    let challenge = header(&r, "www-authenticate").unwrap();
    assert_eq!(challenge, missing_token_challenge(&app));

    // Both metadata documents.
    let r = origin_get(local(&app, &app.urls.resource_metadata))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_cors(&r);
    let prm: Value = r.json().await.unwrap();
    assert_eq!(prm["resource"], app.resource());
    let r = origin_get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_cors(&r);
    let asm: Value = r.json().await.unwrap();
    let endpoint = |name: &str| asm[name].as_str().unwrap().to_string();

    // Registration, as the Inspector sends it.
    let r = app
        .http
        .post(local(&app, &endpoint("registration_endpoint")))
        .header("origin", ORIGIN)
        .json(&json!({
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "MCP Inspector",
            "client_uri": "https://github.com/modelcontextprotocol/inspector",
            "scope": "mcp",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_cors(&r);
    let reg: Value = r.json().await.unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // The authorization endpoint, opened as a page (a top-level navigation
    // may carry an Origin too): served, but without CORS.
    let (verifier, challenge) = pkce();
    let authorization_endpoint = endpoint("authorization_endpoint");
    let params = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("redirect_uri", CALLBACK),
        ("state", "inspector-state"),
        ("scope", "mcp"),
        ("resource", prm["resource"].as_str().unwrap()),
    ];
    let q: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = origin_get(format!(
        "{}?{}",
        app.url(&path_of(&app, &authorization_endpoint)),
        crate::helpers::serde_urlencoded_pairs(&q)
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "access-control-allow-origin").is_none());
    let a = authorize_in(
        &app,
        &app.browser(),
        &authorization_endpoint,
        &params,
        "approve",
    )
    .await;
    assert_eq!(a.param("state").as_deref(), Some("inspector-state"));

    // The token endpoint: errors and tokens are both readable.
    let token_url = local(&app, &endpoint("token_endpoint"));
    let r = app
        .http
        .post(&token_url)
        .header("origin", ORIGIN)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "not-a-code"),
            ("redirect_uri", CALLBACK),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_cors(&r);
    let r = app
        .http
        .post(&token_url)
        .header("origin", ORIGIN)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", a.code().as_str()),
            ("redirect_uri", CALLBACK),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.as_str()),
            ("resource", prm["resource"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_cors(&r);
    let t = super::tokens(r).await;

    // The MCP endpoint with the token, from the page's origin.
    let mut c = McpClient::new(&app, t["access_token"].as_str().unwrap());
    let r = c
        .post(&initialize_body(1, "2025-06-18"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_mcp_cors(&r);
    let session = header(&r, "mcp-session-id").expect("Mcp-Session-Id");
    let m = SseReader::new(r).message_with_id(1).await;
    c.session = Some(session);
    c.version = Some(m["result"]["protocolVersion"].as_str().unwrap().to_string());
    let r = c
        .post(&initialized_notification())
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_mcp_cors(&r);
    let r = c
        .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_mcp_cors(&r);
    let m = response_message(r, 2).await;
    assert_eq!(m["result"]["isError"], false, "{m}");
    assert_eq!(m["result"]["structuredContent"]["user"], USER);
    assert_eq!(m["result"]["structuredContent"]["client_id"], client_id);

    // A bad token: the invalid_token 401 is readable too.
    let r = app
        .http
        .post(app.url(MCP))
        .header("origin", ORIGIN)
        .header(
            "authorization",
            "Bearer mcp_00000000000000000000000000000000",
        )
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize_body(1, "2025-06-18").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_mcp_cors(&r);
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );

    // The refresh, from the browser.
    let r = app
        .http
        .post(&token_url)
        .header("origin", ORIGIN)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_cors(&r);
    let refreshed = super::tokens(r).await;
    super::assert_whoami(
        &app,
        refreshed["access_token"].as_str().unwrap(),
        &client_id,
    )
    .await;
}
