//! A small identity provider for the federation tests, served in process
//! on port 0: OpenID Connect (discovery, JWKS, RS256 ID tokens signed with
//! `jsonwebtoken`) or plain OAuth 2.0 with a GitHub-style `/user`
//! endpoint. It checks what a real provider checks (client credentials,
//! redirect URI, PKCE S256, one-time codes), records the requests it got,
//! and has fault switches for the error cases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "mcpgate-test";
pub const CLIENT_SECRET: &str = "fixture-client-secret-3b1f";
pub const KID: &str = "k1";

/// The provider's signing key (2048-bit RSA, PKCS#1 PEM, test only).
const GOOD_KEY: &str = include_str!("federation_keys/good.pem");
/// Another key, for "ID token signed with the wrong key".
const WRONG_KEY: &str = include_str!("federation_keys/wrong.pem");
/// The modulus of `GOOD_KEY` (base64url), published in the JWKS.
const GOOD_N: &str = "nC81S63tzjZIQjrVxc7J2oW0ZTNGC2zrcTFA9crhzzuuYmQaRcsrvBGUE7tBgTmbfSEicM1K53ldgEz8RS3HXFy-Lb6WqkRF6uWTOsK6hnu9S4WSqIejyrNK6HXSK721dnam70YyBJ3YrgN3vriU-_xr7FJe-IhF6jiA2n9XuXDyGyPnYdtavWVsUkgKhB-3DuQJiCGdgERAV4SbpqB7y80e_e5vrQU8HGmAwtbMgZfeRme8VrjqY9H3OkWpbHnQtkgfm8EHYnAofSsgWx01U02dC1dlMjbrqtAjLQBmUoGAUc4LNQcMKdWMr8MwpUR2cXKRUgnoAGErUi9lQTt0CQ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Oidc,
    OAuth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The ID token is signed with a key that is not in the JWKS.
    WrongKey,
    WrongNonce,
    WrongAudience,
    /// The ID token expired ten minutes ago.
    Expired,
    /// The user clicks "deny": `error=access_denied`.
    Deny,
    /// Every endpoint answers 503.
    Down,
}

/// What the fixture remembers; tests read and change it.
pub struct Fixture {
    pub mode: Mode,
    pub fault: Option<Fault>,
    /// The account that signs in (OIDC claims; in OAuth 2.0 mode `sub` is
    /// served as GitHub's numeric `id` and `preferred_username` as `login`).
    pub account: Value,
    /// Every `redirect_uri` the fixture received (authorize and token).
    pub redirect_uris: Vec<String>,
    /// The query of every authorization request.
    pub authorize_requests: Vec<HashMap<String, String>>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Value>,
}

struct Grant {
    challenge: String,
    method: String,
    redirect_uri: String,
    nonce: Option<String>,
    account: Value,
}

pub struct Provider {
    pub url: String,
    pub state: Arc<Mutex<Fixture>>,
}

impl Provider {
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault = fault;
    }
    pub fn set_account(&self, account: Value) {
        self.state.lock().unwrap().account = account;
    }
    pub fn redirect_uris(&self) -> Vec<String> {
        self.state.lock().unwrap().redirect_uris.clone()
    }
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().authorize_requests.clone()
    }
}

pub fn default_account() -> Value {
    json!({
        "sub": "4242",
        "email": "ann@example.com",
        "email_verified": true,
        "preferred_username": "ann",
        "name": "Ann Example",
        "groups": ["staff"],
    })
}

/// Starts a provider on a free port.
pub async fn start(mode: Mode) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let state = Arc::new(Mutex::new(Fixture {
        mode,
        fault: None,
        account: default_account(),
        redirect_uris: Vec::new(),
        authorize_requests: Vec::new(),
        codes: HashMap::new(),
        tokens: HashMap::new(),
    }));
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .route("/user", get(userinfo))
        .route("/user/emails", get(emails))
        .with_state((state.clone(), url.clone()));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Provider { url, state }
}

type S = State<(Arc<Mutex<Fixture>>, String)>;

fn down(state: &Arc<Mutex<Fixture>>) -> bool {
    state.lock().unwrap().fault == Some(Fault::Down)
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "<html>maintenance</html>").into_response()
}

async fn discovery(State((state, url)): S) -> Response {
    if down(&state) {
        return unavailable();
    }
    axum::Json(json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "userinfo_endpoint": format!("{url}/userinfo"),
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
    .into_response()
}

async fn jwks(State((state, _)): S) -> Response {
    if down(&state) {
        return unavailable();
    }
    axum::Json(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID, "n": GOOD_N, "e": "AQAB"
    }]}))
    .into_response()
}

async fn authorize(State((state, _)): S, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = state.lock().unwrap();
    if s.fault == Some(Fault::Down) {
        return unavailable();
    }
    s.authorize_requests.push(q.clone());
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    s.redirect_uris.push(redirect_uri.clone());
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    let st = q.get("state").cloned().unwrap_or_default();
    let mut target = url::Url::parse(&redirect_uri).unwrap();
    if s.fault == Some(Fault::Deny) {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "<b>The user said no</b>")
            .append_pair("state", &st);
        return Redirect::to(target.as_str()).into_response();
    }
    let code = mcpgate_core::crypto::random_b64::<16>();
    let grant = Grant {
        challenge: q.get("code_challenge").cloned().unwrap_or_default(),
        method: q.get("code_challenge_method").cloned().unwrap_or_default(),
        redirect_uri,
        nonce: q.get("nonce").cloned(),
        account: s.account.clone(),
    };
    s.codes.insert(code.clone(), grant);
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &st);
    Redirect::to(target.as_str()).into_response()
}

fn oauth_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": error}))).into_response()
}

/// The client's credentials: HTTP Basic or the form.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (String, String) {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let raw = String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap();
        let (id, secret) = raw.split_once(':').unwrap();
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        };
        return (dec(id), dec(secret));
    }
    (
        form.get("client_id").cloned().unwrap_or_default(),
        form.get("client_secret").cloned().unwrap_or_default(),
    )
}

async fn token(
    State((state, url)): S,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    if s.fault == Some(Fault::Down) {
        return unavailable();
    }
    let (id, secret) = client_credentials(&headers, &form);
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error("unsupported_grant_type");
    }
    let redirect_uri = form.get("redirect_uri").cloned().unwrap_or_default();
    s.redirect_uris.push(redirect_uri.clone());
    let Some(grant) = form.get("code").and_then(|c| s.codes.remove(c)) else {
        return oauth_error("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let pkce_ok = grant.method == "S256"
        && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == grant.challenge;
    if grant.redirect_uri != redirect_uri || !pkce_ok {
        return oauth_error("invalid_grant");
    }
    let access = mcpgate_core::crypto::random_b64::<16>();
    s.tokens.insert(access.clone(), grant.account.clone());
    let mut body = json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600});
    if s.mode == Mode::Oidc {
        body["id_token"] = json!(id_token(&url, &grant, s.fault));
    }
    axum::Json(body).into_response()
}

fn id_token(issuer: &str, grant: &Grant, fault: Option<Fault>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = grant.account.clone();
    claims["iss"] = json!(issuer);
    claims["aud"] = json!(if fault == Some(Fault::WrongAudience) {
        "someone-else"
    } else {
        CLIENT_ID
    });
    claims["iat"] = json!(now);
    claims["exp"] = json!(if fault == Some(Fault::Expired) {
        now - 600
    } else {
        now + 300
    });
    if let Some(n) = &grant.nonce {
        claims["nonce"] = json!(if fault == Some(Fault::WrongNonce) {
            "not-the-nonce"
        } else {
            n.as_str()
        });
    }
    let pem = if fault == Some(Fault::WrongKey) {
        WRONG_KEY
    } else {
        GOOD_KEY
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_der(&pkcs1_der(pem)),
    )
    .unwrap()
}

/// The DER body of a PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
fn pkcs1_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

async fn userinfo(State((state, _)): S, headers: HeaderMap) -> Response {
    let s = state.lock().unwrap();
    if s.fault == Some(Fault::Down) {
        return unavailable();
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(account) = s.tokens.get(token) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let body = match s.mode {
        Mode::Oidc => account.clone(),
        // GitHub's /user: a numeric id, login, email (may be null), name.
        Mode::OAuth2 => json!({
            "id": account["sub"].as_str().and_then(|s| s.parse::<i64>().ok()),
            "login": account["preferred_username"],
            "email": account["email"],
            "name": account["name"],
            "groups": account["groups"],
        }),
    };
    axum::Json(body).into_response()
}

/// GitHub's `/user/emails`: the account's `emails` claim (a list of
/// `{email, primary, verified}`), or the email as primary and verified.
async fn emails(State((state, _)): S, headers: HeaderMap) -> Response {
    let s = state.lock().unwrap();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(account) = s.tokens.get(token) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let list = match account.get("emails") {
        Some(list) => list.clone(),
        None => json!([{"email": account["email"], "primary": true, "verified": true}]),
    };
    axum::Json(list).into_response()
}
