//! `/healthz` is public but says only `ok` or `degraded` and the version;
//! the upstreams' names, states and errors need the operator token
//! (`GET /healthz?details`, `Authorization: Bearer <token>`), which
//! `mcpgate status` derives from the server key in the database.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{WAIT, fixture, spawn_gateway, wait_for_upstream};
use crate::helpers::TestApp;

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut r = app.http.get(app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("GET");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

fn short(status: &str) -> Value {
    json!({"status": status, "version": env!("CARGO_PKG_VERSION")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_public_healthz_says_only_ok_and_the_version() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    wait_for_upstream(&app, "fx", WAIT, |u| u["state"] == "running").await;
    let (status, body) = get(&app, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), short("ok"));
    assert!(!body.contains("fx"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_details_need_the_operator_token() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    wait_for_upstream(&app, "fx", WAIT, |u| u["state"] == "running").await;
    let token = app.auth.operator_token();
    let wrong = format!("{}x", &token[..token.len() - 1]);
    for (what, t) in [
        ("no token", None),
        ("a wrong token", Some(wrong.as_str())),
        ("an empty token", Some("")),
    ] {
        let (status, body) = get(&app, "/healthz?details", t).await;
        assert_eq!(status, StatusCode::OK, "{what}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            short("ok"),
            "{what}"
        );
    }
    // The token without `?details` gets the short answer too.
    let (_, body) = get(&app, "/healthz", Some(&token)).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), short("ok"));

    let (status, body) = get(&app, "/healthz?details", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["upstreams"][0]["name"], "fx", "{v}");
    assert_eq!(v["upstreams"][0]["state"], "running", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_degraded_server_answers_503_publicly_without_naming_the_upstream_or_its_error() {
    let app = spawn_gateway(vec![
        fixture("fx", ""),
        fixture("broken", "args = [\"--fail-start\"]"),
    ])
    .await;
    let broken = wait_for_upstream(&app, "broken", WAIT, |u| u["state"] == "restarting").await;
    let error = broken["last_error"]
        .as_str()
        .expect("last_error")
        .to_string();
    for path in ["/healthz", "/healthz?details"] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            short("degraded"),
            "{path}"
        );
        assert!(!body.contains("broken") && !body.contains(&error), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcpgate_status_without_the_servers_database_says_the_details_are_withheld() {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    wait_for_upstream(&app, "fx", WAIT, |u| u["state"] == "running").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    cmd.args(["status", "--url", &app.base])
        .current_dir(dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            cmd.env_remove(k);
        }
    }
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("status ends")
        .expect("status runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(stdout.contains("upstream details withheld"), "{stdout}");
    assert!(!stdout.contains("fx"), "{stdout}");
    // It created no database in the working directory.
    assert!(!dir.path().join("mcpgate.db").exists());
}
