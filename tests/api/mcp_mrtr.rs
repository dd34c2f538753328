//! Multi-round-trip requests (2026-07-28, SEP-2322) through the gateway: a
//! stateless `tools/call` whose 2025-revision upstream asks the client gets
//! an `InputRequiredResult`; the retry with `inputResponses` and the
//! `requestState` answers the waiting upstream. The state is signed, bound
//! to the user and the request, single-use and short-lived; undeclared
//! client capabilities give `-32021` (HTTP 400).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::{fixture, spawn_gateway};
use crate::helpers::TestApp;
use crate::mcp_support::{signed_in, stateless_post};

const V: &str = "2026-07-28";

fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

fn all_capabilities() -> Value {
    json!({"elicitation": {}, "sampling": {}, "roots": {}})
}

/// A gateway with the plain fixture (`fx_*`) and the conformance fixture
/// (no prefix).
async fn gateway() -> TestApp {
    spawn_gateway(vec![
        fixture("fx", ""),
        fixture("conf", "prefix = \"\"\nargs = [\"--conformance\"]"),
    ])
    .await
}

/// The JSON-RPC message in a JSON or SSE body.
fn message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {body:?}"))
}

/// A stateless `tools/call` of `name` with `params` merged in; the HTTP
/// status and the JSON-RPC message.
async fn call(
    app: &TestApp,
    token: &str,
    name: &str,
    args: Value,
    extra: Value,
) -> (StatusCode, Value) {
    let mut params = json!({"name": name, "arguments": args, "_meta": meta(all_capabilities())});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let r = stateless_post(app, token, "tools/call", Some(name))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, message(&r.text().await.expect("body")))
}

fn text(m: &Value) -> String {
    m["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {m}"))
        .to_string()
}

fn answer(text: &str) -> Value {
    json!({"action": "accept", "content": {"answer": text}})
}

/// Calls `fx_elicit` with `question`; returns the InputRequiredResult's
/// only key and its state.
async fn ask(app: &TestApp, token: &str, question: &str) -> (String, String) {
    let (status, m) = call(
        app,
        token,
        "fx_elicit",
        json!({"message": question}),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = &m["result"];
    assert_eq!(r["resultType"], "input_required", "{m}");
    let requests = r["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{m}");
    let (key, request) = requests.iter().next().unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["message"], question);
    (
        key.clone(),
        r["requestState"]
            .as_str()
            .expect("requestState")
            .to_string(),
    )
}

async fn retry(
    app: &TestApp,
    token: &str,
    question: &str,
    key: &str,
    reply: Value,
    state: &str,
) -> (StatusCode, Value) {
    call(
        app,
        token,
        "fx_elicit",
        json!({"message": question}),
        json!({"inputResponses": {key: reply}, "requestState": state}),
    )
    .await
}

#[tokio::test]
async fn an_upstream_elicitation_becomes_an_input_required_result_and_the_retry_answers_it() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (key, state) = ask(&app, &token, "Your name?").await;
    let (status, m) = retry(&app, &token, "Your name?", &key, answer("Alice"), &state).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(m["result"]["resultType"], "complete", "{m}");
    // The upstream itself reports the answer it received.
    assert_eq!(text(&m), "elicited: accept Alice");
}

#[tokio::test]
async fn a_call_may_take_several_rounds_each_with_a_new_state() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let name = "test_input_required_result_multi_round";
    let (_, m1) = call(&app, &token, name, json!({}), json!({})).await;
    let s1 = m1["result"]["requestState"].as_str().unwrap().to_string();
    assert!(m1["result"]["inputRequests"]["step1"].is_object(), "{m1}");
    let (_, m2) = call(&app, &token, name, json!({}),
        json!({"inputResponses": {"step1": {"action": "accept", "content": {"name": "Alice"}}}, "requestState": s1})).await;
    assert_eq!(m2["result"]["resultType"], "input_required", "{m2}");
    assert!(m2["result"]["inputRequests"]["step2"].is_object(), "{m2}");
    let s2 = m2["result"]["requestState"].as_str().unwrap().to_string();
    assert_ne!(s1, s2);
    // The first round's state is spent.
    let (_, again) = call(&app, &token, name, json!({}),
        json!({"inputResponses": {"step1": {"action": "accept", "content": {"name": "Mallory"}}}, "requestState": s1})).await;
    assert_eq!(again["error"]["code"], -32602, "{again}");
    let (_, m3) = call(&app, &token, name, json!({}),
        json!({"inputResponses": {"step2": {"action": "accept", "content": {"color": "blue"}}}, "requestState": s2})).await;
    assert_eq!(text(&m3), "Hello Alice, your favorite color is blue");
}

#[tokio::test]
async fn a_tampered_state_is_refused_and_the_call_still_waits_for_the_real_one() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (key, state) = ask(&app, &token, "Q?").await;
    for bad in [
        format!("{state}-TAMPERED"),
        state.replace("mrs1.", "mrs1.x"),
        "garbage".into(),
    ] {
        let (status, m) = retry(&app, &token, "Q?", &key, answer("evil"), &bad).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(m["error"]["code"], -32602, "{m}");
    }
    // The state is bound to the request too: another question is refused.
    let (_, m) = retry(
        &app,
        &token,
        "Another question?",
        &key,
        answer("evil"),
        &state,
    )
    .await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    let (_, m) = retry(&app, &token, "Q?", &key, answer("good"), &state).await;
    assert_eq!(text(&m), "elicited: accept good");
    // Used once: a replay finds nothing.
    let (_, m) = retry(&app, &token, "Q?", &key, answer("again"), &state).await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
}

#[tokio::test]
async fn another_users_state_is_refused_and_never_answers_the_owners_upstream() {
    let app = gateway().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let (key, state) = ask(&app, &alice, "Alice's secret question?").await;
    // Bob presents Alice's state, unmodified, for the same call.
    let (_, m) = retry(
        &app,
        &bob,
        "Alice's secret question?",
        &key,
        answer("from bob"),
        &state,
    )
    .await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    assert!(!m.to_string().contains("Alice's secret"), "{m}");
    // Alice's call still waits, and gets Alice's answer, not Bob's.
    let (_, m) = retry(
        &app,
        &alice,
        "Alice's secret question?",
        &key,
        answer("from alice"),
        &state,
    )
    .await;
    assert_eq!(text(&m), "elicited: accept from alice");
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (key, state) = ask(&app, &token, "Q?").await;
    app.clock.advance(121);
    let (_, m) = retry(&app, &token, "Q?", &key, answer("late"), &state).await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    assert!(
        m["error"]["message"].as_str().unwrap().contains("expired"),
        "{m}"
    );
}

#[tokio::test]
async fn a_malformed_answer_is_refused_and_the_same_state_stays_good() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (key, state) = ask(&app, &token, "Q?").await;
    let (_, m) = retry(&app, &token, "Q?", &key, json!(12345), &state).await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    let (_, m) = retry(&app, &token, "Q?", &key, answer("fixed"), &state).await;
    assert_eq!(text(&m), "elicited: accept fixed");
}

#[tokio::test]
async fn an_answer_given_in_advance_completes_the_call_at_once() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (_, m) = call(&app, &token, "test_input_required_result_elicitation", json!({}),
        json!({"inputResponses": {"user_name": {"action": "accept", "content": {"name": "Ann"}}, "extra": 1}})).await;
    assert_eq!(text(&m), "Hello, Ann!");
}

#[tokio::test]
async fn questions_sent_together_come_in_one_result() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (_, m) = call(
        &app,
        &token,
        "test_input_required_result_multiple_inputs",
        json!({}),
        json!({}),
    )
    .await;
    let requests = m["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    let mut methods: Vec<&str> = requests
        .values()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    methods.sort();
    assert_eq!(
        methods,
        ["elicitation/create", "roots/list", "sampling/createMessage"],
        "{m}"
    );
}

#[tokio::test]
async fn an_undeclared_capability_is_never_asked_and_a_call_needing_it_gets_32021() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (status, m) = call(
        &app,
        &token,
        "test_missing_capability",
        json!({}),
        json!({"_meta": meta(json!({}))}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{m}");
    assert_eq!(m["error"]["code"], -32021, "{m}");
    assert_eq!(
        m["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}}),
        "{m}"
    );
    // Sampling declared, elicitation not: only the sampling question comes.
    let (_, m) = call(
        &app,
        &token,
        "test_input_required_result_capabilities",
        json!({}),
        json!({"_meta": meta(json!({"sampling": {}}))}),
    )
    .await;
    let requests = m["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    assert!(
        requests
            .values()
            .all(|r| r["method"] == "sampling/createMessage"),
        "{m}"
    );
    assert_eq!(requests.len(), 1, "{m}");
}

#[tokio::test]
async fn prompts_get_takes_several_rounds_too() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    let post = |params: Value| {
        stateless_post(
            &app,
            &token,
            "prompts/get",
            Some("test_input_required_result_prompt"),
        )
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": params}))
        .send()
    };
    let base =
        json!({"name": "test_input_required_result_prompt", "_meta": meta(all_capabilities())});
    let m = message(&post(base.clone()).await.unwrap().text().await.unwrap());
    assert_eq!(m["result"]["resultType"], "input_required", "{m}");
    let state = m["result"]["requestState"].clone();
    let mut retry = base;
    retry["inputResponses"] =
        json!({"user_context": {"action": "accept", "content": {"context": "tests"}}});
    retry["requestState"] = state;
    let m = message(&post(retry).await.unwrap().text().await.unwrap());
    assert_eq!(
        m["result"]["messages"][0]["content"]["text"], "Use this context: tests",
        "{m}"
    );
}

#[tokio::test]
async fn while_a_call_waits_the_same_users_next_call_is_served_and_another_users_question_is_refused()
 {
    let app = gateway().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let (key, state) = ask(&app, &alice, "First?").await;
    // Alice's second call on the same shared connection is hers alone.
    let (key2, state2) = ask(&app, &alice, "Second?").await;
    // Bob's call asks while alice's wait: on a shared connection, whose
    // question it is cannot be told, so the upstream is refused; bob sees
    // neither alice's questions nor an InputRequiredResult of hers.
    let (_, m) = call(
        &app,
        &bob,
        "fx_elicit",
        json!({"message": "Bob?"}),
        json!({}),
    )
    .await;
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(text(&m).contains("does not relay"), "{m}");
    assert!(
        !m.to_string().contains("First?") && !m.to_string().contains("Second?"),
        "{m}"
    );
    let (_, m) = retry(&app, &alice, "Second?", &key2, answer("two"), &state2).await;
    assert_eq!(text(&m), "elicited: accept two");
    let (_, m) = retry(&app, &alice, "First?", &key, answer("one"), &state).await;
    assert_eq!(text(&m), "elicited: accept one");
}

/// The conformance fixture connected on 2026-07-28 (prefix `n`), which asks
/// with its own `InputRequiredResult`.
async fn gateway_with_2026_upstream() -> TestApp {
    spawn_gateway(vec![fixture(
        "n",
        "args = [\"--conformance\"]\nrevision = \"2026-07-28\"",
    )])
    .await
}

#[tokio::test]
async fn a_2026_upstreams_input_required_result_reaches_a_2025_session_as_a_request() {
    let app = gateway_with_2026_upstream().await;
    let (_, token) = signed_in(&app, "alice").await;
    let (client, _events) = crate::gateway_support::connect(&app, &token).await;
    let r = crate::gateway_support::call(&client, "n_test_upstream_input_required", json!({}))
        .await
        .expect("call");
    // The session's client answered the elicitation; the upstream got it
    // under its own key, with its own state.
    assert_eq!(
        crate::gateway_support::text_of(&r),
        format!("native: {}", crate::gateway_support::ELICIT_ANSWER)
    );
}

#[tokio::test]
async fn a_2026_upstreams_input_required_result_reaches_a_2026_client_through_the_gateway() {
    let app = gateway_with_2026_upstream().await;
    let (_, token) = signed_in(&app, "alice").await;
    let name = "n_test_upstream_input_required";
    let (_, m) = call(&app, &token, name, json!({}), json!({})).await;
    assert_eq!(m["result"]["resultType"], "input_required", "{m}");
    assert_eq!(
        m["result"]["inputRequests"]["q"]["params"]["message"], "Native question?",
        "{m}"
    );
    // The gateway's own state, not the upstream's.
    let state = m["result"]["requestState"].as_str().unwrap().to_string();
    assert!(state.starts_with("mrs1."), "{state}");
    let (_, m) = call(
        &app,
        &token,
        name,
        json!({}),
        json!({"inputResponses": {"q": answer("Zed")}, "requestState": state}),
    )
    .await;
    assert_eq!(text(&m), "native: Zed");
}

#[tokio::test]
async fn on_a_shared_2026_upstream_two_users_questions_and_answers_never_cross() {
    // A 2026-07-28 upstream asks in its results, so the gateway always
    // knows whose question it is, even with both calls waiting at once.
    let app = gateway_with_2026_upstream().await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let name = "n_test_upstream_input_required";
    let (_, ma) = call(&app, &alice, name, json!({}), json!({})).await;
    let (_, mb) = call(&app, &bob, name, json!({}), json!({})).await;
    let sa = ma["result"]["requestState"].as_str().unwrap().to_string();
    let sb = mb["result"]["requestState"].as_str().unwrap().to_string();
    assert_ne!(sa, sb);
    // Bob cannot answer alice's call with her state.
    let (_, m) = call(
        &app,
        &bob,
        name,
        json!({}),
        json!({"inputResponses": {"q": answer("bob's")}, "requestState": sa}),
    )
    .await;
    assert_eq!(m["error"]["code"], -32602, "{m}");
    let (_, m) = call(
        &app,
        &bob,
        name,
        json!({}),
        json!({"inputResponses": {"q": answer("bob")}, "requestState": sb}),
    )
    .await;
    assert_eq!(text(&m), "native: bob");
    let (_, m) = call(
        &app,
        &alice,
        name,
        json!({}),
        json!({"inputResponses": {"q": answer("alice")}, "requestState": sa}),
    )
    .await;
    assert_eq!(text(&m), "native: alice");
}

#[tokio::test]
async fn a_builtin_tool_is_answered_at_once_and_a_state_sent_to_it_is_still_checked() {
    let app = gateway().await;
    let (_, token) = signed_in(&app, "alice").await;
    // No earlier round: served without the multi-round-trip machinery.
    let (status, m) = call(&app, &token, "echo", json!({"text": "hi"}), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(&m), "hi");
    // A state (or answers) sent with it goes through that machinery, which
    // refuses one it did not issue, as for any tool.
    let (status, m) = call(
        &app,
        &token,
        "echo",
        json!({"text": "hi"}),
        json!({"requestState": "garbage"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(m["error"]["code"], -32602, "{m}");
    let (key, state) = ask(&app, &token, "Q?").await;
    let (_, m) = call(
        &app,
        &token,
        "echo",
        json!({"text": "hi"}),
        json!({"inputResponses": {key: answer("evil")}, "requestState": state}),
    )
    .await;
    assert_eq!(m["error"]["code"], -32602, "another call's state: {m}");
}
