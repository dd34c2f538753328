//! Cross-cutting security properties: body limits, security events in the
//! log under stable names, no secrets in the log, expiry of unused clients.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::helpers::{CHALLENGE, PASSWORD, VERIFIER, query_param, spawn_app, spawn_app_with};

#[tokio::test]
async fn oversized_request_bodies_are_refused() {
    let app = spawn_app().await;
    let big = "a".repeat(mcpgate::http::MAX_BODY_BYTES + 1);
    let r = app
        .http
        .post(app.url("/v1/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .http
        .post(app.url("/v1/oauth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"client_name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn clients_never_used_expire_and_used_ones_stay() {
    let app = spawn_app_with(|s| s.unused_client_ttl = Duration::from_secs(3600)).await;
    app.add_user("u").await;
    let unused = app.register_public("https://unused.example/cb").await;
    let (used, _) = app.full_flow("u").await;
    app.clock.advance(3601);
    let (_, removed) = app.auth.housekeeping().await.unwrap();
    assert_eq!(removed, 1);
    let id = |s: &str| mcpgate_core::domain::ClientId::parse(s).unwrap();
    assert!(app.store.client(&id(&unused)).await.unwrap().is_none());
    assert!(app.store.client(&id(&used)).await.unwrap().is_some());
}

/// Runs the real binary with debug logging, drives a flow with several
/// security failures, and reads its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_failures_are_logged_by_event_name_and_no_secret_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read the log while the server runs: at debug level it writes more than
    // a pipe holds, and a server blocked on a full pipe answers nothing.
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = tokio::spawn(async move {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log).await;
        log
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        let done = line.starts_with("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let port: u16 = banner[0].rsplit(':').next().unwrap().parse().unwrap();
    let admin_pw = banner
        .iter()
        .find(|l| l.contains("shown only now"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();

    let redirect = "http://127.0.0.1:1/cb";
    let reg: Value = http
        .post(format!("{base}/register"))
        .json(&serde_json::json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_string();
    let params = vec![
        ("response_type".to_string(), "code".to_string()),
        ("client_id".into(), client_id.clone()),
        ("redirect_uri".into(), redirect.into()),
        ("state".into(), "s".into()),
        ("code_challenge".into(), CHALLENGE.into()),
        ("code_challenge_method".into(), "S256".into()),
        ("resource".into(), format!("{issuer}/v1/ai/mcp")),
    ];
    let b = crate::helpers::Browser {
        http: browser,
        base: base.clone(),
    };
    // A redirect URI mismatch.
    let mut bad = params.clone();
    bad[2].1 = "https://evil.example/cb".into();
    assert_eq!(
        b.open_authorize(&bad).await.status(),
        StatusCode::BAD_REQUEST
    );
    // A failed sign-in.
    let html = b.open_authorize(&params).await.text().await.unwrap();
    b.submit_login(&html, "admin", "not the password").await;
    // A successful flow.
    let loc = b.sign_in_and_approve(&params, "admin", &admin_pw).await;
    let code = query_param(&loc, "code").unwrap();
    let form = |verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("redirect_uri", redirect.to_string()),
            ("client_id", client_id.clone()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let t: Value = http
        .post(format!("{base}/token"))
        .form(&form(VERIFIER))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    // Code replay.
    http.post(format!("{base}/token"))
        .form(&form(VERIFIER))
        .send()
        .await
        .unwrap();
    // A PKCE mismatch on a fresh code.
    let loc = b.sign_in_and_approve(&params, "admin", &admin_pw).await;
    let code2 = query_param(&loc, "code").unwrap();
    let r = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", redirect),
            ("client_id", &client_id),
            ("code_verifier", &"x".repeat(43)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let log = log_reader.await.unwrap();

    for event in [
        "oauth.redirect_uri_mismatch",
        "auth.login_failed",
        "oauth.code_replay",
        "oauth.grant_revoked",
        "oauth.pkce_mismatch",
        "oauth.client_registered",
    ] {
        assert!(log.contains(event), "the log has no {event} event:\n{log}");
    }
    for secret in [
        &admin_pw,
        &code,
        &code2,
        &access,
        &refresh,
        &"not the password".to_string(),
        &VERIFIER.to_string(),
    ] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {secret}"
        );
    }
    assert!(!log.contains(PASSWORD));
}
