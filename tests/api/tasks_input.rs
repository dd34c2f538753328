//! Input during a task (SEP-2663 `input_required`): an upstream's
//! `elicitation/create` during a task's call becomes the task's
//! `inputRequests`, answered with `tasks/update` (through the input broker,
//! `mcpgate::gateway::input`), by the task's owner only.

use serde_json::{Value, json};

use crate::gateway_support::{WAIT, poll};
use crate::mcp_support::stateless_post;
use crate::tasks::{Client, EXT, V, client, gateway, task_id};

/// Polls `tasks/get` until the task waits for `n` answers; its questions.
async fn questions(c: &Client<'_>, id: &str, n: usize) -> serde_json::Map<String, Value> {
    poll("a task waiting for input", WAIT, || async {
        let t = c.get(id).await;
        let q = t["inputRequests"].as_object().cloned().unwrap_or_default();
        (t["status"] == "input_required" && q.len() == n).then_some(q)
    })
    .await
}

#[tokio::test]
async fn a_task_asks_its_client_through_input_required_and_tasks_update() {
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let alice = client(&app, "alice", true).await;
    let bob = client(&app, "bob", true).await;

    let id = task_id(
        &alice
            .call("confirm_delete", json!({ "filename": "a.txt" }))
            .await,
    );
    let q = questions(&alice, &id, 1).await;
    let (key, question) = q.iter().next().unwrap();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "Delete a.txt?");

    // Bob cannot answer alice's question: an unknown id to him.
    let answer = json!({ key.clone(): { "action": "accept", "content": { "confirm": true } } });
    assert_eq!(
        bob.error_code(
            "tasks/update",
            json!({ "taskId": id, "inputResponses": answer })
        )
        .await,
        -32602
    );
    assert_eq!(alice.get(&id).await["status"], "input_required");
    // A malformed answer is refused and answers nothing; unknown keys are ignored.
    assert_eq!(
        alice
            .error_code(
                "tasks/update",
                json!({ "taskId": id, "inputResponses": { key.clone(): { "action": 7 } } })
            )
            .await,
        -32602
    );
    let ack = alice
        .result(
            "tasks/update",
            json!({ "taskId": id, "inputResponses": { "nope": {} } }),
        )
        .await;
    assert_eq!(ack, json!({ "resultType": "complete" }));
    assert_eq!(alice.get(&id).await["status"], "input_required");

    let ack = alice
        .result(
            "tasks/update",
            json!({ "taskId": id, "inputResponses": answer }),
        )
        .await;
    assert_eq!(ack, json!({ "resultType": "complete" }));
    let done = alice.terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "confirm_delete: action=accept, content={\"confirm\":true}"
    );

    // Two questions at once, answered one at a time.
    let id = task_id(&alice.call("multi_input", json!({})).await);
    let q = questions(&alice, &id, 2).await;
    let keys: Vec<String> = q.keys().cloned().collect();
    let answer =
        |k: &str, name: &str| json!({ k: { "action": "accept", "content": { "name": name } } });
    alice
        .result(
            "tasks/update",
            json!({ "taskId": id, "inputResponses": answer(&keys[0], "one") }),
        )
        .await;
    let after = alice.get(&id).await;
    assert_eq!(after["status"], "input_required", "{after}");
    let open: Vec<&String> = after["inputRequests"].as_object().unwrap().keys().collect();
    assert_eq!(open, vec![&keys[1]], "only the unanswered question is left");
    alice
        .result(
            "tasks/update",
            json!({ "taskId": id, "inputResponses": answer(&keys[1], "two") }),
        )
        .await;
    let done = alice.terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["content"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_task_never_asks_a_client_that_did_not_declare_elicitation() {
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let alice = client(&app, "alice", true).await;
    // Declares the tasks extension only.
    let m = stateless_post(
        alice.app,
        &alice.token,
        "tools/call",
        Some("confirm_delete"),
    )
    .json(
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "confirm_delete", "arguments": { "filename": "b.txt" },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": V,
                "io.modelcontextprotocol/clientInfo": { "name": "t", "version": "1" },
                "io.modelcontextprotocol/clientCapabilities": { "extensions": { EXT: {} } },
            }
        }}),
    )
    .send()
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    let id = task_id(&m["result"]);
    let failed = alice.terminal(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], -32021);
    assert!(
        failed["error"]["data"]["requiredCapabilities"]["elicitation"].is_object(),
        "{failed}"
    );
}

#[tokio::test]
async fn a_call_that_ends_or_asks_at_once_is_answered_before_it_becomes_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let alice = client(&app, "alice", true).await;

    // Ends at once: an ordinary result (the immediate-result shortcut).
    let r = alice.call("slow_compute", json!({ "seconds": 0 })).await;
    assert_eq!(r["resultType"], "complete", "{r}");
    assert!(r.get("taskId").is_none(), "{r}");

    // Asks at once: a multi-round-trip round, no task yet.
    let r1 = alice.call("test_tool_with_task", json!({})).await;
    assert_eq!(r1["resultType"], "input_required", "{r1}");
    assert!(r1.get("taskId").is_none(), "{r1}");
    let key = r1["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    // The answer resumes the call, which then works on: now a task.
    let r2 = alice
        .result(
            "tools/call",
            json!({
                "name": "test_tool_with_task",
                "arguments": {},
                "inputResponses": { key: { "action": "accept", "content": { "user_name": "Alice" } } },
                "requestState": r1["requestState"],
            }),
        )
        .await;
    let id = task_id(&r2);
    assert!(
        r2.get("requestState").is_none() && r2.get("inputRequests").is_none(),
        "{r2}"
    );
    let done = alice.terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Alice"), "{text}");
}

#[tokio::test]
async fn on_postgresql_another_instance_answers_a_task_s_questions() {
    let (_db, a, b) = crate::cluster_support::two_instances_with(|s| {
        s.upstream = vec![crate::gateway_support::fixture(
            "conf",
            "args = [\"--conformance\"]\nprefix = \"\"",
        )]
    })
    .await;
    let on_a = client(&a, "alice", true).await;
    let on_b = Client {
        app: &b,
        token: on_a.token.clone(),
        tasks: true,
    };
    let bob_on_b = client(&b, "bob", true).await;

    let id = task_id(&on_a.call("multi_input", json!({})).await);
    let q = questions(&on_b, &id, 2).await;
    let keys: Vec<String> = q.keys().cloned().collect();
    let answer = |k: &str| json!({ k: { "action": "accept", "content": { "name": "x" } } });
    // Bob, on B: an unknown task, and nothing is queued for A.
    assert_eq!(
        bob_on_b
            .error_code(
                "tasks/update",
                json!({ "taskId": id, "inputResponses": answer(&keys[0]) })
            )
            .await,
        -32602
    );
    // A malformed answer through B: refused by A, reported by B.
    assert_eq!(
        on_b.error_code(
            "tasks/update",
            json!({ "taskId": id, "inputResponses": { keys[0].clone(): { "action": 7 } } })
        )
        .await,
        -32602
    );
    // One answer through B: acknowledged once A stored the new state.
    on_b.result(
        "tasks/update",
        json!({ "taskId": id, "inputResponses": answer(&keys[0]) }),
    )
    .await;
    let open: Vec<String> = on_a.get(&id).await["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(open, vec![keys[1].clone()]);
    on_b.result(
        "tasks/update",
        json!({ "taskId": id, "inputResponses": answer(&keys[1]) }),
    )
    .await;
    let done = on_b.terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
}
