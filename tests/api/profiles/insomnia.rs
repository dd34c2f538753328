//! Insomnia, configured as in the seed's field table: the seed's exact
//! registration body, Authorization Code + PKCE S256, credentials in the
//! request body with an empty secret, `resource` set, a random `state`,
//! scope `mcp`.

use reqwest::StatusCode;
use serde_json::json;

use super::{ClientAuth, USER, authorize_in, pkce, post_token, register, tokens};
use crate::helpers::spawn_app;
use crate::mcp_support::MCP;

/// The value of Insomnia's Redirect URL field (as in `docs/insomnia.md`).
const REDIRECT_URL: &str = "http://localhost:3000/callback";

/// A state with characters that need escaping in a URL, a form and HTML.
const STATE: &str = "Ins0mnia st@te: a+b/c=d&e?f#g%20h~i'j\"k<l>m;n,o";

#[tokio::test]
async fn insomnia_registers_with_the_seed_body_and_gets_a_token_with_pkce_and_an_empty_secret_in_the_body()
 {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let base = app.urls.issuer.clone();

    // 1. The seed's curl, byte for byte but for the redirect URI.
    let body = json!({
        "client_name": "Insomnia Local Test",
        "redirect_uris": [REDIRECT_URL],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "mcp",
        "token_endpoint_auth_method": "none"
    });
    let reg = register(&app, &format!("{base}/v1/oauth/register"), &body).await;
    for field in [
        "client_name",
        "redirect_uris",
        "grant_types",
        "response_types",
        "scope",
        "token_endpoint_auth_method",
    ] {
        assert_eq!(reg[field], body[field], "{field} in {reg}");
    }
    assert!(reg.get("client_secret").is_none(), "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // 2. and 3. The fields of the table; Insomnia's parameter order.
    let resource = format!("{base}/v1/ai/mcp");
    assert_eq!(resource, app.resource());
    let (verifier, challenge) = pkce();
    let a = authorize_in(
        &app,
        &app.browser(),
        &format!("{base}/v1/oauth/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT_URL),
            ("scope", "mcp"),
            ("state", STATE),
            ("resource", &resource),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
        "approve",
    )
    .await;
    assert_eq!(a.pages, ["login", "consent"]);
    assert!(
        a.callback.starts_with(&format!("{REDIRECT_URL}?code=")),
        "{}",
        a.callback
    );
    // Round-tripped unchanged through the login and consent forms.
    assert_eq!(a.param("state").as_deref(), Some(STATE), "{}", a.callback);
    assert_eq!(a.param("iss").as_deref(), Some(base.as_str()));

    // "In Request Body" with the Client Secret field left empty.
    let token_endpoint = format!("{base}/v1/oauth/token");
    let r = app
        .http
        .post(super::local(&app, &token_endpoint))
        .header(
            "accept",
            "application/x-www-form-urlencoded, application/json",
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", a.code().as_str()),
            ("redirect_uri", REDIRECT_URL),
            ("resource", resource.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", client_id.as_str()),
            ("client_secret", ""),
        ])
        .send()
        .await
        .unwrap();
    let t = tokens(r).await;

    // 4. The token at /v1/ai/mcp, with the "Bearer" header prefix.
    let at = t["access_token"].as_str().unwrap();
    super::assert_whoami(&app, at, &client_id).await;
    let r = app
        .http
        .post(app.url(MCP))
        .header("authorization", format!("Bearer {at}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(crate::mcp_support::initialize_body(1, "2025-06-18").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Insomnia's refresh: the scope again, the client_id alone (current
    // builds leave an empty secret out) ...
    let refreshed = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("scope", "mcp"),
                ("client_id", &client_id),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    super::assert_whoami(
        &app,
        refreshed["access_token"].as_str().unwrap(),
        &client_id,
    )
    .await;
    // ... or with `client_secret=` empty, as in the code exchange.
    let again = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    refreshed["refresh_token"].as_str().unwrap(),
                ),
                ("scope", "mcp"),
                ("client_id", &client_id),
                ("client_secret", ""),
            ],
            ClientAuth::Body,
        )
        .await,
    )
    .await;
    assert_ne!(again["refresh_token"], refreshed["refresh_token"]);
    super::assert_whoami(&app, again["access_token"].as_str().unwrap(), &client_id).await;
}
