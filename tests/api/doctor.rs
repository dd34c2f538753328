//! `mcpgate doctor`: against the real server (every check passes) and
//! against small axum servers that each get one thing wrong (the relevant
//! check fails with a hint naming the fix, the binary exits non-zero).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mcpgate::doctor::{self, Check, CheckResult, Options, Status};
use serde_json::{Value, json};
use tower_http::cors::{Any, CorsLayer};

use crate::helpers::{spawn_app, spawn_app_with};

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

/// Runs `mcpgate <args>` in an empty directory; returns (exit code, stdout).
async fn run_bin(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tokio::process::Command::new(BIN);
    c.args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            c.env_remove(k);
        }
    }
    let out = c.output().await.expect("mcpgate runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn result(results: &[CheckResult], check: Check) -> &CheckResult {
    results
        .iter()
        .find(|r| r.check == check)
        .expect("the check ran")
}

fn with_status(results: &[CheckResult], status: Status) -> Vec<Check> {
    results
        .iter()
        .filter(|r| r.status == status)
        .map(|r| r.check)
        .collect()
}

fn report(results: &[CheckResult]) -> String {
    doctor::render(results)
}

#[tokio::test]
async fn a_correct_mcpgate_deployment_passes_every_check() {
    let app = spawn_app().await;
    let results = doctor::check(&app.urls.issuer, &Options::default()).await;
    assert_eq!(results.len(), Check::ALL.len());
    assert_eq!(
        with_status(&results, Status::Pass),
        Check::ALL.to_vec(),
        "{}",
        report(&results)
    );
    assert!(
        result(&results, Check::Registration)
            .detail
            .contains("registered 2 test clients")
    );
    assert_eq!(app.store.list_clients().await.unwrap().len(), 2);

    // The binary, given the full MCP URL.
    let (code, out) = run_bin(&["doctor", &app.resource()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("mcpgate doctor: {}", app.urls.issuer)),
        "{out}"
    );
    assert!(out.contains("✓ MCP endpoint challenge: 401"), "{out}");
    assert!(
        out.contains("registered 2 test clients (") && out.contains("they expire unused"),
        "{out}"
    );
    assert!(out.contains("10 passed, 0 warnings, 0 failed"), "{out}");
    assert!(!out.contains('✗'), "{out}");
}

#[tokio::test]
async fn no_register_skips_the_registration_and_authorize_checks() {
    let app = spawn_app().await;
    let options = Options {
        register: false,
        ..Options::default()
    };
    let results = doctor::check(&app.urls.issuer, &options).await;
    assert_eq!(
        with_status(&results, Status::Skip),
        vec![Check::Registration, Check::Authorize]
    );
    assert!(
        with_status(&results, Status::Fail).is_empty(),
        "{}",
        report(&results)
    );
    assert!(app.store.list_clients().await.unwrap().is_empty());
    assert!(report(&results).contains("8 passed, 0 warnings, 0 failed (2 skipped)"));
}

#[tokio::test]
async fn mcpgate_with_a_wrong_public_url_fails_the_challenge_check() {
    // The server believes it is somewhere else (a proxy in front, public_url
    // not set to the URL clients use).
    let app = spawn_app_with(|s| s.public_url = Some("http://localhost:1".into())).await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let results = doctor::check(&format!("http://localhost:{port}"), &Options::default()).await;
    let c = result(&results, Check::Challenge);
    assert_eq!(c.status, Status::Fail, "{}", report(&results));
    assert!(c.detail.contains("not to the public host"), "{}", c.detail);
    assert!(c.hint.as_deref().unwrap().contains("public_url"));
    let p = result(&results, Check::ProtectedResource);
    assert_eq!(p.status, Status::Fail);
    assert!(p.detail.contains("is not the MCP URL"), "{}", p.detail);
    assert_eq!(result(&results, Check::Consistency).status, Status::Fail);
}

#[tokio::test]
async fn an_unreachable_server_fails_once_and_skips_the_rest() {
    let results = doctor::check("http://127.0.0.1:1", &Options::default()).await;
    assert_eq!(with_status(&results, Status::Fail), vec![Check::Challenge]);
    assert_eq!(with_status(&results, Status::Skip).len(), 8);
    let (code, out) = run_bin(&["doctor", "http://127.0.0.1:1"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ MCP endpoint challenge: cannot reach"),
        "{out}"
    );
}

// --- A small, configurable MCP + OAuth server that is not mcpgate. ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    NoResourceMetadata,
    ResourceTrailingSlash,
    IssuerTrailingSlash,
    IssuerOtherHost,
    NoPkceMethods,
    PartialOpenId,
    NoCors,
    Authorize307,
}

struct Fake {
    base: String,
    fault: Fault,
    clients: AtomicU32,
}

const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";

async fn spawn_fake(fault: Fault) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let fake = Arc::new(Fake {
        base: base.clone(),
        fault,
        clients: AtomicU32::new(0),
    });
    let mut api = Router::new()
        .route("/mcp", post(mcp))
        .route("/.well-known/oauth-protected-resource/mcp", get(prm))
        .route("/.well-known/oauth-protected-resource", get(prm))
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/.well-known/openid-configuration", get(openid))
        .route("/.well-known/mcp/manifest.json", get(manifest))
        .route("/register", post(register))
        .route("/token", post(token))
        .with_state(fake.clone());
    if fault != Fault::NoCors {
        api = api.layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("mcp-protocol-version"),
                ])
                .expose_headers([
                    header::WWW_AUTHENTICATE,
                    HeaderName::from_static("mcp-session-id"),
                ]),
        );
    }
    let app = api.merge(
        Router::new()
            .route("/authorize", get(authorize))
            .with_state(fake),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

async fn mcp(State(f): State<Arc<Fake>>) -> Response {
    let challenge = if f.fault == Fault::NoResourceMetadata {
        r#"Bearer realm="mcp""#.to_string()
    } else {
        format!(
            r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp", scope="files""#,
            f.base
        )
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(json!({"error": "unauthorized"})),
    )
        .into_response()
}

async fn prm(State(f): State<Arc<Fake>>) -> Json<Value> {
    let slash = if f.fault == Fault::ResourceTrailingSlash {
        "/"
    } else {
        ""
    };
    Json(json!({
        "resource": format!("{}/mcp{slash}", f.base),
        "authorization_servers": [f.base],
        "scopes_supported": ["files"],
    }))
}

async fn as_metadata(State(f): State<Arc<Fake>>) -> Json<Value> {
    let issuer = match f.fault {
        Fault::IssuerTrailingSlash => format!("{}/", f.base),
        Fault::IssuerOtherHost => f.base.replace("127.0.0.1", "localhost"),
        _ => f.base.clone(),
    };
    let mut m = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/authorize", f.base),
        "token_endpoint": format!("{}/token", f.base),
        "registration_endpoint": format!("{}/register", f.base),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
    });
    if f.fault == Fault::NoPkceMethods {
        m.as_object_mut()
            .unwrap()
            .remove("code_challenge_methods_supported");
    }
    Json(m)
}

async fn openid(State(f): State<Arc<Fake>>) -> Response {
    if f.fault == Fault::PartialOpenId {
        Json(json!({
            "issuer": f.base,
            "authorization_endpoint": format!("{}/authorize", f.base),
            "token_endpoint": format!("{}/token", f.base),
        }))
        .into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn manifest() -> Json<Value> {
    Json(json!({"name": "fake"}))
}

async fn register(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    let n = f.clients.fetch_add(1, Ordering::SeqCst);
    let method = body["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("client_secret_basic");
    let mut resp = json!({
        "client_id": format!("client-{n}"),
        "token_endpoint_auth_method": method,
        "redirect_uris": body["redirect_uris"],
    });
    if method != "none" {
        resp["client_secret"] = json!(format!("secret-{n}"));
    }
    (StatusCode::CREATED, Json(resp)).into_response()
}

async fn token() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant"})),
    )
        .into_response()
}

async fn authorize(
    State(f): State<Arc<Fake>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("redirect_uri").map(String::as_str) != Some(REDIRECT_URI) {
        return (StatusCode::BAD_REQUEST, Html("unknown redirect_uri")).into_response();
    }
    if f.fault == Fault::Authorize307 {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("{}/login", f.base))],
        )
            .into_response();
    }
    Html("<form method=post><input name=username></form>").into_response()
}

/// Runs the doctor (library and binary) against a fake with `fault`;
/// asserts exactly `failing` fail, with `hint` in the first one's hint.
async fn expect_failure(fault: Fault, failing: &[Check], hint: &str) {
    let base = spawn_fake(fault).await;
    let options = Options {
        mcp_path: "/mcp".into(),
        ..Options::default()
    };
    let results = doctor::check(&base, &options).await;
    let all = report(&results);
    assert_eq!(
        with_status(&results, Status::Fail),
        failing,
        "{fault:?}\n{all}"
    );
    assert!(
        with_status(&results, Status::Warn).is_empty(),
        "{fault:?}\n{all}"
    );
    let r = result(&results, failing[0]);
    assert!(
        r.hint.as_deref().is_some_and(|h| h.contains(hint)),
        "{fault:?}: hint {:?} lacks {hint:?}",
        r.hint
    );
    assert!(r.clients.is_some(), "{fault:?}: no client message");

    let mcp_url = format!("{base}/mcp");
    let (code, out) = run_bin(&["doctor", &mcp_url, "--mcp-path", "/mcp"]).await;
    assert_eq!(code, 1, "{fault:?}\n{out}");
    assert!(
        out.contains(&format!("✗ {}:", failing[0].name())),
        "{fault:?}\n{out}"
    );
    assert!(
        out.contains("    fix: ") && out.contains("    clients: "),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} failed", failing.len())),
        "{fault:?}\n{out}"
    );
}

#[tokio::test]
async fn a_correct_server_that_is_not_mcpgate_passes() {
    let base = spawn_fake(Fault::None).await;
    let options = Options {
        mcp_path: "/mcp".into(),
        ..Options::default()
    };
    let results = doctor::check(&base, &options).await;
    assert_eq!(
        with_status(&results, Status::Pass),
        Check::ALL.to_vec(),
        "{}",
        report(&results)
    );
    let (code, out) = run_bin(&["doctor", &base, "--mcp-path", "/mcp"]).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn a_401_without_resource_metadata_fails() {
    expect_failure(
        Fault::NoResourceMetadata,
        &[Check::Challenge],
        "resource_metadata=",
    )
    .await;
}

#[tokio::test]
async fn a_resource_with_a_trailing_slash_fails() {
    expect_failure(
        Fault::ResourceTrailingSlash,
        &[Check::ProtectedResource, Check::Consistency],
        "no trailing slash",
    )
    .await;
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_fails() {
    expect_failure(
        Fault::IssuerTrailingSlash,
        &[Check::AuthorizationServer, Check::Consistency],
        "same string",
    )
    .await;
}

#[tokio::test]
async fn an_issuer_on_another_host_fails() {
    expect_failure(
        Fault::IssuerOtherHost,
        &[Check::AuthorizationServer, Check::Consistency],
        "same string",
    )
    .await;
}

#[tokio::test]
async fn metadata_without_pkce_methods_fails() {
    expect_failure(
        Fault::NoPkceMethods,
        &[Check::AuthorizationServer],
        "\"code_challenge_methods_supported\": [\"S256\"]",
    )
    .await;
}

#[tokio::test]
async fn a_partial_openid_configuration_fails() {
    expect_failure(
        Fault::PartialOpenId,
        &[Check::OpenIdConfiguration],
        "answer 404",
    )
    .await;
}

#[tokio::test]
async fn missing_cors_fails() {
    expect_failure(Fault::NoCors, &[Check::Cors], "Access-Control-Allow-Origin").await;
}

#[tokio::test]
async fn a_307_from_authorize_fails() {
    expect_failure(
        Fault::Authorize307,
        &[Check::Authorize],
        "302 Found or 303 See Other",
    )
    .await;
}
