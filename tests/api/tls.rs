//! Native TLS (`tls_cert_file`, `tls_key_file`; src/http/tls.rs): HTTPS
//! with HTTP/2 and HTTP/1.1 by ALPN, the default public URL in https, an
//! MCP call over HTTP/2, certificates reloaded when the files change (and
//! kept when the new files are bad), and the start-up errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::Version;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{MCP, insert_token};

/// A test CA that signs server certificates for localhost.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mcpgate TLS test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Self { params, key, pem }
    }

    /// A server certificate and its key, as PEM, and the certificate's DER.
    fn issue(&self, common_name: &str) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    fn write(&self, cert: &str, key: &str) {
        // As a renewal tool would: a new file moved into place.
        replace(&self.cert(), cert);
        replace(&self.key(), key);
    }
}

fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn spawn_tls(files: &Files) -> TestApp {
    let (cert, key) = (files.cert(), files.key());
    spawn_app_with(move |s| {
        s.tls_cert_file = Some(cert);
        s.tls_key_file = Some(key);
    })
    .await
}

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("base address")
}

/// A new client (no pooled connection) trusting the test CA, `localhost`
/// pinned to the server's address.
fn client(ca: &Ca, app: &TestApp, http1_only: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).expect("CA"))
        .resolve("localhost", addr(app))
        .tls_info(true)
        .timeout(Duration::from_secs(10));
    if http1_only {
        b = b.http1_only();
    }
    b.build().expect("client")
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://localhost:{}{path}", addr(app).port())
}

/// The certificate the server presented on a new connection.
async fn served_certificate(ca: &Ca, app: &TestApp) -> Vec<u8> {
    let resp = client(ca, app, false)
        .get(https(app, "/healthz"))
        .send()
        .await
        .expect("https request");
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("peer certificate")
        .to_vec()
}

#[tokio::test]
async fn serves_https_with_http2_and_http1_and_advertises_https_urls() {
    let ca = Ca::new();
    let files = Files::new();
    let (cert, key, _) = ca.issue("first");
    files.write(&cert, &key);
    let app = spawn_tls(&files).await;

    let h2 = client(&ca, &app, false)
        .get(https(&app, "/healthz"))
        .send()
        .await
        .expect("h2 request");
    assert_eq!(h2.status(), 200);
    assert_eq!(h2.version(), Version::HTTP_2, "ALPN chose HTTP/2");

    let h1 = client(&ca, &app, true)
        .get(https(&app, "/healthz"))
        .send()
        .await
        .expect("h1 request");
    assert_eq!(h1.status(), 200);
    assert_eq!(h1.version(), Version::HTTP_11);

    // Without public_url, a loopback listener with TLS is https://localhost:<port>.
    let meta: Value = client(&ca, &app, false)
        .get(https(&app, "/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    let issuer = format!("https://localhost:{}", addr(&app).port());
    assert_eq!(meta["issuer"], issuer);
    assert_eq!(meta["token_endpoint"], format!("{issuer}/v1/oauth/token"));

    // Plain http to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain http must not be served: {plain:?}");
}

#[tokio::test]
async fn an_mcp_call_over_http2() {
    let ca = Ca::new();
    let files = Files::new();
    let (cert, key, _) = ca.issue("first");
    files.write(&cert, &key);
    let app = spawn_tls(&files).await;
    app.add_user("alice").await;
    let registered = app
        .auth
        .register(
            &json!({"client_name": "TLS test", "redirect_uris": ["http://127.0.0.1:1/callback"],
                    "token_endpoint_auth_method": "none"}),
            "127.0.0.1".parse().expect("ip"),
        )
        .await
        .expect("registered");
    let client_id = registered["client_id"].as_str().expect("client_id");
    let resource = format!("https://localhost:{}{MCP}", addr(&app).port());
    let token = insert_token(&app, "alice", client_id, "mcp", &resource).await;

    let http = client(&ca, &app, false);
    let resp = http
        .post(https(&app, MCP))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "whoami", "arguments": {},
                              "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                        "io.modelcontextprotocol/clientCapabilities": {}}}})
            .to_string(),
        )
        .send()
        .await
        .expect("tools/call");
    assert_eq!(resp.version(), Version::HTTP_2);
    let status = resp.status();
    let body = resp.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("You are alice"), "{body}");

    // Without a token: the challenge names the https metadata.
    let resp = http
        .post(https(&app, MCP))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("unauthenticated");
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"https://localhost:{}/.well-known/oauth-protected-resource",
            addr(&app).port()
        )),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_bad_files_are_ignored() {
    let ca = Ca::new();
    let files = Files::new();
    let (cert, key, first_der) = ca.issue("first");
    files.write(&cert, &key);
    let app = spawn_tls(&files).await;
    assert_eq!(served_certificate(&ca, &app).await, first_der);

    let (cert, key, renewed_der) = ca.issue("renewed");
    files.write(&cert, &key);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if served_certificate(&ca, &app).await == renewed_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A key that does not belong to the certificate: the renewed one stays.
    let (_, other_key, _) = ca.issue("other");
    replace(&files.key(), &other_key);
    tokio::time::sleep(mcpgate::http::tls::RELOAD_CHECK_EVERY * 2).await;
    assert_eq!(served_certificate(&ca, &app).await, renewed_der);
    // Garbage: the same.
    replace(&files.cert(), "not a certificate");
    tokio::time::sleep(mcpgate::http::tls::RELOAD_CHECK_EVERY * 2).await;
    assert_eq!(served_certificate(&ca, &app).await, renewed_der);

    // A good pair again is picked up.
    let (cert, key, third_der) = ca.issue("third");
    files.write(&cert, &key);
    let deadline = Instant::now() + Duration::from_secs(15);
    while served_certificate(&ca, &app).await != third_der {
        assert!(
            Instant::now() < deadline,
            "the third certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn build_error(tweak: impl FnOnce(&mut mcpgate::config::Settings)) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = crate::helpers::test_settings(&dir.path().join("mcpgate.db"));
    tweak(&mut settings);
    match mcpgate::app::App::build(settings).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn bad_tls_files_stop_the_server_at_start_with_the_reason() {
    let ca = Ca::new();
    let files = Files::new();
    let (cert, _, _) = ca.issue("first");
    let (_, other_key, _) = ca.issue("other");
    files.write(&cert, &other_key);

    let (c, k) = (files.cert(), files.key());
    let e = build_error(|s| {
        s.tls_cert_file = Some(c);
        s.tls_key_file = Some(k);
    })
    .await;
    assert!(
        e.contains("is not the private key of the certificate"),
        "{e}"
    );

    let c = files.cert();
    let e = build_error(|s| s.tls_cert_file = Some(c)).await;
    assert!(e.contains("tls_key_file is not"), "{e}");

    let (k, missing) = (files.key(), files.dir.path().join("missing.pem"));
    let e = build_error(|s| {
        s.tls_cert_file = Some(missing);
        s.tls_key_file = Some(k);
    })
    .await;
    assert!(e.contains("cannot read tls_cert_file"), "{e}");

    replace(
        &files.key(),
        "-----BEGIN NOTHING-----\n-----END NOTHING-----\n",
    );
    let (c, k) = (files.cert(), files.key());
    let e = build_error(|s| {
        s.tls_cert_file = Some(c);
        s.tls_key_file = Some(k);
    })
    .await;
    assert!(e.contains("holds no PEM private key"), "{e}");
}
