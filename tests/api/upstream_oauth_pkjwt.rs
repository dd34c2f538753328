//! mcpgate as a `private_key_jwt` client of an upstream (issue #19;
//! RFC 7523 §2.2): the upstream is a second mcpgate with
//! `public_clients = false`, so it lists no `none` in
//! `token_endpoint_auth_methods_supported` and refuses public clients. The
//! gateway then registers (or names its metadata document) with
//! `private_key_jwt` and `jwks_uri = <public_url>/oauth/jwks.json`, and
//! signs a client assertion for the code exchange, every refresh and the
//! revocation.
//!
//! The upstream must fetch the gateway's `jwks_uri` (and its metadata
//! document) over https, so the gateway serves TLS itself
//! (`tls_cert_file`) with a certificate for `localhost` from a test CA
//! that the upstream trusts (`outbound_ca_file`), loopback allowed
//! (`outbound_allow_networks`).

use std::net::SocketAddr;
use std::path::PathBuf;

use mcpgate::clock::Clock;
use mcpgate::upstream_oauth::vault::Vault;
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::TokenEndpointAuthMethod;
use mcpgate_core::upstream_oauth::client_key::{AssertionClaims, ClientSigningKey};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Browser, PASSWORD, TestApp, form_action, hidden_inputs, location, spawn_app_with,
};
use crate::mcp_support::{bearer, insert_token};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A test CA, a `localhost` certificate it signed (files for the
/// gateway) and the CA file (for the upstream).
struct Tls {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Tls {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "mcpgate pkjwt test CA");
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".into()]).unwrap();
        let cert = leaf
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        Self { dir, ca_pem }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client trusting the CA, `localhost` pinned to `app`.
    fn client(&self, app: &TestApp, cookies: bool) -> reqwest::Client {
        let port = app.urls.issuer.rsplit(':').next().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .resolve("localhost", addr)
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(cookies)
            .build()
            .unwrap()
    }
}

/// The upstream: takes no public clients, trusts the gateway's CA and
/// may fetch from loopback; metadata documents as `documents` says.
async fn upstream(tls: &Tls, documents: bool) -> TestApp {
    let ca = tls.path("ca.pem");
    let b = spawn_app_with(|s| {
        s.public_clients = false;
        s.client_id_metadata_documents = documents;
        s.outbound_ca_file = Some(ca);
        s.outbound_allow_networks = vec!["127.0.0.1/32".into(), "::1/128".into()];
    })
    .await;
    b.add_user("alice-at-b").await;
    b.add_user("bob-at-b").await;
    b
}

/// The gateway over https (`https://localhost:<port>`), its `base` and
/// `http` switched to it; `alice` and `bob` have gateway tokens.
async fn gateway(tls: &Tls, b: &TestApp) -> (TestApp, String, String) {
    let cfg: mcpgate::gateway::config::UpstreamConfig = toml::from_str(&format!(
        "name = \"b\"\nurl = \"{}\"\nauth = \"oauth\"\nisolation = \"per_user\"\n",
        b.resource()
    ))
    .unwrap();
    let (cert, key) = (tls.path("cert.pem"), tls.path("key.pem"));
    let mut a = spawn_app_with(|s| {
        s.upstream = vec![cfg];
        s.tls_cert_file = Some(cert);
        s.tls_key_file = Some(key);
    })
    .await;
    assert!(
        a.urls.issuer.starts_with("https://localhost:"),
        "{}",
        a.urls.issuer
    );
    a.http = tls.client(&a, false);
    a.base = a.urls.issuer.clone();
    a.add_user("alice").await;
    a.add_user("bob").await;
    let alice = token_for(&a, "alice").await;
    let bob = token_for(&a, "bob").await;
    (a, alice, bob)
}

/// A fresh gateway access token for `user` (a client of its own).
async fn token_for(a: &TestApp, user: &str) -> String {
    let client = a
        .auth
        .register(
            &json!({"redirect_uris": ["http://127.0.0.1:1/callback"], "token_endpoint_auth_method": "none"}),
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    insert_token(a, user, client_id, "mcp", &a.resource()).await
}

async fn call(a: &TestApp, token: &str, tool: &str) -> (StatusCode, Value) {
    let r = a
        .http
        .post(a.url(&format!("/tools/{tool}")))
        .header("authorization", bearer(token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn upstream_user(a: &TestApp, token: &str) -> String {
    let (status, v) = call(a, token, "b_whoami").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["structuredContent"]["user"]
        .as_str()
        .unwrap_or_else(|| panic!("no user in {v}"))
        .to_string()
}

/// Connects `token`'s gateway user to `upstream_user` at `b`: the link
/// from `b_connect`, the gateway's sign-in, the upstream's sign-in and
/// consent, the callback. Returns the callback page.
async fn connect(
    tls: &Tls,
    a: &TestApp,
    b: &TestApp,
    token: &str,
    gateway_user: &str,
    upstream_user: &str,
) -> String {
    let (status, v) = call(a, token, "b_connect").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let text = v["content"][0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap_or_else(|| panic!("no link in {text}"));
    let browser_a = Browser {
        http: tls.client(a, true),
        base: a.base.clone(),
    };
    let r = browser_a.get(link.strip_prefix(&a.base).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser_a.submit_login(&html, gateway_user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser_a.get(&location(&r)).await;
    let status = r.status();
    let authorize = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{status}: no authorization request"));
    assert!(
        authorize.starts_with(&b.urls.authorization_endpoint),
        "{authorize}"
    );
    let browser_b = Browser {
        base: b.urls.issuer.clone(),
        ..b.browser()
    };
    let r = browser_b.http.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser_b.submit_login(&html, upstream_user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser_b.get(&location(&r)).await;
    let html = r.text().await.unwrap();
    let r = browser_b.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = location(&r);
    let r = browser_a.get(callback.strip_prefix(&a.base).unwrap()).await;
    let status = r.status();
    let page = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

async fn server_key(a: &TestApp) -> Vec<u8> {
    a.store
        .server_key(mcpgate::auth::operator::SERVER_KEY_NAME, &[0; 32])
        .await
        .unwrap()
}

/// A token request at `b` as `client_id` with `assertion`.
async fn refresh_with(b: &TestApp, client_id: &str, assertion: &str) -> (StatusCode, Value) {
    let r = b
        .http
        .post(b.url("/v1/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-real-refresh-token"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_without_public_clients_gets_a_private_key_jwt_registration_and_assertions() {
    let tls = Tls::new();
    let b = upstream(&tls, false).await;
    let (a, alice, bob) = gateway(&tls, &b).await;

    // The upstream lists no `none` and refuses a public registration.
    let meta: Value = b
        .http
        .get(b.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = meta["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(!methods.contains(&json!("none")), "{methods:?}");
    assert!(methods.contains(&json!("private_key_jwt")), "{methods:?}");
    let r = b
        .register(json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client_metadata");

    // The gateway's key, published: derived from its server key.
    let r = a.http.get(a.url("/oauth/jwks.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = r.json().await.unwrap();
    let key = ClientSigningKey::derive(&server_key(&a).await);
    assert_eq!(jwks, key.jwks());
    assert!(jwks["keys"][0].get("d").is_none());

    // Alice and Bob connect their own accounts.
    let page = connect(&tls, &a, &b, &alice, "alice", "alice-at-b").await;
    assert!(page.contains("Connected to b."), "{page}");
    connect(&tls, &a, &b, &bob, "bob", "bob-at-b").await;
    for _ in 0..2 {
        assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");
        assert_eq!(upstream_user(&a, &bob).await, "bob-at-b");
    }

    // The gateway registered once, with private_key_jwt and its jwks_uri;
    // the upstream holds that client.
    let record = a
        .store
        .upstream_client(
            &b.urls.issuer,
            &format!("{}/oauth/upstream/callback", a.base),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.auth_method, "private_key_jwt");
    let at_b = b
        .store
        .client(&ClientId::parse(&record.client_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        at_b.metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );
    assert_eq!(
        at_b.metadata.jwks_uri.as_deref(),
        Some(format!("{}/oauth/jwks.json", a.base).as_str())
    );
    assert!(at_b.secret_hash.is_none());

    // A refresh: both clocks move on (the upstream checks the assertion's
    // iat against its own); the new tokens work, for each user.
    let alice_id = a.store.user_by_username("alice").await.unwrap().unwrap().id;
    let vault = Vault::new(a.store.clone(), &server_key(&a).await);
    let first = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    let ttl = first.tokens.expires_at.unwrap() - a.clock.now();
    a.clock.advance(ttl - 30);
    b.clock.advance(ttl - 30);
    // The gateway's own tokens expired meanwhile.
    let alice = token_for(&a, "alice").await;
    let bob = token_for(&a, "bob").await;
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");
    let second = vault.connection(&alice_id, "b").await.unwrap().unwrap();
    assert_eq!(second.record.version, first.record.version + 1);
    assert_ne!(
        second.tokens.secrets.access_token.expose(),
        first.tokens.secrets.access_token.expose()
    );
    assert_eq!(upstream_user(&a, &bob).await, "bob-at-b");

    // The upstream takes the gateway's assertions (a made-up refresh
    // token is then the only problem: invalid_grant) ...
    let claims = |jti| AssertionClaims {
        client_id: &record.client_id,
        audience: &b.urls.issuer,
        now: b.clock.now(),
        jti,
    };
    let good = key.assertion(&claims("t-1")).unwrap();
    let (status, e) = refresh_with(&b, &record.client_id, &good).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    // ... and refuses one signed with another key, even under its kid ...
    let other = ClientSigningKey::derive(&[9; 32])
        .assertion(&claims("t-2"))
        .unwrap();
    let (status, e) = refresh_with(&b, &record.client_id, &other).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{e}"
    );
    // ... or a genuine one with altered claims.
    let good = key.assertion(&claims("t-3")).unwrap();
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = key
        .assertion(&AssertionClaims {
            jti: "t-4",
            now: b.clock.now() + 5,
            ..claims("x")
        })
        .unwrap();
    parts[1] = forged.split('.').nth(1).unwrap();
    let (status, e) = refresh_with(&b, &record.client_id, &parts.join(".")).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{e}"
    );
    // A public client's request (no assertion) is refused too.
    let r = b
        .http
        .post(b.url("/v1/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", record.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Disconnect from the connections page: the revocation at the
    // upstream authenticates with an assertion too (a public request
    // would be refused), so Alice's token stops working there; Bob's
    // does not.
    let bob_id = a.store.user_by_username("bob").await.unwrap().unwrap().id;
    let bobs = vault.connection(&bob_id, "b").await.unwrap().unwrap();
    let at_upstream = |token: String| {
        let b = &b;
        async move {
            b.http
                .post(b.url("/tools/whoami"))
                .header("authorization", bearer(&token))
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let alices = second.tokens.secrets.access_token.expose().clone();
    assert_eq!(at_upstream(alices.clone()).await, StatusCode::OK);
    let browser = Browser {
        http: tls.client(&a, true),
        base: a.base.clone(),
    };
    let html = browser.get("/connections").await.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    let html = browser.get(&location(&r)).await.text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("action".into(), "disconnect".into()));
    let r = browser.post_form(&form_action(&html), &form).await;
    assert!(r.text().await.unwrap().contains("Disconnected from b."));
    assert_eq!(at_upstream(alices).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        at_upstream(bobs.tokens.secrets.access_token.expose().clone()).await,
        StatusCode::OK
    );
    assert_eq!(upstream_user(&a, &bob).await, "bob-at-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metadata_documents_the_gateway_names_its_private_key_jwt_document() {
    let tls = Tls::new();
    let b = upstream(&tls, true).await;
    let (a, alice, bob) = gateway(&tls, &b).await;

    let doc: Value = a
        .http
        .get(a.url("/oauth/client-jwt.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = format!("{}/oauth/client-jwt.json", a.base);
    assert_eq!(doc["client_id"], client_id);
    assert_eq!(doc["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(doc["jwks_uri"], format!("{}/oauth/jwks.json", a.base));

    connect(&tls, &a, &b, &alice, "alice", "alice-at-b").await;
    connect(&tls, &a, &b, &bob, "bob", "bob-at-b").await;
    assert_eq!(upstream_user(&a, &alice).await, "alice-at-b");
    assert_eq!(upstream_user(&a, &bob).await, "bob-at-b");
    let cached = b
        .store
        .client_document(&ClientId::parse(&client_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cached.client.metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );

    // The public document (`none`) is refused by this upstream.
    let public = format!("{}/oauth/client.json", a.base);
    let mut params = b.auth_params(&public, &format!("{}/oauth/upstream/callback", a.base));
    params.retain(|(k, _)| k != "resource");
    let r = b.browser().open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("public_clients = false"), "{html}");
}
