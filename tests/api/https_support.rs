//! A local HTTPS server for tests of outbound fetches (client metadata
//! documents, JWKS): a CA made by the test (rcgen), a certificate for
//! `localhost` and `127.0.0.1` signed by it, and a tiny HTTP/1.1 server
//! (hyper over tokio-rustls) whose routes the test sets and whose requests
//! it counts per path. [`HttpsServer::stop`] closes the listener and every
//! open connection, as a host that went down; [`HttpsServer::restart`]
//! listens on the same port again.
//!
//! mcpgate under test trusts the CA through `outbound_ca_file`
//! ([`HttpsServer::ca_file`]) and may reach the server through
//! `outbound_allow_networks = ["127.0.0.1/32"]`; [`HttpsServer::trust`]
//! sets both.
//!
//! ```ignore
//! let server = HttpsServer::start().await;
//! server.json("/client.json", &doc, &[("cache-control", "max-age=600")]);
//! let app = spawn_app_with(|s| server.trust(s)).await;
//! assert_eq!(server.hits("/client.json"), 1);
//! ```

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use mcpgate::config::Settings;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// What one path answers.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (timeouts).
    pub delay: Option<Duration>,
}

impl Route {
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: None,
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            status,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            delay: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
}

pub struct HttpsServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    running: Option<tokio::task::JoinHandle<()>>,
    ca_pem: String,
    dir: tempfile::TempDir,
}

impl HttpsServer {
    /// A new CA, a certificate for localhost/127.0.0.1, listening on an
    /// ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let (acceptor, ca_pem) = tls();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).expect("write CA");
        let mut server = Self {
            addr,
            shared: Arc::default(),
            acceptor,
            running: None,
            ca_pem,
            dir,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let shared = self.shared.clone();
        let acceptor = self.acceptor.clone();
        self.running = Some(tokio::spawn(async move {
            // Dropped with this task: aborting it closes every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(answer(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Sets what `path` answers.
    pub fn route(&self, path: &str, route: Route) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), route);
    }

    /// Serves `body` as JSON at `path`, with extra headers.
    pub fn json(&self, path: &str, body: &serde_json::Value, headers: &[(&str, &str)]) {
        let mut route = Route::json(body);
        for (k, v) in headers {
            route = route.header(k, v);
        }
        self.route(path, route);
    }

    /// Requests received for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding the CA certificate, for `outbound_ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Makes mcpgate trust this server: its CA, and 127.0.0.1 exempt from
    /// the SSRF rule.
    pub fn trust(&self, s: &mut Settings) {
        self.trust_ca_only(s);
        s.outbound_allow_networks = vec!["127.0.0.1/32".into()];
    }

    /// Only the CA (127.0.0.1 stays refused by the SSRF rule).
    pub fn trust_ca_only(&self, s: &mut Settings) {
        s.outbound_ca_file = Some(self.ca_file());
    }

    /// Closes the listener and every open connection: the host is down
    /// (connections are refused).
    pub async fn stop(&mut self) {
        if let Some(task) = self.running.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port, with the same routes and counts.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if let Some(task) = self.running.take() {
            task.abort();
        }
    }
}

async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    *shared.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let route = shared.routes.lock().unwrap().get(&path).cloned();
    let Some(route) = route else {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"not found")))
            .unwrap();
    };
    if let Some(d) = route.delay {
        tokio::time::sleep(d).await;
    }
    let mut b = Response::builder().status(route.status);
    for (k, v) in &route.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(Bytes::from(route.body))).unwrap()
}

/// A CA and a server certificate signed by it; the acceptor and the CA PEM.
fn tls() -> (TlsAcceptor, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mcpgate test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::from_params(&ca, &ca_key);

    let leaf_key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("server certificate");

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
    (TlsAcceptor::from(Arc::new(config)), ca_cert.pem())
}
