//! REST tool calls: `GET /tools` and `POST /tools/{name}`.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::mcp_support::{bearer, signed_in};

async fn call(app: &TestApp, token: &str, name: &str, body: Option<&str>) -> reqwest::Response {
    let mut rb = app
        .http
        .post(app.url(&format!("/tools/{name}")))
        .header("authorization", bearer(token));
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    rb.send().await.unwrap()
}

/// Asserts a 400 `invalid_arguments` whose description contains `why`.
async fn expect_invalid(r: reqwest::Response, why: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_arguments", "{body}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains(why), "{d:?} should contain {why:?}");
}

#[tokio::test]
async fn get_tools_lists_the_tools_with_their_input_schemas() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let tools = body["tools"].as_array().unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["current_time", "echo", "whoami"]));
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    let echo = tools.iter().find(|t| t["name"] == "echo").unwrap();
    assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
}

#[tokio::test]
async fn post_whoami_returns_the_token_owner() {
    let app = spawn_app().await;
    let (client_id, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let r = call(&app, &alice, "whoami", Some("{}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["structuredContent"]["user"], "alice");
    assert_eq!(body["structuredContent"]["client_id"], json!(client_id));
    assert_eq!(body["structuredContent"]["scopes"], json!(["mcp"]));
    assert_eq!(body["isError"], json!(false));
    assert!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("You are alice ")
    );

    let r = call(&app, &bob, "whoami", Some("{}")).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["structuredContent"]["user"], "bob");
}

#[tokio::test]
async fn post_echo_returns_the_text() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let r = call(&app, &at, "echo", Some(r#"{"text":"hi"}"#)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["content"], json!([{"type": "text", "text": "hi"}]));
}

#[tokio::test]
async fn an_unknown_tool_is_404_unknown_tool() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    let r = call(&app, &at, "no_such_tool", Some("{}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unknown_tool");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no_such_tool")
    );
}

#[tokio::test]
async fn invalid_arguments_are_400_invalid_arguments_naming_the_problem() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    expect_invalid(
        call(&app, &at, "echo", Some("{}")).await,
        "missing field `text`",
    )
    .await;
    expect_invalid(
        call(&app, &at, "echo", Some(r#"{"text": 5}"#)).await,
        "invalid type",
    )
    .await;
    expect_invalid(
        call(&app, &at, "whoami", Some(r#"{"extra": true}"#)).await,
        "unknown field `extra`",
    )
    .await;
    expect_invalid(
        call(&app, &at, "echo", Some(r#"["hi"]"#)).await,
        "must be a JSON object",
    )
    .await;
    expect_invalid(
        call(&app, &at, "echo", Some(r#""hi""#)).await,
        "must be a JSON object",
    )
    .await;
    expect_invalid(
        call(&app, &at, "echo", Some(r#"{"text":"#)).await,
        "not JSON",
    )
    .await;
}

#[tokio::test]
async fn an_empty_body_counts_as_no_arguments() {
    let app = spawn_app().await;
    let (_, at) = signed_in(&app, "alice").await;
    for body in [None, Some(""), Some("  \n")] {
        let r = call(&app, &at, "whoami", body).await;
        assert_eq!(r.status(), StatusCode::OK, "{body:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["structuredContent"]["user"], "alice");
    }
    // An empty body is `{}`: echo still needs its text.
    expect_invalid(call(&app, &at, "echo", None).await, "missing field `text`").await;
    let r = call(&app, &at, "current_time", None).await;
    assert_eq!(r.status(), StatusCode::OK);
}
