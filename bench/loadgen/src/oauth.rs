//! `setup`: the OAuth flow of a real client, the same steps as
//! docs/examples/oauth-flow.sh: register a public client (RFC 7591), open the
//! authorization URL with a PKCE S256 challenge (RFC 7636), sign in, approve,
//! exchange the code. The browser session is kept, so the later grants only
//! go through consent (or straight to the code once consent is remembered).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

#[derive(clap::Args)]
pub struct SetupArgs {
    /// mcpgate's base URL, e.g. http://127.0.0.1:3400
    #[arg(long)]
    base: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// How many grants (access + refresh token pairs) to obtain.
    #[arg(long, default_value_t = 64)]
    grants: usize,
    /// Where to write `{client_id, access_tokens, refresh_tokens}`.
    #[arg(long)]
    out: std::path::PathBuf,
}

/// The tokens file `setup` writes and `refresh` rotates.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Tokens {
    pub base: String,
    pub client_id: String,
    pub access_tokens: Vec<String>,
    pub refresh_tokens: Vec<String>,
}

fn hidden(page: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let start = page.find(&key)? + key.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

fn pkce(seed: usize) -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let verifier = hex::encode(Sha256::digest(format!(
        "{nanos}-{seed}-{}",
        std::process::id()
    )));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn setup(a: SetupArgs) -> anyhow::Result<Value> {
    let base = a.base.trim_end_matches('/').to_string();
    let resource = format!("{base}/v1/ai/mcp");
    let http = crate::client::builder()?
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let reg: Value = http
        .post(format!("{base}/v1/oauth/register"))
        .json(&json!({
            "client_name": "mcpgate bench",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "mcp",
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await?
        .error_for_status()
        .context("registration")?
        .json()
        .await?;
    let client_id = reg["client_id"]
        .as_str()
        .context("no client_id in the registration response")?
        .to_string();

    let mut tokens = Tokens {
        base: base.clone(),
        client_id: client_id.clone(),
        access_tokens: Vec::new(),
        refresh_tokens: Vec::new(),
    };
    for i in 0..a.grants {
        let (verifier, challenge) = pkce(i);
        let state = format!("s{i}");
        let params = [
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "mcp"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource.as_str()),
        ];
        let authorize = format!("{base}/v1/oauth/authorize");
        let mut start = url::Url::parse(&authorize)?;
        start.query_pairs_mut().extend_pairs(params.iter());
        let mut resp = http.get(start.as_str()).send().await?;
        let mut code = None;
        for _ in 0..6 {
            if resp.status().is_redirection() {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .context("a redirect without Location")?
                    .to_string();
                if location.starts_with(REDIRECT_URI) {
                    if let Some(e) = query_param(&location, "error") {
                        bail!("authorization refused: {e}");
                    }
                    code = query_param(&location, "code");
                    break;
                }
                let next = if location.starts_with('/') {
                    format!("{base}{location}")
                } else {
                    location
                };
                resp = http.get(next).send().await?;
                continue;
            }
            if resp.status() != StatusCode::OK {
                bail!("authorization page answered {}", resp.status());
            }
            let page = resp.text().await?;
            let csrf = hidden(&page, "csrf_token").context("no CSRF token on the page")?;
            let mut form: Vec<(&str, String)> =
                params.iter().map(|&(k, v)| (k, v.to_string())).collect();
            form.push(("csrf_token", csrf));
            if page.contains("name=\"password\"") {
                form.push(("action", "login".into()));
                form.push(("username", a.user.clone()));
                form.push(("password", a.password.clone()));
            } else {
                form.push(("action", "consent".into()));
                form.push(("decision", "approve".into()));
            }
            resp = http.post(&authorize).form(&form).send().await?;
        }
        let code = code.context("the flow did not end with a code")?;
        let t: Value = http
            .post(format!("{base}/v1/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", client_id.as_str()),
                ("code_verifier", verifier.as_str()),
                ("resource", resource.as_str()),
            ])
            .send()
            .await?
            .error_for_status()
            .context("code exchange")?
            .json()
            .await?;
        let access = t["access_token"].as_str().context("no access_token")?;
        let refresh = t["refresh_token"].as_str().context("no refresh_token")?;
        tokens.access_tokens.push(access.to_string());
        tokens.refresh_tokens.push(refresh.to_string());
    }
    std::fs::write(&a.out, serde_json::to_vec_pretty(&tokens)?)?;
    Ok(json!({
        "client_id": client_id,
        "grants": tokens.access_tokens.len(),
        "access_token": tokens.access_tokens.first(),
    }))
}

pub fn read_tokens(path: &std::path::Path) -> anyhow::Result<Tokens> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}
