//! Step-up authorization (MCP 2025-11-25, "Scope Challenge Handling"):
//! declared scopes in both metadata documents, `scopes` on an
//! `[[upstream]]`, HTTP 403 `insufficient_scope` naming the token's scopes
//! plus the missing ones on every transport (Streamable HTTP in a session
//! and stateless 2026-07-28, legacy SSE, REST), success with the scope,
//! incremental consent, and per-user isolation of grants.

use mcpgate::config::scopes::ScopeDecl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{fixture, legacy_reply, legacy_session};
use crate::helpers::{PASSWORD, TestApp, VERIFIER, location, query_param, spawn_app_with};
use crate::mcp_support::{
    McpClient, bearer, insert_token, response_message, stateless_post, www_authenticate,
};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

/// `fs` needs `files:write`; `open` needs only the base scope.
async fn spawn() -> TestApp {
    let app = spawn_app_with(|s| {
        s.scope = vec![ScopeDecl {
            name: "files:write".into(),
            description: "Change your files".into(),
        }];
        s.upstream = vec![
            fixture("fs", "scopes = [\"files:write\"]"),
            fixture("open", ""),
        ];
    })
    .await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    app
}

/// Asserts a 403 step-up challenge for `scope`, naming the metadata of the
/// main resource (or the SSE one).
fn assert_step_up(app: &TestApp, r: &reqwest::Response, scope: &str, sse: bool) {
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let h = www_authenticate(r);
    assert!(h.starts_with("Bearer error=\"insufficient_scope\""), "{h}");
    assert!(h.contains(&format!("scope=\"{scope}\"")), "{h}");
    let metadata = if sse {
        &app.urls.sse_resource_metadata
    } else {
        &app.urls.resource_metadata
    };
    assert!(
        h.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{h}"
    );
}

fn echo(name: &str) -> Value {
    json!({"name": name, "arguments": {"text": "hi"}})
}

#[tokio::test]
async fn declared_scopes_are_in_both_metadata_documents() {
    let app = spawn().await;
    let get = |url: String| {
        let http = app.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let asm = get(app.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(
        asm["scopes_supported"],
        json!(["mcp", "files:write", "offline_access"])
    );
    for prm in [&app.urls.resource_metadata, &app.urls.sse_resource_metadata] {
        let prm = get(prm.replace(&app.urls.issuer, &app.base)).await;
        assert_eq!(prm["scopes_supported"], json!(["mcp", "files:write"]));
    }
}

#[tokio::test]
async fn streamable_http_sessions_get_403_for_a_scoped_upstream_and_pass_with_the_scope() {
    let app = spawn().await;
    let client = app.register_public(REDIRECT).await;
    let base = insert_token(&app, "alice", &client, "mcp", &app.resource()).await;
    let mut c = McpClient::new(&app, &base);
    c.initialize("2025-11-25").await;
    // Listed, so that the client can step up when it calls it.
    let list = c.request("tools/list", json!({})).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"fs_echo") && names.contains(&"open_echo"),
        "{names:?}"
    );
    // Called: 403 naming what the token has plus what it lacks.
    for (method, params) in [
        ("tools/call", echo("fs_echo")),
        (
            "prompts/get",
            json!({"name": "fs_greet", "arguments": {"name": "x"}}),
        ),
        ("resources/read", json!({"uri": "fixture://static"})),
        ("resources/subscribe", json!({"uri": "fixture://static"})),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "fs_greet"}, "argument": {"name": "name", "value": "a"}}),
        ),
    ] {
        let (r, _) = c.send(method, params).await;
        assert_step_up(&app, &r, "files:write mcp", false);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope", "{method}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("files:write"),
            "{body}"
        );
    }
    // The rest needs only the base scope; the session goes on.
    for tool in ["open_echo", "echo"] {
        let m = c.call_tool(tool, json!({"text": "hi"})).await;
        assert_eq!(m["result"]["content"][0]["text"], "hi", "{tool}: {m}");
    }
    // A token with the scope passes.
    let full = insert_token(&app, "alice", &client, "mcp files:write", &app.resource()).await;
    let mut c = McpClient::new(&app, &full);
    c.initialize("2025-11-25").await;
    let m = c.call_tool("fs_echo", json!({"text": "hi"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
    let m = c
        .request(
            "prompts/get",
            json!({"name": "fs_greet", "arguments": {"name": "x"}}),
        )
        .await;
    assert!(m["result"]["messages"].is_array(), "{m}");
    let m = c
        .request("resources/read", json!({"uri": "fixture://static"}))
        .await;
    assert!(m["result"]["contents"].is_array(), "{m}");
    let m = c
        .request(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "fs_greet"}, "argument": {"name": "name", "value": "a"}}),
        )
        .await;
    assert!(m["result"]["completion"]["values"].is_array(), "{m}");
}

#[tokio::test]
async fn the_challenge_keeps_the_tokens_other_scopes_and_never_names_offline_access() {
    let app = spawn_app_with(|s| {
        s.scopes = vec!["mcp".into(), "crm".into()];
        s.scope = vec![ScopeDecl {
            name: "files:write".into(),
            description: "Change your files".into(),
        }];
        s.upstream = vec![fixture("fs", "scopes = [\"files:write\"]")];
    })
    .await;
    app.add_user("alice").await;
    let client = app.register_public(REDIRECT).await;
    let token = insert_token(
        &app,
        "alice",
        &client,
        "mcp crm offline_access",
        &app.resource(),
    )
    .await;
    let r = stateless(&app, &token, "fs_echo").await;
    assert_step_up(&app, &r, "crm files:write mcp", false);
    assert!(!www_authenticate(&r).contains("offline_access"));
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

async fn stateless(app: &TestApp, token: &str, tool: &str) -> reqwest::Response {
    let mut params = echo(tool);
    params["_meta"] = meta();
    stateless_post(app, token, "tools/call", Some(tool))
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn stateless_2026_requests_get_403_and_pass_with_the_scope() {
    let app = spawn().await;
    let client = app.register_public(REDIRECT).await;
    let base = insert_token(&app, "alice", &client, "mcp", &app.resource()).await;
    let r = stateless(&app, &base, "fs_echo").await;
    assert_step_up(&app, &r, "files:write mcp", false);
    let r = stateless(&app, &base, "open_echo").await;
    assert_eq!(r.status(), StatusCode::OK);
    let full = insert_token(&app, "alice", &client, "mcp files:write", &app.resource()).await;
    let r = stateless(&app, &full, "fs_echo").await;
    assert_eq!(r.status(), StatusCode::OK);
    let m = response_message(r, 7).await;
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
}

#[tokio::test]
async fn legacy_sse_posts_get_403_naming_the_sse_resource_and_pass_with_the_scope() {
    let app = spawn().await;
    let client = app.register_public(REDIRECT).await;
    let sse_resource = format!("{}/sse", app.urls.issuer);
    let base = insert_token(&app, "alice", &client, "mcp", &sse_resource).await;
    let (mut events, endpoint) = legacy_session(&app, &base).await;
    let post = |token: &str, id: i64, tool: &str| {
        app.http
            .post(app.url(&endpoint))
            .header("authorization", bearer(token))
            .header("content-type", "application/json")
            .body(
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": echo(tool)})
                    .to_string(),
            )
            .send()
    };
    let r = post(&base, 2, "fs_echo").await.unwrap();
    assert_step_up(&app, &r, "files:write mcp", true);
    // Nothing went to the stream: the next reply there is the next call's.
    let r = post(&base, 3, "open_echo").await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let m = legacy_reply(&mut events, 3).await;
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
    let full = insert_token(&app, "alice", &client, "mcp files:write", &sse_resource).await;
    let (mut events, endpoint) = legacy_session(&app, &full).await;
    let r = app
        .http
        .post(app.url(&endpoint))
        .header("authorization", bearer(&full))
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": echo("fs_echo")})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let m = legacy_reply(&mut events, 2).await;
    assert_eq!(m["result"]["content"][0]["text"], "hi", "{m}");
}

#[tokio::test]
async fn rest_calls_get_403_and_pass_with_the_scope() {
    let app = spawn().await;
    let client = app.register_public(REDIRECT).await;
    let call = |token: String, tool: &'static str| {
        app.http
            .post(app.url(&format!("/tools/{tool}")))
            .header("authorization", bearer(&token))
            .json(&json!({"text": "hi"}))
            .send()
    };
    let base = insert_token(&app, "alice", &client, "mcp", &app.resource()).await;
    let r = app
        .http
        .get(app.url("/tools"))
        .header("authorization", bearer(&base))
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert!(
        list["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "fs_echo"),
        "{list}"
    );
    let r = call(base.clone(), "fs_echo").await.unwrap();
    assert_step_up(&app, &r, "files:write mcp", false);
    let r = call(base, "open_echo").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let full = insert_token(&app, "alice", &client, "mcp files:write", &app.resource()).await;
    let r = call(full, "fs_echo").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "hi", "{body}");
}

/// The authorization request of `client` for `scope`.
fn params(app: &TestApp, client: &str, scope: &str) -> Vec<(String, String)> {
    let mut p = app.auth_params(client, REDIRECT);
    for (k, v) in p.iter_mut() {
        if k == "scope" {
            *v = scope.to_string();
        }
    }
    p
}

/// Exchanges a code; returns the token response.
async fn redeem(app: &TestApp, client: &str, code: &str) -> Value {
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client),
            ("code_verifier", VERIFIER),
            ("resource", &app.resource()),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The texts of `<li>` items of the list with this class.
fn list_items(html: &str, class: &str) -> Vec<String> {
    let Some((_, rest)) = html.split_once(&format!("<ul class=\"{class}\">")) else {
        return Vec::new();
    };
    let list = rest.split_once("</ul>").unwrap().0;
    list.split("<li>")
        .skip(1)
        .map(|li| li.split_once("</li>").unwrap().0.trim().to_string())
        .collect()
}

#[tokio::test]
async fn incremental_consent_shows_only_the_new_scopes_and_the_token_carries_the_union() {
    let app = spawn().await;
    let client = app.register_public(REDIRECT).await;
    let browser = app.browser();
    // First: the base scope.
    let loc = browser
        .sign_in_and_approve(&params(&app, &client, "mcp"), "alice", PASSWORD)
        .await;
    let t = redeem(&app, &client, &query_param(&loc, "code").unwrap()).await;
    assert_eq!(t["scope"], "mcp", "{t}");
    // Step-up: the page lists files:write as new, mcp as already allowed.
    let r = browser
        .open_authorize(&params(&app, &client, "mcp files:write"))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the consent page is shown again"
    );
    let html = r.text().await.unwrap();
    assert_eq!(
        list_items(&html, "scopes"),
        vec!["<code>files:write</code> Change your files"],
        "{html}"
    );
    let granted = list_items(&html, "scopes-granted");
    assert_eq!(granted.len(), 1, "{html}");
    assert!(granted[0].starts_with("<code>mcp</code>"), "{html}");
    assert!(html.contains("It will also be able to"), "{html}");
    let r = browser.submit_consent(&html, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let t = redeem(&app, &client, &query_param(&location(&r), "code").unwrap()).await;
    assert_eq!(t["scope"], "files:write mcp", "{t}");
    let at = t["access_token"].as_str().unwrap();
    let r = app
        .http
        .post(app.url("/tools/fs_echo"))
        .header("authorization", bearer(at))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Asked again: remembered, no page.
    let r = browser
        .open_authorize(&params(&app, &client, "mcp files:write"))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    // Asking for the base scope again gives a token with the base scope
    // only: a token carries what was asked for, not all that was granted.
    let r = browser.open_authorize(&params(&app, &client, "mcp")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let t = redeem(&app, &client, &query_param(&location(&r), "code").unwrap()).await;
    assert_eq!(t["scope"], "mcp", "{t}");
}

#[tokio::test]
async fn one_users_broader_grant_never_widens_another_users_token() {
    let app = spawn().await;
    let client = app.register_public(REDIRECT).await;
    // Alice steps up on this client.
    let alice = app.browser();
    let loc = alice
        .sign_in_and_approve(&params(&app, &client, "mcp files:write"), "alice", PASSWORD)
        .await;
    let t = redeem(&app, &client, &query_param(&loc, "code").unwrap()).await;
    assert_eq!(t["scope"], "files:write mcp");
    let alice_token = t["access_token"].as_str().unwrap().to_string();
    // Bob, same client, asks for the base scope: his token has only that.
    let bob = app.browser();
    let loc = bob
        .sign_in_and_approve(&params(&app, &client, "mcp"), "bob", PASSWORD)
        .await;
    let t = redeem(&app, &client, &query_param(&loc, "code").unwrap()).await;
    assert_eq!(t["scope"], "mcp", "{t}");
    let bob_token = t["access_token"].as_str().unwrap().to_string();
    let r = stateless(&app, &bob_token, "fs_echo").await;
    assert_step_up(&app, &r, "files:write mcp", false);
    let r = stateless(&app, &alice_token, "fs_echo").await;
    assert_eq!(r.status(), StatusCode::OK);
    // Bob asking for files:write is asked himself: Alice's consent is hers.
    let r = bob
        .open_authorize(&params(&app, &client, "mcp files:write"))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "Bob gets a consent page");
    let html = r.text().await.unwrap();
    assert!(html.contains("<strong>bob</strong>"), "{html}");
    assert_eq!(
        list_items(&html, "scopes"),
        vec!["<code>files:write</code> Change your files"]
    );
    // He denies: his token stays without the scope.
    let r = bob.submit_consent(&html, "deny").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("access_denied")
    );
    let r = stateless(&app, &bob_token, "fs_echo").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // And an MCP session of Bob's is challenged the same way.
    let mut c = McpClient::new(&app, &bob_token);
    c.initialize("2025-11-25").await;
    let (r, _) = c.send("tools/call", echo("fs_echo")).await;
    assert_step_up(&app, &r, "files:write mcp", false);
}

/// `[[policy]]` rules with `scopes` add to what a call needs, for the
/// callers the rule applies to: here `open_echo` (an upstream without
/// scopes) needs `files:write` for alice (rule 1), nothing more for bob
/// (rule 2, no scopes). Enforced as the upstream scopes are: a 403 step-up
/// on the REST route and on stateless 2026-07-28 requests.
#[tokio::test]
async fn policy_rule_scopes_are_required_for_the_callers_the_rule_covers() {
    use mcpgate_core::policy::{Effect, RuleConfig};
    let app = spawn_app_with(|s| {
        s.scope = vec![ScopeDecl {
            name: "files:write".into(),
            description: "Change your files".into(),
        }];
        s.upstream = vec![fixture("open", "")];
        s.policy = vec![
            RuleConfig {
                effect: Some(Effect::Allow),
                tools: vec!["open_*".into()],
                users: vec!["alice".into()],
                scopes: vec!["files:write".into()],
                ..Default::default()
            },
            RuleConfig {
                effect: Some(Effect::Allow),
                tools: vec!["open_*".into()],
                users: vec!["bob".into()],
                ..Default::default()
            },
        ];
    })
    .await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let client = app.register_public(REDIRECT).await;
    let rest = |token: String| {
        app.http
            .post(app.url("/tools/open_echo"))
            .header("authorization", bearer(&token))
            .json(&json!({"text": "hi"}))
            .send()
    };
    let alice = insert_token(&app, "alice", &client, "mcp", &app.resource()).await;
    let r = rest(alice.clone()).await.unwrap();
    assert_step_up(&app, &r, "files:write mcp", false);
    let r = stateless(&app, &alice, "open_echo").await;
    assert_step_up(&app, &r, "files:write mcp", false);
    // The built-in tools are not covered by the rule.
    let r = app
        .http
        .post(app.url("/tools/whoami"))
        .header("authorization", bearer(&alice))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let alice_full = insert_token(&app, "alice", &client, "mcp files:write", &app.resource()).await;
    let r = rest(alice_full).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let bob = insert_token(&app, "bob", &client, "mcp", &app.resource()).await;
    let r = rest(bob).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "bob's rule needs no scope");
}
