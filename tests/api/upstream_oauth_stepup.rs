//! Step-up at an upstream (issue #19; MCP 2025-11-25, "Scope Challenge
//! Handling"): the upstream, a second mcpgate whose `fs` tools need the
//! scope `files:write`, answers a call made with a token of scope `mcp`
//! with `403 insufficient_scope`. The gateway answers the call with a
//! connect link asking for the granted scope plus the one the upstream
//! named; once the user approves it at the upstream, the same call
//! succeeds. Another user's connection is not touched.

use mcpgate::config::scopes::ScopeDecl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::fixture;
use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{bearer, signed_in};
use crate::upstream_oauth::connect_with_link;

/// The upstream: `fs` (the fixture) needs `files:write`; no metadata
/// documents (their URLs must be https), so the gateway registers.
async fn upstream() -> TestApp {
    let b = spawn_app_with(|s| {
        s.client_id_metadata_documents = false;
        s.scope = vec![ScopeDecl {
            name: "files:write".into(),
            description: "Change your files".into(),
        }];
        s.upstream = vec![fixture("fs", "scopes = [\"files:write\"]")];
    })
    .await;
    b.add_user("alice-at-b").await;
    b.add_user("bob-at-b").await;
    b
}

/// The gateway asks the upstream for `mcp` only at first.
async fn gateway(b: &TestApp) -> TestApp {
    let cfg: mcpgate::gateway::config::UpstreamConfig = toml::from_str(&format!(
        "name = \"b\"\nurl = \"{}\"\nauth = \"oauth\"\nisolation = \"per_user\"\noauth_scopes = [\"mcp\"]\n",
        b.resource()
    ))
    .unwrap();
    spawn_app_with(|s| s.upstream = vec![cfg]).await
}

async fn call(a: &TestApp, token: &str, tool: &str, args: Value) -> Value {
    let r = a
        .http
        .post(a.url(&format!("/tools/{tool}")))
        .header("authorization", bearer(token))
        .json(&args)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn text(v: &Value) -> String {
    v["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The link in a result's text.
fn link_in(v: &Value) -> String {
    let t = text(v);
    t.split_whitespace()
        .find(|w| w.contains("/connect/b?ticket="))
        .unwrap_or_else(|| panic!("no link in {v}"))
        .to_string()
}

async fn granted_scope(a: &TestApp, user: &str) -> Option<String> {
    let id = a
        .store
        .user_by_username(user)
        .await
        .unwrap()
        .expect("user")
        .id;
    a.store
        .upstream_token(&id, "b")
        .await
        .unwrap()
        .and_then(|t| t.scope)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_insufficient_scope_is_answered_with_a_step_up_link_and_the_call_then_succeeds()
 {
    let b = upstream().await;
    let a = gateway(&b).await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;
    for (token, user, at_b) in [(&alice, "alice", "alice-at-b"), (&bob, "bob", "bob-at-b")] {
        let v = call(&a, token, "b_connect", json!({})).await;
        connect_with_link(&a, &b, &link_in(&v), user, at_b).await;
        assert_eq!(granted_scope(&a, user).await.as_deref(), Some("mcp"));
    }

    // A tool of the base scope works; the scoped one is refused upstream,
    // and the answer is a step-up link for the granted scope plus the
    // one the upstream named.
    let v = call(&a, &alice, "b_whoami", json!({})).await;
    assert_eq!(v["structuredContent"]["user"], "alice-at-b", "{v}");
    let args = json!({"text": "stepped up"});
    let v = call(&a, &alice, "b_fs_echo", args.clone()).await;
    assert_eq!(v["isError"], true, "{v}");
    assert!(text(&v).contains("files:write mcp"), "{v}");
    let link = link_in(&v);

    // Bob's connection is his own: no step-up for him, and his base
    // scope calls carry on.
    let v = call(&a, &bob, "b_whoami", json!({})).await;
    assert_eq!(v["structuredContent"]["user"], "bob-at-b", "{v}");

    // Alice approves the larger scope at the upstream; the call succeeds.
    let (_, page) = connect_with_link(&a, &b, &link, "alice", "alice-at-b").await;
    assert!(page.contains("Connected to b."), "{page}");
    assert_eq!(
        granted_scope(&a, "alice").await.as_deref(),
        Some("files:write mcp")
    );
    let v = call(&a, &alice, "b_fs_echo", args.clone()).await;
    assert_ne!(v["isError"], true, "{v}");
    assert_eq!(text(&v), "stepped up", "{v}");

    // Bob still has `mcp` only, and gets his own step-up link.
    assert_eq!(granted_scope(&a, "bob").await.as_deref(), Some("mcp"));
    let v = call(&a, &bob, "b_fs_echo", args).await;
    assert_eq!(v["isError"], true, "{v}");
    assert_ne!(link_in(&v), link);
}
