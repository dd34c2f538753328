//! The test harness: `spawn_app()` starts the real server in process on
//! port 0 with its own SQLite file and a manual clock, and `TestApp` offers
//! the steps of the OAuth flow as a browser and a client would do them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate::app::App;
use mcpgate::clock::ManualClock;
use mcpgate::config::Settings;
use mcpgate::store::Store;
use mcpgate_core::oauth::discovery::Urls;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub struct TestApp {
    pub base: String,
    pub urls: Urls,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
    pub auth: Arc<mcpgate::auth::AuthServer>,
    pub db_path: PathBuf,
    /// A client that does not follow redirects (to read `Location`).
    pub http: reqwest::Client,
    /// The address of `metrics_listen`, when set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// What `SIGHUP` and `mcpgate reload` call.
    pub reloader: Arc<mcpgate::reload::Reloader>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: Arc<tempfile::TempDir>,
}

pub fn test_settings(db: &std::path::Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", db.display()),
        ..Settings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after letting the test change its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let db = dir.path().join("mcpgate.db");
    let mut settings = test_settings(&db);
    tweak(&mut settings);
    start(settings, dir, ManualClock::starting_now()).await
}

/// Starts a server exporting its spans as `traces` says (the other
/// servers of the tests export nothing).
pub async fn spawn_app_traced(
    tweak: impl FnOnce(&mut Settings),
    traces: mcpgate::telemetry::traces::TraceConfig,
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let db = dir.path().join("mcpgate.db");
    let mut settings = test_settings(&db);
    tweak(&mut settings);
    start_traced(settings, dir, ManualClock::starting_now(), Some(traces)).await
}

async fn start(settings: Settings, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> TestApp {
    start_traced(settings, dir, clock, None).await
}

/// Starts a server configured by the file `config` (plus `listen` on port
/// 0 and its own database, given as flags are), which a reload reads
/// again as the binary does.
pub async fn spawn_app_from_file(dir: tempfile::TempDir, config: PathBuf) -> TestApp {
    let dir = Arc::new(dir);
    let db = dir.path().join("mcpgate.db");
    let flags = json!({
        "listen": "127.0.0.1:0",
        "database_url": format!("sqlite://{}", db.display()),
    });
    let load = move || Settings::load(Some(&config), &flags);
    let settings = load().expect("the configuration loads");
    let clock = ManualClock::starting_now();
    let app = App::build_with_clock(settings, Arc::new(clock.clone()))
        .await
        .expect("app builds")
        .reload_from(Box::new(load));
    serve(app, dir, clock)
}

async fn start_traced(
    settings: Settings,
    dir: Arc<tempfile::TempDir>,
    clock: ManualClock,
    traces: Option<mcpgate::telemetry::traces::TraceConfig>,
) -> TestApp {
    let app = App::build_traced(settings, Arc::new(clock.clone()), traces)
        .await
        .expect("app builds");
    serve(app, dir, clock)
}

fn serve(app: App, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> TestApp {
    let db_path = dir.path().join("mcpgate.db");
    let reloader = app.reloader();
    let metrics_addr = app.metrics_addr();
    let base = format!("http://127.0.0.1:{}", app.port());
    let urls = app.urls().clone();
    let store = app.store();
    let auth = app.auth();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        urls,
        clock,
        store,
        auth,
        db_path,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
        metrics_addr,
        reloader,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: dir,
    }
}

impl TestApp {
    /// Stops this server and starts a new one on the same database file
    /// (a new port), keeping the clock.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Restarts on the same database with changed settings.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        self.stop().await;
        let mut settings = test_settings(&self.db_path);
        tweak(&mut settings);
        start(settings, self._dir.clone(), self.clock.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    /// A URL on this server. The issuer is `http://localhost:<port>`; tests
    /// talk to `127.0.0.1` directly.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The MCP resource URL as advertised.
    pub fn resource(&self) -> String {
        self.urls.resource.clone()
    }

    pub async fn add_user(&self, username: &str) {
        mcpgate::auth::users::add(self.store.as_ref(), username, PASSWORD.to_string(), 0)
            .await
            .expect("user created");
    }

    pub async fn register(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/oauth/register"))
            .json(&body)
            .send()
            .await
            .expect("register request")
    }

    /// Registers a public client with one redirect URI; returns its client_id.
    pub async fn register_public(&self, redirect_uri: &str) -> String {
        let r = self
            .register(json!({
                "client_name": "Test Client",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        body["client_id"].as_str().expect("client_id").to_string()
    }

    /// Registers a confidential client; returns (client_id, client_secret).
    pub async fn register_confidential(
        &self,
        redirect_uri: &str,
        method: &str,
    ) -> (String, String) {
        let r = self
            .register(json!({
                "client_name": "Confidential",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": method,
            }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        (
            body["client_id"].as_str().expect("id").to_string(),
            body["client_secret"].as_str().expect("secret").to_string(),
        )
    }

    /// A browser with its own cookie jar that does not follow redirects.
    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .build()
                .expect("client"),
            base: self.base.clone(),
        }
    }

    /// The standard authorization request parameters for a client.
    pub fn auth_params(&self, client_id: &str, redirect_uri: &str) -> Vec<(String, String)> {
        vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), redirect_uri.into()),
            ("scope".into(), "mcp".into()),
            ("state".into(), "state-123".into()),
            ("code_challenge".into(), CHALLENGE.into()),
            ("code_challenge_method".into(), "S256".into()),
            ("resource".into(), self.resource()),
        ]
    }

    /// Runs the whole browser flow (sign in as `username`, approve) and
    /// returns the code from the redirect.
    pub async fn authorize(&self, username: &str, params: &[(String, String)]) -> String {
        let browser = self.browser();
        let loc = browser
            .sign_in_and_approve(params, username, PASSWORD)
            .await;
        query_param(&loc, "code").expect("code in redirect")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/v1/oauth/token"))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// Registers a public client, signs `user` in and exchanges the code.
    /// Returns (client_id, token response JSON).
    pub async fn full_flow(&self, user: &str) -> (String, Value) {
        let redirect = "http://127.0.0.1:1/callback";
        let client_id = self.register_public(redirect).await;
        let code = self
            .authorize(user, &self.auth_params(&client_id, redirect))
            .await;
        let r = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &client_id),
                ("code_verifier", VERIFIER),
                ("resource", &self.resource()),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        (client_id, r.json().await.expect("json"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A scripted browser: GETs pages, reads the one form, posts it.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.base, path_and_query))
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_form(&self, path: &str, form: &[(String, String)]) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// Opens the authorize URL with `params`; returns the response.
    pub async fn open_authorize(&self, params: &[(String, String)]) -> reqwest::Response {
        let q = serde_urlencoded_pairs(params);
        self.get(&format!("/v1/oauth/authorize?{q}")).await
    }

    /// Signs in on the login page in `html` and returns the response to the POST.
    pub async fn submit_login(
        &self,
        html: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let mut form = hidden_inputs(html);
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        self.post_form(&form_action(html), &form).await
    }

    /// Posts the consent form in `html` with `decision` (approve or deny).
    pub async fn submit_consent(&self, html: &str, decision: &str) -> reqwest::Response {
        let mut form = hidden_inputs(html);
        form.push(("decision".into(), decision.into()));
        self.post_form(&form_action(html), &form).await
    }

    /// The whole flow: open, sign in, approve; returns the final Location.
    pub async fn sign_in_and_approve(
        &self,
        params: &[(String, String)],
        username: &str,
        password: &str,
    ) -> String {
        let r = self.open_authorize(params).await;
        if r.status() == StatusCode::FOUND {
            // Already signed in, consent remembered.
            return location(&r);
        }
        assert_eq!(r.status(), StatusCode::OK, "the login page is shown");
        let html = r.text().await.expect("html");
        let r = self.submit_login(&html, username, password).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "sign-in redirects back to authorize"
        );
        let back = location(&r);
        let r = self.get(&back).await;
        if r.status() == StatusCode::FOUND {
            return location(&r);
        }
        assert_eq!(r.status(), StatusCode::OK, "the consent page is shown");
        let html = r.text().await.expect("html");
        let r = self.submit_consent(&html, "approve").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        location(&r)
    }
}

pub fn serde_urlencoded_pairs(params: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_string()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse(&format!("http://x{url}")))
        .ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `name="..." value="..."` pairs of every hidden input in a page.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect()
}

/// The `action` of the page's form.
pub fn form_action(html: &str) -> String {
    let form = html.split("<form").nth(1).expect("a form");
    attr(form, "action").expect("form action")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let rest = &tag[start..];
    let stop = rest.find('"')?;
    Some(html_unescape(&rest[..stop]))
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
