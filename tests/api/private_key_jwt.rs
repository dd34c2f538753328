//! `private_key_jwt` client authentication (RFC 7523 §2.2, RFC 7521 §4.2)
//! at the token and revocation endpoints, with real keys made by the test
//! (RSA 2048 with the `openssl` command, P-256 and Ed25519 in process) and
//! assertions signed with `jsonwebtoken`.
//!
//! Client authentication comes first at the token endpoint, so an
//! assertion can be probed with an unknown code: a good one gets
//! `invalid_grant` (400), a bad one `invalid_client` (401).

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster_support::two_instances;
use crate::helpers::{TestApp, VERIFIER, spawn_app, spawn_app_with};
use crate::https_support::HttpsServer;
use crate::mcp_support::McpClient;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const REDIRECT: &str = "http://127.0.0.1:1/callback";

/// A client's key pair: how to sign, and the public JWK.
struct Key {
    alg: Algorithm,
    kid: String,
    sign: EncodingKey,
    jwk: Value,
    /// The public key as PEM (SubjectPublicKeyInfo), for the HS256
    /// confusion attack.
    public_pem: String,
}

fn openssl(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A fresh RSA 2048 key, made with the `openssl` command.
fn rsa_key(kid: &str, alg: Algorithm) -> Key {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "k.pem",
        ],
        d,
    );
    let pkcs1 = openssl(
        &["rsa", "-in", "k.pem", "-traditional", "-outform", "DER"],
        d,
    );
    let modulus =
        String::from_utf8(openssl(&["rsa", "-in", "k.pem", "-noout", "-modulus"], d)).unwrap();
    let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    let public_pem = String::from_utf8(openssl(&["pkey", "-in", "k.pem", "-pubout"], d)).unwrap();
    Key {
        alg,
        kid: kid.into(),
        sign: EncodingKey::from_rsa_der(&pkcs1),
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"}),
        public_pem,
    }
}

fn p256_key(kid: &str) -> Key {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    Key {
        alg: Algorithm::ES256,
        kid: kid.into(),
        sign: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}),
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

fn ed25519_key(kid: &str) -> Key {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    Key {
        alg: Algorithm::EdDSA,
        kid: kid.into(),
        sign: EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x}),
        public_pem: x,
    }
}

fn jwks(keys: &[&Key]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

/// Registers a private_key_jwt client with inline keys; returns its id.
async fn register(app: &TestApp, keys: &[&Key]) -> String {
    let r = app
        .register(json!({
            "client_name": "Signed client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks(keys),
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(body["jwks"], jwks(keys));
    assert!(body.get("client_secret").is_none(), "{body}");
    body["client_id"].as_str().unwrap().to_string()
}

/// The claims of a good assertion for `client_id` at `aud`.
fn claims(app: &TestApp, client_id: &str, aud: &str) -> Value {
    let now = app.clock.now();
    json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 120,
        "jti": mcpgate_core::crypto::random_hex::<16>(),
    })
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.sign).unwrap()
}

fn assertion(app: &TestApp, key: &Key, client_id: &str) -> String {
    sign(key, &claims(app, client_id, &app.urls.token_endpoint))
}

/// A token request with an unknown code: tells whether the client
/// authenticated (400 invalid_grant) or not (401 invalid_client).
async fn probe(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value, Option<String>) {
    let mut f = vec![
        ("grant_type", "authorization_code"),
        ("code", "unknown-code"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    f.extend_from_slice(form);
    let r = app.token(&f).await;
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status(), r.json().await.unwrap(), challenge)
}

async fn probe_assertion(app: &TestApp, assertion: &str) -> (StatusCode, Value, Option<String>) {
    probe(
        app,
        &[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// Asserts the client authenticated (the unknown code is what failed).
fn accepted(outcome: &(StatusCode, Value, Option<String>)) {
    assert_eq!(outcome.0, StatusCode::BAD_REQUEST, "{}", outcome.1);
    assert_eq!(outcome.1["error"], "invalid_grant", "{}", outcome.1);
}

/// Asserts a 401 invalid_client whose description contains `needle`, with
/// no Basic challenge.
fn refused(outcome: &(StatusCode, Value, Option<String>), needle: &str) {
    assert_eq!(outcome.0, StatusCode::UNAUTHORIZED, "{}", outcome.1);
    assert_eq!(outcome.1["error"], "invalid_client", "{}", outcome.1);
    let d = outcome.1["error_description"].as_str().unwrap();
    assert!(d.contains(needle), "{needle:?} not in {d:?}");
    assert_eq!(outcome.2, None, "no WWW-Authenticate: Basic without Basic");
}

/// Register → authorize → token → refresh → MCP → revoke, every client
/// authentication a fresh signed assertion.
async fn whole_flow(key: Key) {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = register(&app, &[&key]).await;
    let code = app
        .authorize("alice", &app.auth_params(&client_id, REDIRECT))
        .await;

    // No client_id in the body: the assertion's sub names the client.
    let a = assertion(&app, &key, &client_id);
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &app.resource()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();

    // Refresh, with client_id in the body as well.
    let a = assertion(&app, &key, &client_id);
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();

    let mut mcp = McpClient::new(&app, &access);
    mcp.initialize("2025-06-18").await;
    let who = mcp.call_tool("whoami", json!({})).await;
    assert_eq!(who["result"]["structuredContent"]["user"], "alice", "{who}");

    // Revoke the refresh token (aud: the revocation endpoint); its grant
    // goes, so the access token stops working.
    let a = sign(
        &key,
        &claims(&app, &client_id, &app.urls.revocation_endpoint),
    );
    let r = app
        .http
        .post(app.url("/v1/oauth/revoke"))
        .form(&[
            ("token", refresh.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (r, _) = mcp.send("tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Revocation refuses a bad assertion like the token endpoint does.
    let r = app
        .http
        .post(app.url("/v1/oauth/revoke"))
        .form(&[
            ("token", "x"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
}

#[tokio::test]
async fn an_rs256_client_with_inline_keys_runs_the_whole_flow() {
    whole_flow(rsa_key("rsa-1", Algorithm::RS256)).await;
}

#[tokio::test]
async fn an_es256_client_with_inline_keys_runs_the_whole_flow() {
    whole_flow(p256_key("ec-1")).await;
}

#[tokio::test]
async fn ps256_and_eddsa_assertions_authenticate_and_the_issuer_is_a_valid_audience() {
    let app = spawn_app().await;
    let (ps, ed) = (rsa_key("ps", Algorithm::PS256), ed25519_key("ed"));
    let client_id = register(&app, &[&ps, &ed]).await;
    accepted(&probe_assertion(&app, &assertion(&app, &ps, &client_id)).await);
    accepted(&probe_assertion(&app, &assertion(&app, &ed, &client_id)).await);
    let to_issuer = sign(&ed, &claims(&app, &client_id, &app.urls.issuer));
    accepted(&probe_assertion(&app, &to_issuer).await);
}

#[tokio::test]
async fn each_bad_assertion_is_refused_with_its_reason() {
    let app = spawn_app().await;
    let key = p256_key("k1");
    let client_id = register(&app, &[&key]).await;
    let token_url = app.urls.token_endpoint.clone();
    let now = app.clock.now();
    let with = |change: Value| {
        let mut c = claims(&app, &client_id, &token_url);
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    // Signed with another key under the registered kid.
    let other = p256_key("k1");
    refused(
        &probe_assertion(&app, &sign(&other, &with(json!({})))).await,
        "signature",
    );
    // A kid the client does not have.
    let unknown = p256_key("k9");
    refused(
        &probe_assertion(&app, &sign(&unknown, &with(json!({})))).await,
        "kid",
    );
    let cases = [
        (json!({"aud": "https://elsewhere.example/token"}), "aud"),
        (json!({"exp": now - 3600}), "expired"),
        (json!({"exp": now + 3600}), "ahead"),
        (json!({"jti": null}), "jti"),
        (json!({"iss": "someone-else"}), "iss"),
        (json!({"iat": now + 3600}), "iat"),
        (json!({"nbf": now + 3600}), "nbf"),
    ];
    for (change, needle) in cases {
        refused(
            &probe_assertion(&app, &sign(&key, &with(change))).await,
            needle,
        );
    }

    // alg none: an unsigned token with the right claims.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "k1"}).to_string()),
        URL_SAFE_NO_PAD.encode(with(json!({})).to_string())
    );
    refused(&probe_assertion(&app, &none).await, "none");

    // HS256 keyed with the public key (PEM, and the JWK as registered).
    for secret in [key.public_pem.clone(), key.jwk.to_string()] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &h,
            &with(json!({})),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        refused(&probe_assertion(&app, &hs).await, "HS256");
    }

    // An RS256 assertion under the EC key's kid.
    let rsa = rsa_key("k1", Algorithm::RS256);
    refused(
        &probe_assertion(&app, &sign(&rsa, &with(json!({})))).await,
        "does not fit",
    );
}

#[tokio::test]
async fn a_jti_is_accepted_once_and_refusals_are_logged_as_security_events() {
    let logs = crate::federation_support::Logs::capture();
    let app = spawn_app().await;
    let key = ed25519_key("k1");
    let client_id = register(&app, &[&key]).await;
    let a = assertion(&app, &key, &client_id);
    accepted(&probe_assertion(&app, &a).await);
    refused(&probe_assertion(&app, &a).await, "already used");
    // A new jti is fine.
    accepted(&probe_assertion(&app, &assertion(&app, &key, &client_id)).await);
    let wrong = sign(
        &ed25519_key("k1"),
        &claims(&app, &client_id, &app.urls.token_endpoint),
    );
    refused(&probe_assertion(&app, &wrong).await, "signature");

    let text = logs.text();
    let line = |event: &str| {
        text.lines()
            .find(|l| l.contains(event))
            .unwrap_or_else(|| panic!("no {event} in {text}"))
            .to_string()
    };
    assert!(line("oauth.client_assertion_replay").contains(&client_id));
    assert!(line("oauth.client_assertion_invalid").contains("signature"));
    // The assertions themselves are never logged.
    assert!(!text.contains(&a) && !text.contains(&wrong), "{text}");
}

#[tokio::test]
async fn a_jti_used_on_one_instance_is_refused_on_another() {
    let (_db, a, b) = two_instances().await;
    let key = p256_key("k1");
    let client_id = register(&a, &[&key]).await;
    // Both instances advertise the same token endpoint URL.
    assert_eq!(a.urls.token_endpoint, b.urls.token_endpoint);
    let assertion = assertion(&a, &key, &client_id);
    accepted(&probe_assertion(&a, &assertion).await);
    refused(&probe_assertion(&b, &assertion).await, "already used");
    accepted(&probe_assertion(&b, &crate::private_key_jwt::assertion(&b, &key, &client_id)).await);
}

#[tokio::test]
async fn an_assertion_is_only_good_for_the_client_whose_key_signed_it() {
    let app = spawn_app().await;
    let (ka, kb) = (p256_key("a"), p256_key("b"));
    let client_a = register(&app, &[&ka]).await;
    let client_b = register(&app, &[&kb]).await;
    // A's key, claiming to be B: B's keys do not verify it.
    let forged = sign(&ka, &claims(&app, &client_b, &app.urls.token_endpoint));
    refused(&probe_assertion(&app, &forged).await, "kid");
    let mut forged_kid = claims(&app, &client_b, &app.urls.token_endpoint);
    forged_kid["jti"] = json!("x1");
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("b".into());
    let forged = jsonwebtoken::encode(&h, &forged_kid, &ka.sign).unwrap();
    refused(&probe_assertion(&app, &forged).await, "signature");
    // B's own assertion sent as client A.
    let b_assertion = assertion(&app, &kb, &client_b);
    refused(
        &probe(
            &app,
            &[
                ("client_id", &client_a),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &b_assertion),
            ],
        )
        .await,
        "differs",
    );
}

#[tokio::test]
async fn the_method_must_be_the_registered_one_and_used_alone() {
    let app = spawn_app().await;
    let key = p256_key("k1");
    let jwt_client = register(&app, &[&key]).await;
    let (secret_client, secret) = app
        .register_confidential(REDIRECT, "client_secret_post")
        .await;
    let public_client = app.register_public(REDIRECT).await;

    // A private_key_jwt client with a secret, or with nothing.
    refused(
        &probe(
            &app,
            &[("client_id", &jwt_client), ("client_secret", "guess")],
        )
        .await,
        "private_key_jwt",
    );
    refused(
        &probe(&app, &[("client_id", &jwt_client)]).await,
        "private_key_jwt",
    );
    // Secret and public clients cannot switch to assertions.
    for other in [&secret_client, &public_client] {
        let a = sign(&key, &claims(&app, other, &app.urls.token_endpoint));
        refused(
            &probe_assertion(&app, &a).await,
            "cannot authenticate with a client_assertion",
        );
    }
    // Two methods at once: invalid_request.
    let a = assertion(&app, &key, &jwt_client);
    let (status, body, _) = probe(
        &app,
        &[
            ("client_secret", &secret),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    // Another assertion type.
    refused(
        &probe(
            &app,
            &[
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &a),
            ],
        )
        .await,
        "saml2-bearer",
    );
    // The assertion was not used by any of the refusals above.
    accepted(&probe_assertion(&app, &a).await);
}

#[tokio::test]
async fn registration_checks_the_keys_of_private_key_jwt_clients() {
    let app = spawn_app().await;
    let key = p256_key("k1");
    let base =
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let mut private = key.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    for (body, needle) in [
        (with(json!({})), "jwks_uri or jwks"),
        (
            with(json!({"jwks_uri": "http://keys.example/jwks.json"})),
            "https",
        ),
        (
            with(json!({"jwks_uri": "https://keys.example/jwks.json", "jwks": jwks(&[&key])})),
            "both",
        ),
        (with(json!({"jwks": {"keys": [private]}})), "private"),
    ] {
        let r = app.register(body.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client_metadata");
        assert!(
            e["error_description"].as_str().unwrap().contains(needle),
            "{e}"
        );
    }
    let r = app
        .register(with(json!({"jwks_uri": "https://keys.example/jwks.json"})))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["jwks_uri"], "https://keys.example/jwks.json");
    assert!(body.get("client_secret").is_none());
}

/// A client known with a `jwks_uri` (stored directly, as `mcpgate client
/// add --jwks-uri` would).
async fn client_with_jwks_uri(app: &TestApp, id: &str, uri: &str) {
    use mcpgate_core::model::{
        Client, ClientKind, ClientMetadata, GrantType, TokenEndpointAuthMethod,
    };
    let client = Client {
        client_id: mcpgate_core::domain::ClientId::parse(id).unwrap(),
        secret_hash: None,
        metadata: ClientMetadata {
            redirect_uris: vec![mcpgate_core::domain::RedirectUri::parse(REDIRECT).unwrap()],
            token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
            grant_types: vec![GrantType::AuthorizationCode],
            response_types: vec!["code".into()],
            client_name: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            scope: None,
            contacts: vec![],
            software_id: None,
            software_version: None,
            application_type: None,
            jwks_uri: Some(uri.into()),
            jwks: None,
        },
        issued_at: app.clock.now(),
        last_used_at: None,
        kind: ClientKind::Preregistered,
    };
    app.store.create_client(&client).await.unwrap();
}

#[tokio::test]
async fn jwks_uri_keys_are_fetched_once_and_refetched_for_a_new_kid_at_most_every_30_seconds() {
    // The keys live on an HTTPS host on loopback with a certificate from the
    // test's CA: mcpgate fetches them through the SSRF-guarded client, with
    // outbound_ca_file and outbound_allow_networks = ["127.0.0.1/32"].
    let server = HttpsServer::start().await;
    let app = spawn_app_with(|s| server.trust(s)).await;
    let (k1, k2, k3) = (
        p256_key("k1"),
        rsa_key("k2", Algorithm::RS256),
        ed25519_key("k3"),
    );
    server.json("/jwks.json", &jwks(&[&k1]), &[]);
    client_with_jwks_uri(&app, "uri-client", &server.url("/jwks.json")).await;
    let hits = || server.hits("/jwks.json");

    for _ in 0..3 {
        accepted(&probe_assertion(&app, &assertion(&app, &k1, "uri-client")).await);
    }
    assert_eq!(hits(), 1, "one fetch for many assertions");

    // The client rotates to k2 right away: within 30 s of the last fetch
    // the unknown kid does not cause another one.
    server.json("/jwks.json", &jwks(&[&k2]), &[]);
    refused(
        &probe_assertion(&app, &assertion(&app, &k2, "uri-client")).await,
        "kid",
    );
    assert_eq!(hits(), 1);

    app.clock.advance(30);
    accepted(&probe_assertion(&app, &assertion(&app, &k2, "uri-client")).await);
    assert_eq!(hits(), 2, "the unknown kid refetched the set");
    // The old key is gone with the old set.
    refused(
        &probe_assertion(&app, &assertion(&app, &k1, "uri-client")).await,
        "kid",
    );
    // More unknown kids within 30 s: no fetch.
    refused(
        &probe_assertion(&app, &assertion(&app, &k3, "uri-client")).await,
        "kid",
    );
    assert_eq!(hits(), 2);

    // After the cache lifetime (1 h without Cache-Control) the set is
    // fetched again on use.
    server.json("/jwks.json", &jwks(&[&k2, &k3]), &[]);
    app.clock.advance(3600);
    accepted(&probe_assertion(&app, &assertion(&app, &k3, "uri-client")).await);
    assert_eq!(hits(), 3);
}

/// The SSRF rule holds for `jwks_uri` too: without the allow-list, keys on
/// a loopback address are never fetched, and the assertion is refused
/// saying why.
#[tokio::test]
async fn a_jwks_uri_on_a_private_address_is_not_fetched_without_the_allow_list() {
    let server = HttpsServer::start().await;
    let app = spawn_app_with(|s| server.trust_ca_only(s)).await;
    let k1 = p256_key("k1");
    server.json("/jwks.json", &jwks(&[&k1]), &[]);
    client_with_jwks_uri(&app, "uri-client", &server.url("/jwks.json")).await;
    let (status, body, _) = probe_assertion(&app, &assertion(&app, &k1, "uri-client")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("jwks_uri"),
        "{body}"
    );
    assert_eq!(server.hits("/jwks.json"), 0, "nothing reached the host");
}
