//! Multi-round-trip requests (2026-07-28, SEP-2322) across instances: the
//! retry of a call pending on instance `a` lands on instance `b`, which
//! hands it to `a` and relays the outcome (PostgreSQL, shared mode).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster_support::two_instances_with;
use crate::gateway_support::fixture;
use crate::helpers::TestApp;
use crate::mcp_support::{signed_in, stateless_post};

const V: &str = "2026-07-28";

async fn call(app: &TestApp, token: &str, name: &str, extra: Value) -> (StatusCode, Value) {
    let mut params = json!({
        "name": name,
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": V,
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
        },
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        params[k] = v;
    }
    let r = stateless_post(app, token, "tools/call", Some(name))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    let m = serde_json::from_str(&body)
        .ok()
        .or_else(|| {
            body.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        })
        .unwrap_or_else(|| panic!("{body}"));
    (status, m)
}

fn state(m: &Value) -> String {
    m["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("no requestState in {m}"))
        .to_string()
}

fn answer(field: &str, value: &str) -> Value {
    json!({"action": "accept", "content": {field: value}})
}

#[tokio::test]
async fn a_retry_landing_on_another_instance_reaches_the_waiting_call() {
    let (_db, a, b) = two_instances_with(|s| {
        s.upstream = vec![fixture("conf", "prefix = \"\"\nargs = [\"--conformance\"]")]
    })
    .await;
    let (_, alice) = signed_in(&a, "alice").await;
    let (_, bob) = signed_in(&a, "bob").await;
    let tool = "test_input_required_result_multi_round";

    // Round 1 on a: the call waits on a.
    let (_, m1) = call(&a, &alice, tool, json!({})).await;
    assert!(m1["result"]["inputRequests"]["step1"].is_object(), "{m1}");
    let s1 = state(&m1);

    // Bob presents alice's state on b: refused there, never forwarded.
    let (_, m) = call(
        &b,
        &bob,
        tool,
        json!({
            "inputResponses": {"step1": answer("name", "Bob")}, "requestState": s1,
        }),
    )
    .await;
    assert_eq!(m["error"]["code"], -32602, "{m}");

    // Alice's retry lands on b, which hands it to a; a asks again.
    let (status, m2) = call(
        &b,
        &alice,
        tool,
        json!({
            "inputResponses": {"step1": answer("name", "Alice")}, "requestState": s1,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(m2["result"]["inputRequests"]["step2"].is_object(), "{m2}");
    let s2 = state(&m2);

    // The last round on b too: the upstream on a got both of alice's answers.
    let (_, m3) = call(
        &b,
        &alice,
        tool,
        json!({
            "inputResponses": {"step2": answer("color", "green")}, "requestState": s2,
        }),
    )
    .await;
    assert_eq!(
        m3["result"]["content"][0]["text"], "Hello Alice, your favorite color is green",
        "{m3}"
    );
    // A replay on either instance finds nothing.
    for app in [&a, &b] {
        let (_, m) = call(
            app,
            &alice,
            tool,
            json!({
                "inputResponses": {"step2": answer("color", "red")}, "requestState": s2,
            }),
        )
        .await;
        assert_eq!(m["error"]["code"], -32602, "{m}");
    }
}
