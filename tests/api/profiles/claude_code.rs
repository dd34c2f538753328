//! Claude Code: a port-less loopback callback registered, an ephemeral port
//! used; `resource` with a trailing slash, or no `resource` at all.

use serde_json::json;

use super::{ClientAuth, USER, authorize_in, discover, pkce, post_token, register, tokens};
use crate::helpers::spawn_app;
use crate::token::access_record;

/// What Claude Code registers.
const REGISTERED: &str = "http://localhost/callback";

/// Claude Code's DCR request.
fn registration() -> serde_json::Value {
    json!({
        "client_name": "Claude Code (mcpgate)",
        "redirect_uris": [REGISTERED],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

#[tokio::test]
async fn claude_code_registers_a_portless_loopback_callback_uses_an_ephemeral_port_and_a_trailing_slash_resource()
 {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let d = discover(&app).await;
    let reg = register(&app, &d.endpoint("registration_endpoint"), &registration()).await;
    assert_eq!(reg["redirect_uris"], json!([REGISTERED]));
    assert!(reg.get("client_secret").is_none(), "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    let callback = "http://localhost:53682/callback";
    let resource = format!("{}/v1/ai/mcp/", app.urls.issuer);
    let (verifier, challenge) = pkce();
    let a = authorize_in(
        &app,
        &app.browser(),
        &d.endpoint("authorization_endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("redirect_uri", callback),
            ("state", "cc-state"),
            ("scope", "mcp"),
            ("resource", &resource),
        ],
        "approve",
    )
    .await;
    assert!(
        a.callback.starts_with(&format!("{callback}?code=")),
        "{}",
        a.callback
    );
    assert_eq!(a.param("state").as_deref(), Some("cc-state"));

    let token_endpoint = d.endpoint("token_endpoint");
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("code_verifier", &verifier),
                ("redirect_uri", callback),
                ("client_id", &client_id),
                ("resource", &resource),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    // Bound to the canonical MCP resource, without the slash.
    assert_eq!(
        access_record(&app, at).await.resource.as_str(),
        app.resource()
    );
    super::assert_whoami(&app, at, &client_id).await;

    let refreshed = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
                ("resource", &resource),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    let at = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        access_record(&app, at).await.resource.as_str(),
        app.resource()
    );
    super::assert_whoami(&app, at, &client_id).await;
}

#[tokio::test]
async fn claude_code_without_any_resource_gets_a_grant_bound_to_the_mcp_endpoint() {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let d = discover(&app).await;
    let reg = register(&app, &d.endpoint("registration_endpoint"), &registration()).await;
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // Another run, another port.
    let callback = "http://localhost:61011/callback";
    let (verifier, challenge) = pkce();
    let a = authorize_in(
        &app,
        &app.browser(),
        &d.endpoint("authorization_endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("redirect_uri", callback),
            ("state", "cc-state"),
            ("scope", "mcp"),
        ],
        "approve",
    )
    .await;
    assert!(
        a.callback.starts_with(&format!("{callback}?code=")),
        "{}",
        a.callback
    );

    let token_endpoint = d.endpoint("token_endpoint");
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("code_verifier", &verifier),
                ("redirect_uri", callback),
                ("client_id", &client_id),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(
        access_record(&app, at).await.resource.as_str(),
        app.resource()
    );
    super::assert_whoami(&app, at, &client_id).await;

    let refreshed = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    let at = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        access_record(&app, at).await.resource.as_str(),
        app.resource()
    );
    super::assert_whoami(&app, at, &client_id).await;
}
