//! Helpers of the federation tests: an mcpgate configured with the
//! fixture provider, and the browser steps of a provider sign-in.

use mcpgate::federation::config::IdentityProviderConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::federation_fixture::{self as fixture, CLIENT_ID, CLIENT_SECRET, Mode, Provider};
use crate::helpers::{
    Browser, TestApp, VERIFIER, form_action, hidden_inputs, location, query_param, spawn_app_with,
};
use crate::mcp_support::McpClient;

pub const PROVIDER_ID: &str = "fixture";
pub const CLIENT_REDIRECT: &str = "http://127.0.0.1:1/client-callback";

pub struct Fed {
    pub app: TestApp,
    pub idp: Provider,
    pub client_id: String,
    _secret_dir: tempfile::TempDir,
}

/// The `[[identity_provider]]` entry for the fixture, changed by `tweak`.
pub fn provider_config(
    idp: &Provider,
    mode: Mode,
    secret_file: &std::path::Path,
    tweak: Value,
) -> IdentityProviderConfig {
    let mut c = match mode {
        Mode::Oidc => json!({
            "id": PROVIDER_ID,
            "kind": "oidc",
            "display_name": "Fixture ID",
            "issuer": idp.url,
        }),
        Mode::OAuth2 => json!({
            "id": PROVIDER_ID,
            "kind": "oauth2",
            "display_name": "Fixture Hub",
            "authorization_endpoint": format!("{}/authorize", idp.url),
            "token_endpoint": format!("{}/token", idp.url),
            "userinfo_endpoint": format!("{}/user", idp.url),
        }),
    };
    c["client_id"] = json!(CLIENT_ID);
    c["client_secret_file"] = json!(secret_file);
    // "{idp}" in a string value stands for the fixture's URL.
    if let Value::Object(extra) = tweak {
        for (k, v) in extra {
            c[k] = match v {
                Value::String(t) => Value::String(t.replace("{idp}", &idp.url)),
                other => other,
            };
        }
    }
    serde_json::from_value(c).expect("provider config")
}

/// Starts a fixture provider and an mcpgate that offers it.
pub async fn fed(mode: Mode, tweak: Value) -> Fed {
    fed_with(mode, tweak, |_| {}).await
}

pub async fn fed_with(
    mode: Mode,
    tweak: Value,
    settings: impl FnOnce(&mut mcpgate::config::Settings),
) -> Fed {
    let idp = fixture::start(mode).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).expect("secret file");
    let config = provider_config(&idp, mode, &secret_file, tweak);
    let app = spawn_app_with(|s| {
        s.identity_provider = vec![config];
        settings(s);
    })
    .await;
    let client_id = app.register_public(CLIENT_REDIRECT).await;
    Fed {
        app,
        idp,
        client_id,
        _secret_dir: dir,
    }
}

impl Fed {
    pub fn params(&self) -> Vec<(String, String)> {
        self.app.auth_params(&self.client_id, CLIENT_REDIRECT)
    }

    /// Our callback URL as registered at the provider.
    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.app.urls.issuer)
    }

    /// Opens the login page and presses the provider's button; returns the
    /// provider's authorization URL.
    pub async fn press_provider_button(&self, browser: &Browser) -> String {
        let r = browser.open_authorize(&self.params()).await;
        assert_eq!(r.status(), StatusCode::OK, "the login page");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!("name=\"provider\" value=\"{PROVIDER_ID}\"")),
            "the login page offers the provider: {html}"
        );
        let mut form = hidden_inputs(&html);
        form.push(("provider".into(), PROVIDER_ID.into()));
        let r = browser.post_form(&form_action(&html), &form).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let to = location(&r);
        assert!(to.starts_with(&self.idp.url), "sent to the provider: {to}");
        to
    }

    /// Visits the provider (which signs the fixture account in at once);
    /// returns the callback's path and query on our server.
    pub async fn visit_provider(&self, browser: &Browser, url: &str) -> String {
        let r = browser.http.get(url).send().await.expect("provider");
        assert!(r.status().is_redirection(), "a redirect: {}", r.status());
        let back = url::Url::parse(&location(&r)).expect("callback URL");
        assert_eq!(
            format!("{}{}", back.origin().ascii_serialization(), back.path()),
            self.callback_url(),
            "the provider sends the browser to our callback"
        );
        format!("{}?{}", back.path(), back.query().unwrap_or(""))
    }

    /// From the login page to our callback URL (not yet visited).
    pub async fn to_callback(&self, browser: &Browser) -> String {
        let at = self.press_provider_button(browser).await;
        self.visit_provider(browser, &at).await
    }

    /// Visits the callback; after a success, approves the consent page and
    /// returns the client's redirect `Location`.
    pub async fn finish(&self, browser: &Browser, callback: &str) -> String {
        let r = browser.get(callback).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let back = location(&r);
        assert!(back.starts_with("/v1/oauth/authorize?"), "{back}");
        let r = browser.get(&back).await;
        if r.status() == StatusCode::FOUND {
            return location(&r);
        }
        assert_eq!(r.status(), StatusCode::OK, "the consent page");
        let html = r.text().await.unwrap();
        assert!(html.contains("decision"), "{html}");
        let r = browser.submit_consent(&html, "approve").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        location(&r)
    }

    /// The whole sign-in in a new browser; returns the client's redirect.
    pub async fn sign_in(&self) -> String {
        let browser = self.app.browser();
        let cb = self.to_callback(&browser).await;
        self.finish(&browser, &cb).await
    }

    /// Exchanges the code of a client redirect; returns the access token.
    pub async fn exchange(&self, client_redirect: &str) -> String {
        let code = query_param(client_redirect, "code").expect("a code");
        let r = self
            .app
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CLIENT_REDIRECT),
                ("client_id", &self.client_id),
                ("code_verifier", VERIFIER),
                ("resource", &self.app.resource()),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// `whoami` through the MCP endpoint with `token`.
    pub async fn whoami(&self, token: &str) -> String {
        let mut c = McpClient::new(&self.app, token);
        c.initialize("2025-06-18").await;
        let m = c.call_tool("whoami", json!({})).await;
        m["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Asserts an error page with `status`, the `event` name, and returns its HTML.
pub async fn assert_failure(r: reqwest::Response, status: StatusCode, event: &str) -> String {
    assert_eq!(r.status(), status);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains(event), "{event} on the page: {html}");
    html
}

/// The log lines this thread writes while a `Logs` lives. The tests run on
/// a current-thread runtime, so the server's tasks log on the test's
/// thread. One global subscriber (installed once, `mcpgate=info` as in
/// production) writes into a thread-local buffer: a per-test scoped
/// subscriber would race with other tests over tracing's callsite cache.
pub struct Logs;

thread_local! {
    static BUFFER: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

impl Logs {
    pub fn capture() -> Self {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            // The binary's own writer (`mcpgate::logging`): escaping included.
            let subscriber = tracing_subscriber::fmt()
                .with_writer(mcpgate::logging::Escaping::new(|| LogWriter, false))
                .with_ansi(false)
                .with_env_filter("mcpgate=info,mcpgate_core=info,warn")
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        BUFFER.with(|b| *b.borrow_mut() = Some(Vec::new()));
        Self
    }

    pub fn text(&self) -> String {
        BUFFER.with(|b| {
            String::from_utf8_lossy(b.borrow().as_deref().unwrap_or_default()).into_owned()
        })
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        BUFFER.with(|b| *b.borrow_mut() = None);
    }
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        BUFFER.with(|buf| {
            if let Some(v) = buf.borrow_mut().as_mut() {
                v.extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
