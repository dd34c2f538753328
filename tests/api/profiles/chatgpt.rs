//! ChatGPT (developer-mode connectors): probes before any 401, the manifest,
//! DCR with `client_secret_post` or `none`, per-connector and legacy
//! callbacks, the PKCE exemption, HTTP Basic at the token endpoint, an empty
//! `scope` on reconnect, and two refreshes in a row.

use mcpgate_core::crypto::random_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    ClientAuth, USER, authorize_in, discover, get_document, issued_secret, local, pkce, post_token,
    register, tokens,
};
use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{MCP, header, missing_token_challenge};

/// The legacy fixed callback.
const LEGACY_CALLBACK: &str = "https://chatgpt.com/connector_platform_oauth_redirect";

/// A current per-connector callback, with a new id for each connector.
fn connector_callback() -> String {
    format!("https://chatgpt.com/connector/oauth/{}", random_hex::<12>())
}

/// What ChatGPT's DCR request looks like, asking for `method`.
fn registration(callback: &str, method: &str) -> Value {
    json!({
        "client_name": "ChatGPT",
        "redirect_uris": [callback],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "mcp",
        "token_endpoint_auth_method": method,
    })
}

/// Asserts the registration echoes what ChatGPT asked for.
fn assert_echoed(reg: &Value, callback: &str, method: &str) {
    assert_eq!(reg["token_endpoint_auth_method"], method, "{reg}");
    assert_eq!(reg["redirect_uris"], json!([callback]), "{reg}");
    assert_eq!(
        reg["grant_types"],
        json!(["authorization_code", "refresh_token"]),
        "{reg}"
    );
    assert_eq!(reg["response_types"], json!(["code"]), "{reg}");
    assert_eq!(reg["client_name"], "ChatGPT", "{reg}");
    assert_eq!(reg["scope"], "mcp", "{reg}");
}

/// Posts the same refresh token twice in a row (as ChatGPT was seen to):
/// both succeed with the same successor. Returns that successor.
async fn refresh_twice(app: &TestApp, token_endpoint: &str, rt: &str, auth: (&str, &str)) -> Value {
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let first = tokens(
        post_token(
            app,
            token_endpoint,
            &form,
            ClientAuth::Basic(auth.0, auth.1),
        )
        .await,
    )
    .await;
    let second = tokens(
        post_token(
            app,
            token_endpoint,
            &form,
            ClientAuth::Basic(auth.0, auth.1),
        )
        .await,
    )
    .await;
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(first["refresh_token"], second["refresh_token"]);
    assert_ne!(second["refresh_token"], rt);
    second
}

#[tokio::test]
async fn chatgpt_probes_head_and_the_root_metadata_before_any_401_and_reads_the_manifest() {
    let app = spawn_app().await;

    // HEAD on the MCP URL: the challenge, never a 5xx.
    let r = app.http.head(app.url(MCP)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "www-authenticate").as_deref(),
        Some(missing_token_challenge(&app).as_str())
    );

    // The root metadata documents on the MCP origin, with no 401 round trip.
    let issuer = app.urls.issuer.clone();
    let asm = get_document(
        &app,
        &format!("{issuer}/.well-known/oauth-authorization-server"),
    )
    .await;
    assert_eq!(asm["issuer"], issuer.as_str());
    assert_eq!(
        asm["authorization_endpoint"],
        format!("{issuer}/v1/oauth/authorize")
    );
    assert_eq!(asm["token_endpoint"], format!("{issuer}/v1/oauth/token"));
    assert_eq!(
        asm["registration_endpoint"],
        format!("{issuer}/v1/oauth/register")
    );
    assert_eq!(asm["scopes_supported"], json!(["mcp", "offline_access"]));
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        asm["token_endpoint_auth_methods_supported"],
        json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    // ChatGPT's metadata document declares private_key_jwt with RS256.
    let algs = asm["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("RS256")), "{asm}");
    let prm = get_document(
        &app,
        &format!("{issuer}/.well-known/oauth-protected-resource"),
    )
    .await;
    assert_eq!(prm["resource"], app.resource());
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    assert_eq!(prm["scopes_supported"], json!(["mcp"]));

    // OpenID configuration, also below the token endpoint: a clean 404,
    // never a partial document.
    for path in [
        "/.well-known/openid-configuration",
        "/token/.well-known/openid-configuration",
        "/v1/oauth/token/.well-known/openid-configuration",
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}: {body}");
        for field in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
        ] {
            assert!(body.get(field).is_none(), "{path}: {body}");
        }
    }

    // The manifest of the flow document.
    let m = get_document(&app, &format!("{issuer}/.well-known/mcp/manifest.json")).await;
    assert_eq!(m["endpoints"]["streamable_http"], app.resource());
    assert_eq!(m["endpoints"]["sse"], format!("{issuer}/sse"));
    assert_eq!(m["authentication"]["type"], "oauth2");
    assert_eq!(
        m["authentication"]["protected_resource_metadata"],
        app.urls.resource_metadata
    );
    assert_eq!(
        m["authentication"]["authorization_server_metadata"],
        format!("{issuer}/.well-known/oauth-authorization-server")
    );
    assert_eq!(
        m["authentication"]["authorization_servers"],
        json!([issuer])
    );
    assert_eq!(m["authentication"]["scopes"], json!(["mcp"]));

    // Only now the MCP endpoint's 401 and the full discovery.
    let d = discover(&app).await;
    assert_eq!(d.asm, asm);
    // The manifest's URLs lead to the same documents.
    let via_manifest = get_document(
        &app,
        m["authentication"]["protected_resource_metadata"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(via_manifest, d.prm);
}

#[tokio::test]
async fn chatgpt_with_a_per_connector_callback_registers_client_secret_post_authenticates_with_basic_reconnects_with_an_empty_scope_and_refreshes_twice()
 {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let d = discover(&app).await;
    let token_endpoint = d.endpoint("token_endpoint");
    let authorization_endpoint = d.endpoint("authorization_endpoint");
    let resource = d.prm["resource"].as_str().unwrap().to_string();

    // DCR asking for client_secret_post: echoed, with a secret.
    let callback = connector_callback();
    let reg = register(
        &app,
        &d.endpoint("registration_endpoint"),
        &registration(&callback, "client_secret_post"),
    )
    .await;
    assert_echoed(&reg, &callback, "client_secret_post");
    let secret = issued_secret(&reg);
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // Authorization with S256 and the resource.
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let state = format!("oauth_s_{}", random_hex::<16>());
    let a = authorize_in(
        &app,
        &browser,
        &authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &callback),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", "mcp"),
            ("state", &state),
            ("resource", &resource),
        ],
        "approve",
    )
    .await;
    assert_eq!(a.pages, ["login", "consent"]);
    assert!(
        a.callback.starts_with(&format!("{callback}?code=")),
        "{}",
        a.callback
    );
    assert_eq!(a.param("state").as_deref(), Some(state.as_str()));
    assert_eq!(a.param("iss").as_deref(), Some(app.urls.issuer.as_str()));

    // The code exchange with HTTP Basic.
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("redirect_uri", &callback),
                ("code_verifier", &verifier),
                ("resource", &resource),
            ],
            ClientAuth::Basic(&client_id, &secret),
        )
        .await,
    )
    .await;
    super::assert_whoami(&app, t["access_token"].as_str().unwrap(), &client_id).await;

    // "Reconnect": `scope=` empty; the user is still signed in and consent
    // is remembered, so the browser goes straight back with a code.
    let (verifier, challenge) = pkce();
    let state = format!("oauth_s_{}", random_hex::<16>());
    let a = authorize_in(
        &app,
        &browser,
        &authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &callback),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", ""),
            ("state", &state),
            ("resource", &resource),
        ],
        "approve",
    )
    .await;
    assert!(a.pages.is_empty(), "{:?}", a.pages);
    assert_eq!(a.redirects, [StatusCode::FOUND]);
    assert_eq!(a.param("state").as_deref(), Some(state.as_str()));
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("redirect_uri", &callback),
                ("code_verifier", &verifier),
                ("resource", &resource),
            ],
            ClientAuth::Basic(&client_id, &secret),
        )
        .await,
    )
    .await;
    // The default scope.
    assert_eq!(t["scope"], "mcp");

    // Two refreshes in quick succession: the grace window returns the same
    // successor, and the session goes on.
    let rt = t["refresh_token"].as_str().unwrap();
    let successor = refresh_twice(&app, &token_endpoint, rt, (&client_id, &secret)).await;
    let at = successor["access_token"].as_str().unwrap();
    super::assert_whoami(&app, at, &client_id).await;
    // The first access token of the reconnect still works too.
    super::assert_whoami(&app, t["access_token"].as_str().unwrap(), &client_id).await;
}

#[tokio::test]
async fn chatgpt_with_the_legacy_callback_registers_none_and_authorizes_without_pkce_on_the_root_paths()
 {
    let app = spawn_app().await;
    app.add_user(USER).await;
    let issuer = app.urls.issuer.clone();
    let resource = app.resource();

    // The seed diagram's root paths: /register, /authorize, /token.
    let reg = register(
        &app,
        &format!("{issuer}/register"),
        &registration(LEGACY_CALLBACK, "none"),
    )
    .await;
    assert_echoed(&reg, LEGACY_CALLBACK, "none");
    assert!(reg.get("client_secret").is_none(), "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // No code_challenge at all: the allow-listed exception for chatgpt.com.
    let browser = app.browser();
    let state = format!("oauth_s_{}", random_hex::<16>());
    let a = authorize_in(
        &app,
        &browser,
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", LEGACY_CALLBACK),
            ("scope", "mcp"),
            ("state", &state),
            ("resource", &resource),
        ],
        "approve",
    )
    .await;
    assert_eq!(a.pages, ["login", "consent"]);
    assert!(
        a.callback.starts_with(&format!("{LEGACY_CALLBACK}?code=")),
        "{}",
        a.callback
    );
    assert_eq!(a.param("state").as_deref(), Some(state.as_str()));

    // HTTP Basic with the empty secret of a public client, no verifier.
    let token_endpoint = format!("{issuer}/token");
    let t = tokens(
        post_token(
            &app,
            &token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &a.code()),
                ("redirect_uri", LEGACY_CALLBACK),
            ],
            ClientAuth::Basic(&client_id, ""),
        )
        .await,
    )
    .await;
    super::assert_whoami(&app, t["access_token"].as_str().unwrap(), &client_id).await;

    let rt = t["refresh_token"].as_str().unwrap();
    let successor = refresh_twice(&app, &token_endpoint, rt, (&client_id, "")).await;
    super::assert_whoami(
        &app,
        successor["access_token"].as_str().unwrap(),
        &client_id,
    )
    .await;

    // A second connector with a per-connector callback may skip PKCE too,
    // and its registration is independent of the first.
    let callback = connector_callback();
    let reg = register(
        &app,
        &format!("{issuer}/register"),
        &registration(&callback, "none"),
    )
    .await;
    let other = reg["client_id"].as_str().unwrap().to_string();
    assert_ne!(other, client_id);
    let a = authorize_in(
        &app,
        &browser,
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", &other),
            ("redirect_uri", &callback),
            ("state", "s"),
        ],
        "approve",
    )
    .await;
    assert_eq!(a.pages, ["consent"]);
    let r = app
        .http
        .post(local(&app, &token_endpoint))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", a.code().as_str()),
            ("redirect_uri", callback.as_str()),
            ("client_id", other.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let t = tokens(r).await;
    super::assert_whoami(&app, t["access_token"].as_str().unwrap(), &other).await;
}
