//! `[[policy]]` on every transport (docs/policy.md): users in different
//! groups, deny over allow, globs, the default deny. Each list method
//! shows only what the caller may use, and a denied tool, prompt or
//! resource answers byte for byte like an unknown one (with the name
//! swapped), on Streamable HTTP (session), stateless 2026-07-28, legacy
//! SSE and REST.

use mcpgate::config::Settings;
use mcpgate_core::model::GroupSource;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{fixture, legacy_post, legacy_reply, legacy_session, user_id};
use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{McpClient, SseReader, bearer, response_message, stateless_post};

/// The rules of the matrix, default deny:
/// - readers may use `whoami`, `fx_e*`, `fx_add`, the prompt `fx_greet`
///   and `fixture://static`, but a deny takes `fx_a*` away again;
/// - admins may use everything, except that bob may not read items.
pub fn matrix_policy(s: &mut Settings) {
    let rules: Vec<mcpgate_core::policy::RuleConfig> = serde_json::from_value(json!([
        {"effect": "allow", "groups": ["readers"], "tools": ["whoami", "fx_e*", "fx_add"],
         "prompts": ["fx_greet"], "resources": ["fixture://static"]},
        {"effect": "deny", "groups": ["readers"], "tools": ["fx_a*"]},
        {"effect": "allow", "groups": ["admins"], "tools": ["*"], "prompts": ["*"], "resources": ["*"]},
        {"effect": "deny", "users": ["bob"], "resources": ["fixture://item/*"]},
    ]))
    .unwrap();
    s.policy = rules;
    s.default_policy = mcpgate_core::policy::DefaultPolicy::Deny;
}

/// A gateway with the fixture `fx`; alice (readers), bob (admins) and
/// carol (no group) signed in; the policy in force. Returns their tokens.
pub async fn matrix_app(tweak: fn(&mut Settings)) -> (TestApp, [String; 3]) {
    let app = spawn_app_with(|s| s.upstream = vec![fixture("fx", "")]).await;
    for user in ["alice", "bob", "carol"] {
        app.add_user(user).await;
    }
    for (user, group) in [("alice", "readers"), ("bob", "admins")] {
        let id = user_id(&app, user).await;
        app.store
            .add_group_member(&id, group, &GroupSource::Local, 0)
            .await
            .unwrap();
    }
    // Groups named by rules must exist when the server starts.
    let app = app
        .restart_with(|s| {
            s.upstream = vec![fixture("fx", "")];
            tweak(s);
        })
        .await;
    let mut tokens = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let (_, t) = app.full_flow(user).await;
        tokens.push(t["access_token"].as_str().unwrap().to_string());
    }
    let tokens: [String; 3] = tokens.try_into().unwrap();
    (app, tokens)
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Session,
    Stateless,
    LegacySse,
}

/// One MCP connection of a caller on a transport.
struct Conn<'a> {
    app: &'a TestApp,
    token: String,
    transport: Transport,
    session: Option<McpClient>,
    legacy: Option<(SseReader, String)>,
    next_id: i64,
}

impl<'a> Conn<'a> {
    async fn open(app: &'a TestApp, token: &str, transport: Transport) -> Self {
        let mut c = Conn {
            app,
            token: token.to_string(),
            transport,
            session: None,
            legacy: None,
            next_id: 100,
        };
        match transport {
            Transport::Session => {
                let mut m = McpClient::new(app, token);
                m.initialize("2025-11-25").await;
                c.session = Some(m);
            }
            Transport::LegacySse => c.legacy = Some(legacy_session(app, token).await),
            Transport::Stateless => {}
        }
        c
    }

    /// The JSON-RPC response to `method` with `params`, without its id.
    async fn rpc(&mut self, method: &str, params: Value) -> Value {
        self.rpc_named(method, params, None).await
    }

    /// As [`Self::rpc`]; on the stateless transport `Mcp-Name` is `header`
    /// (else the body's name).
    async fn rpc_named(&mut self, method: &str, mut params: Value, header: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut m = match self.transport {
            Transport::Session => {
                let s = self.session.as_mut().unwrap();
                s.request(method, params).await
            }
            Transport::LegacySse => {
                let (events, endpoint) = self.legacy.as_mut().unwrap();
                let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
                legacy_post(self.app, endpoint, &self.token, &body).await;
                legacy_reply(events, id).await
            }
            Transport::Stateless => {
                params["_meta"] = json!({
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                });
                let name = params
                    .get("name")
                    .or_else(|| params.get("uri"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let name = header.map(str::to_string).or(name);
                let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
                let r = stateless_post(self.app, &self.token, method, name.as_deref())
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                response_message(r, id).await
            }
        };
        m.as_object_mut().unwrap().remove("id");
        m
    }

    async fn names(&mut self, method: &str, field: &str, key: &str) -> Vec<String> {
        let m = self.rpc(method, json!({})).await;
        let mut names: Vec<String> = m["result"][field]
            .as_array()
            .unwrap_or_else(|| panic!("{method}: {m}"))
            .iter()
            .map(|i| i[key].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }
}

fn all_fx_tools() -> Vec<String> {
    let mut v: Vec<String> = [
        "whoami",
        "echo",
        "current_time",
        "fx_echo",
        "fx_add",
        "fx_whoami_env",
        "fx_slow",
        "fx_crash",
        "fx_hang",
        "fx_sample",
        "fx_elicit",
        "fx_roots",
        "fx_log",
        "fx_change_tools",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.sort();
    v
}

/// The answer with `name` replaced by `X`: a denied and an unknown name
/// must then be the same bytes.
fn swapped(v: &Value, name: &str) -> String {
    v.to_string().replace(name, "X")
}

fn assert_same_as_unknown(denied: &Value, denied_name: &str, unknown: &Value, unknown_name: &str) {
    assert_eq!(
        swapped(denied, denied_name),
        swapped(unknown, unknown_name),
        "a denied item must answer like an unknown one"
    );
}

async fn check_transport(app: &TestApp, tokens: &[String; 3], t: Transport) {
    let [alice, bob, carol] = tokens;
    let mut a = Conn::open(app, alice, t).await;
    let mut b = Conn::open(app, bob, t).await;
    let mut c = Conn::open(app, carol, t).await;

    // ---- lists ----
    assert_eq!(
        a.names("tools/list", "tools", "name").await,
        ["fx_echo", "fx_elicit", "whoami"],
        "{t:?}: readers get their globs, minus the denied fx_a*"
    );
    let mut bob_tools = all_fx_tools();
    bob_tools.sort();
    let listed = b.names("tools/list", "tools", "name").await;
    for tool in ["fx_add", "echo", "fx_change_tools"] {
        assert!(listed.contains(&tool.to_string()), "{t:?}: {listed:?}");
    }
    assert!(
        c.names("tools/list", "tools", "name").await.is_empty(),
        "{t:?}: default deny"
    );
    assert_eq!(
        a.names("prompts/list", "prompts", "name").await,
        ["fx_greet"]
    );
    assert_eq!(
        b.names("prompts/list", "prompts", "name").await,
        ["fx_greet"]
    );
    assert!(c.names("prompts/list", "prompts", "name").await.is_empty());
    assert_eq!(
        a.names("resources/list", "resources", "uri").await,
        ["fixture://static"]
    );
    assert_eq!(
        b.names("resources/list", "resources", "uri").await,
        ["fixture://static"]
    );
    assert!(
        c.names("resources/list", "resources", "uri")
            .await
            .is_empty()
    );
    const TEMPLATES: [&str; 3] = [
        "resources/templates/list",
        "resourceTemplates",
        "uriTemplate",
    ];
    let [m, f, k] = TEMPLATES;
    assert!(a.names(m, f, k).await.is_empty(), "{t:?}");
    assert!(
        b.names(m, f, k).await.is_empty(),
        "{t:?}: bob's deny of items hides the template"
    );
    assert!(c.names(m, f, k).await.is_empty());

    // ---- tool calls ----
    let ok = a
        .rpc(
            "tools/call",
            json!({"name": "fx_echo", "arguments": {"text": "hi"}}),
        )
        .await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi", "{t:?}: {ok}");
    let ok = b
        .rpc(
            "tools/call",
            json!({"name": "fx_add", "arguments": {"a": 2, "b": 3}}),
        )
        .await;
    assert!(ok["result"].is_object(), "{t:?}: {ok}");
    for (who, denied) in [(0, "fx_add"), (0, "echo"), (2, "whoami")] {
        let conn = if who == 0 { &mut a } else { &mut c };
        let d = conn
            .rpc(
                "tools/call",
                json!({"name": denied, "arguments": {"a": 1, "b": 2}}),
            )
            .await;
        let u = conn
            .rpc(
                "tools/call",
                json!({"name": "fx_nope", "arguments": {"a": 1, "b": 2}}),
            )
            .await;
        assert!(d["error"].is_object(), "{t:?}: {d}");
        assert_same_as_unknown(&d, denied, &u, "fx_nope");
    }

    // ---- prompts ----
    let ok = a
        .rpc(
            "prompts/get",
            json!({"name": "fx_greet", "arguments": {"name": "Ann"}}),
        )
        .await;
    assert!(ok["result"]["messages"].is_array(), "{t:?}: {ok}");
    let d = c
        .rpc(
            "prompts/get",
            json!({"name": "fx_greet", "arguments": {"name": "Ann"}}),
        )
        .await;
    let u = c
        .rpc(
            "prompts/get",
            json!({"name": "fx_nope", "arguments": {"name": "Ann"}}),
        )
        .await;
    assert!(d["error"].is_object(), "{t:?}: {d}");
    assert_same_as_unknown(&d, "fx_greet", &u, "fx_nope");

    // ---- resources ----
    let ok = a
        .rpc("resources/read", json!({"uri": "fixture://static"}))
        .await;
    assert_eq!(
        ok["result"]["contents"][0]["text"], "static text",
        "{t:?}: {ok}"
    );
    let d = b
        .rpc("resources/read", json!({"uri": "fixture://item/7"}))
        .await;
    let u = b
        .rpc("resources/read", json!({"uri": "fixture://nope/7"}))
        .await;
    assert!(d["error"].is_object(), "{t:?}: {d}");
    assert_same_as_unknown(&d, "fixture://item/7", &u, "fixture://nope/7");
    let d = c
        .rpc("resources/read", json!({"uri": "fixture://static"}))
        .await;
    let u = c
        .rpc("resources/read", json!({"uri": "fixture://nope"}))
        .await;
    assert_same_as_unknown(&d, "fixture://static", &u, "fixture://nope");

    // ---- completions ----
    let complete = |name: &str| json!({"ref": {"type": "ref/prompt", "name": name}, "argument": {"name": "name", "value": "a"}});
    let ok = a.rpc("completion/complete", complete("fx_greet")).await;
    assert!(
        !ok["result"]["completion"]["values"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{t:?}: {ok}"
    );
    let d = c.rpc("completion/complete", complete("fx_greet")).await;
    let u = c.rpc("completion/complete", complete("fx_nope")).await;
    assert_eq!(d["result"]["completion"]["values"], json!([]), "{t:?}: {d}");
    assert_same_as_unknown(&d, "fx_greet", &u, "fx_nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_matrix_on_streamable_http_sessions() {
    let (app, tokens) = matrix_app(matrix_policy).await;
    check_transport(&app, &tokens, Transport::Session).await;
    // Subscriptions follow the same rule as reads.
    let mut b = Conn::open(&app, &tokens[1], Transport::Session).await;
    let ok = b
        .rpc("resources/subscribe", json!({"uri": "fixture://static"}))
        .await;
    assert!(ok["result"].is_object(), "{ok}");
    let d = b
        .rpc("resources/subscribe", json!({"uri": "fixture://item/1"}))
        .await;
    assert_eq!(d["error"]["code"], -32002, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_matrix_on_stateless_requests() {
    let (app, tokens) = matrix_app(matrix_policy).await;
    check_transport(&app, &tokens, Transport::Stateless).await;
    // The decision reads the body's name, never `Mcp-Name`.
    let mut a = Conn::open(&app, &tokens[0], Transport::Stateless).await;
    let m = a
        .rpc_named(
            "tools/call",
            json!({"name": "fx_add", "arguments": {"a": 1, "b": 2}}),
            Some("fx_echo"),
        )
        .await;
    assert!(m["error"].is_object(), "{m}");
    assert!(!m.to_string().contains("\"3\""), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_matrix_on_legacy_sse() {
    let (app, tokens) = matrix_app(matrix_policy).await;
    check_transport(&app, &tokens, Transport::LegacySse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_matrix_on_rest() {
    let (app, [alice, bob, carol]) = matrix_app(matrix_policy).await;
    let list = |token: String| {
        let app = &app;
        async move {
            let r: Value = app
                .http
                .get(app.url("/tools"))
                .header("authorization", bearer(&token))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut names: Vec<String> = r["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        list(alice.clone()).await,
        ["fx_echo", "fx_elicit", "whoami"]
    );
    assert!(list(bob.clone()).await.contains(&"fx_add".to_string()));
    assert!(list(carol.clone()).await.is_empty());
    let call = |token: String, name: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url(&format!("/tools/{name}")))
                .header("authorization", bearer(&token))
                .json(&json!({"a": 1, "b": 2}))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, body) = call(bob.clone(), "fx_add").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for (token, denied) in [
        (alice.clone(), "fx_add"),
        (alice.clone(), "echo"),
        (carol.clone(), "whoami"),
    ] {
        let (sd, d) = call(token.clone(), denied).await;
        let (su, u) = call(token, "fx_nope").await;
        assert_eq!(sd, StatusCode::NOT_FOUND, "{d}");
        assert_eq!(
            (sd, d.replace(denied, "X")),
            (su, u.replace("fx_nope", "X"))
        );
    }
}
