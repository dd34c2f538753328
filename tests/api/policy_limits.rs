//! `[[policy]]` rate limits (a burst, a refusal with a retry hint, then
//! recovery, on MCP and REST), group changes reaching requests, and the
//! groups CLI with the start-up check of rules.

use std::process::{Command, Output, Stdio};

use mcpgate_core::model::GroupSource;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{fixture, user_id};
use crate::helpers::spawn_app_with;
use crate::mcp_support::{McpClient, bearer, signed_in};
use crate::policy_matrix::{matrix_app, matrix_policy};

fn limited_echo(s: &mut mcpgate::config::Settings) {
    s.upstream = vec![fixture("fx", "")];
    s.policy = serde_json::from_value(json!([
        {"effect": "allow", "tools": ["fx_echo"], "rate": "2/min"},
    ]))
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_then_a_refusal_with_a_retry_hint_then_recovery() {
    let app = spawn_app_with(limited_echo).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let mut a = McpClient::new(&app, &alice);
    a.initialize("2025-11-25").await;
    let echo = json!({"text": "hi"});
    for _ in 0..2 {
        let m = a.call_tool("fx_echo", echo.clone()).await;
        assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
    }
    let m = a.call_tool("fx_echo", echo.clone()).await;
    assert_eq!(m["error"]["code"], -32029, "{m}");
    assert_eq!(m["error"]["data"]["retryAfter"], 30, "{m}");
    // Unlimited tools and other users are not affected.
    let m = a.call_tool("fx_add", json!({"a": 1, "b": 2})).await;
    assert!(m["result"].is_object(), "{m}");
    let rest = |token: String| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/tools/fx_echo"))
                .header("authorization", bearer(&token))
                .json(&json!({"text": "hi"}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(rest(bob.clone()).await.status(), StatusCode::OK);
    // REST shares the caller's bucket: 429 with Retry-After.
    let r = rest(alice.clone()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "30");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    // One call refills every 30 s.
    app.clock.advance(30);
    let m = a.call_tool("fx_echo", echo.clone()).await;
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
    let m = a.call_tool("fx_echo", echo.clone()).await;
    assert_eq!(m["error"]["code"], -32029, "{m}");
    app.clock.advance(60);
    assert_eq!(rest(alice).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_changes_reach_requests_once_the_token_is_checked_again() {
    let (app, [_, _, carol]) = matrix_app(matrix_policy).await;
    let mut c = McpClient::new(&app, &carol);
    c.initialize("2025-11-25").await;
    let tools = |m: Value| m["result"]["tools"].as_array().unwrap().len();
    assert_eq!(tools(c.request("tools/list", json!({})).await), 0);
    let id = user_id(&app, "carol").await;
    app.store
        .add_group_member(&id, "admins", &GroupSource::Local, 0)
        .await
        .unwrap();
    // What the token cache's lifetime (or the CLI's announcement) does.
    app.auth.forget_cached_tokens();
    assert!(tools(c.request("tools/list", json!({})).await) > 10);
    app.store
        .remove_group_member(&id, "admins", &GroupSource::Local)
        .await
        .unwrap();
    app.auth.forget_cached_tokens();
    assert_eq!(tools(c.request("tools/list", json!({})).await), 0);
}

// ---- the command line ----

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

fn run(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            c.env_remove(k);
        }
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn groups_are_managed_from_the_command_line_and_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = Some("a long password\n");
    let o = run(
        d,
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--group",
            "ops",
            "--group",
            "dev",
        ],
        pw,
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(
        d,
        &["user", "add", "bob", "--password-stdin", "--group", " bad"],
        pw,
    );
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("group name"), "{}", out(&o));
    let o = run(d, &["user", "add", "bob", "--password-stdin"], pw);
    assert!(o.status.success(), "{}", out(&o));
    let o = run(d, &["user", "group", "add", "BOB", "ops"], None);
    assert!(out(&o).contains("added bob to group ops"), "{}", out(&o));
    let o = run(d, &["user", "group", "remove", "alice", "dev"], None);
    assert!(o.status.success(), "{}", out(&o));
    let o = run(d, &["user", "group", "remove", "alice", "dev"], None);
    assert!(!o.status.success(), "{}", out(&o));
    let o = run(d, &["group", "list"], None);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "dev\t0 members\nops\t2 members\n"
    );

    // A rule naming a group nobody is in stops the start, naming the rule.
    std::fs::write(
        d.join("mcpgate.toml"),
        "[[policy]]\neffect = \"allow\"\ntools = [\"*\"]\ngroups = [\"ops\"]\n\n\
         [[policy]]\neffect = \"allow\"\ntools = [\"*\"]\ngroups = [\"nobody\"]\n",
    )
    .unwrap();
    let o = run(d, &["serve", "--listen", "127.0.0.1:0"], None);
    assert!(!o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("rule #2")
            && text.contains("\"nobody\"")
            && text.contains("(line 6 of mcpgate.toml)"),
        "{text}"
    );
    // A malformed pattern is refused before the database is opened.
    std::fs::write(
        d.join("mcpgate.toml"),
        "[[policy]]\neffect = \"deny\"\ntools = [\"files_**\"]\n",
    )
    .unwrap();
    let o = run(d, &["serve", "--listen", "127.0.0.1:0"], None);
    let text = out(&o);
    assert!(
        !o.status.success()
            && text.contains("rule #1")
            && text.contains("files_**")
            && text.contains("(line 1 of mcpgate.toml)"),
        "{text}"
    );
}
