//! Tasks (SEP-2663) through the gateway: mcpgate creates and runs a task
//! for a task-supporting upstream tool (the fixture's `--conformance`
//! tools declare their support), serves `tasks/get` and `tasks/cancel`
//! from the store, and shows a task to its own user and client only.

use std::path::Path;
use std::time::Duration;

use mcpgate::clock::Clock;
use serde_json::{Value, json};

use crate::gateway_support::{WAIT, fixture, poll, wait_for_cancellation};
use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{signed_in, stateless_post};

pub const V: &str = "2026-07-28";
pub const EXT: &str = "io.modelcontextprotocol/tasks";

/// The gateway with the conformance fixture (prefix `""`), whose
/// `slow_compute` logs its cancellations to `log`.
/// The public URL stays the same across a restart, so tokens stay valid.
pub async fn gateway(log: &Path) -> TestApp {
    let upstream = fixture(
        "conf",
        &format!(
            "args = [\"--conformance\"]\nprefix = \"\"\nenv = {{ FIXTURE_CANCEL_LOG = {:?} }}",
            log.display().to_string()
        ),
    );
    spawn_app_with(|s| {
        s.upstream = vec![upstream];
        s.public_url = Some(crate::cluster_support::PUBLIC_URL.into());
    })
    .await
}

/// A 2026-07-28 client: stateless requests, declaring the tasks extension
/// (and elicitation) or not.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
    pub tasks: bool,
}

impl Client<'_> {
    /// The JSON-RPC response (result or error) to `method` with `params`.
    pub async fn rpc(&self, method: &str, mut params: Value) -> Value {
        let caps = if self.tasks {
            json!({ "elicitation": {}, "extensions": { EXT: {} } })
        } else {
            json!({})
        };
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": V,
            "io.modelcontextprotocol/clientInfo": { "name": "tasks-test", "version": "1" },
            "io.modelcontextprotocol/clientCapabilities": caps,
        });
        let name = params
            .get("name")
            .or_else(|| params.get("taskId"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let rb = stateless_post(self.app, &self.token, method, name.as_deref())
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
        let body = rb.send().await.unwrap().text().await.unwrap();
        serde_json::from_str::<Value>(&body)
            .ok()
            .or_else(|| {
                body.lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                    .find(|m| m.get("id").is_some())
            })
            .unwrap_or_else(|| panic!("no JSON-RPC response in {body:?}"))
    }

    pub async fn result(&self, method: &str, params: Value) -> Value {
        let m = self.rpc(method, params).await;
        m.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method}: no result in {m}"))
    }

    pub async fn error_code(&self, method: &str, params: Value) -> i64 {
        let m = self.rpc(method, params).await;
        m["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method}: no error in {m}"))
    }

    pub async fn call(&self, tool: &str, args: Value) -> Value {
        self.result("tools/call", json!({ "name": tool, "arguments": args }))
            .await
    }

    pub async fn get(&self, task_id: &str) -> Value {
        self.result("tasks/get", json!({ "taskId": task_id })).await
    }

    /// Polls `tasks/get` until the task is terminal.
    pub async fn terminal(&self, task_id: &str) -> Value {
        poll("a terminal task status", WAIT, || async {
            let t = self.get(task_id).await;
            ["completed", "failed", "cancelled"]
                .contains(&t["status"].as_str().unwrap_or(""))
                .then_some(t)
        })
        .await
    }
}

pub async fn client<'a>(app: &'a TestApp, user: &str, tasks: bool) -> Client<'a> {
    let (_, token) = signed_in(app, user).await;
    Client { app, token, tasks }
}

pub fn task_id(created: &Value) -> String {
    assert_eq!(created["resultType"], "task", "{created}");
    created["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no taskId in {created}"))
        .to_string()
}

#[tokio::test]
async fn a_task_is_created_polled_completed_failed_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cancel.log");
    let app = gateway(&log).await;
    let alice = client(&app, "alice", true).await;

    let discovered = alice.result("server/discover", json!({})).await;
    assert!(
        discovered["capabilities"]["extensions"][EXT].is_object(),
        "{discovered}"
    );

    // Created (server-directed), durably: an immediate tasks/get finds it.
    let created = alice
        .call("slow_compute", json!({ "seconds": 1, "label": "life" }))
        .await;
    let id = task_id(&created);
    assert_eq!(created["status"], "working");
    assert_eq!(created["ttlMs"], 3_600_000);
    assert_eq!(created["pollIntervalMs"], 500);
    assert!(created.get("result").is_none() && created.get("ttl").is_none());
    let working = alice.get(&id).await;
    assert_eq!(
        (
            &working["taskId"],
            &working["status"],
            &working["resultType"]
        ),
        (&json!(id), &json!("working"), &json!("complete")),
        "{working}"
    );
    assert!(working.get("result").is_none(), "{working}");

    // Completed, with the tool's result inlined.
    let done = alice.terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "slow_compute life: done after 1 s"
    );

    // A tool error completes the task with isError.
    let id = task_id(&alice.call("failing_job", json!({})).await);
    let done = alice.terminal(&id).await;
    assert_eq!(
        (&done["status"], &done["result"]["isError"]),
        (&json!("completed"), &json!(true))
    );

    // A protocol error fails it, with the error and no result.
    let id = task_id(&alice.call("protocol_error_job", json!({})).await);
    let failed = alice.terminal(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], -32603);
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on purpose")
    );
    assert!(failed.get("result").is_none());

    // Cancelled: an empty ack, the status at once, the upstream told.
    let id = task_id(&alice.call("slow_compute", json!({ "seconds": 60 })).await);
    let ack = alice.result("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(ack, json!({ "resultType": "complete" }));
    assert_eq!(alice.get(&id).await["status"], "cancelled");
    wait_for_cancellation(&log).await;
    // Idempotent on a terminal task; still cancelled afterwards.
    let ack = alice.result("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(ack, json!({ "resultType": "complete" }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(alice.get(&id).await["status"], "cancelled");
}

#[tokio::test]
async fn removed_unknown_undeclared_and_sync_cases_get_their_answers() {
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let with = client(&app, "alice", true).await;
    let without = Client {
        app: &app,
        token: with.token.clone(),
        tasks: false,
    };

    // Removed by SEP-2663.
    assert_eq!(
        with.error_code("tasks/result", json!({ "taskId": "x" }))
            .await,
        -32601
    );
    assert_eq!(with.error_code("tasks/list", json!({})).await, -32601);
    // Unknown ids.
    for method in ["tasks/get", "tasks/cancel"] {
        assert_eq!(
            with.error_code(method, json!({ "taskId": "nope" })).await,
            -32602,
            "{method}"
        );
    }
    assert_eq!(
        with.error_code(
            "tasks/update",
            json!({ "taskId": "nope", "inputResponses": {} })
        )
        .await,
        -32602
    );
    // Without the extension: tasks/* and a tool that requires tasks get
    // -32021 naming the extension; an optional one runs synchronously.
    assert_eq!(
        without
            .error_code("tasks/get", json!({ "taskId": "x" }))
            .await,
        -32021
    );
    let m = without
        .rpc(
            "tools/call",
            json!({ "name": "failing_job", "arguments": {} }),
        )
        .await;
    assert_eq!(m["error"]["code"], -32021, "{m}");
    assert!(
        m["error"]["data"]["requiredCapabilities"]["extensions"][EXT].is_object(),
        "{m}"
    );
    let sync = without.call("slow_compute", json!({ "seconds": 0 })).await;
    assert!(sync.get("taskId").is_none(), "{sync}");
    assert_eq!(sync["content"][0]["text"], "slow_compute : done after 0 s");
    // A sync-only tool stays sync with the extension, a legacy hint ignored.
    let greet = with
        .result(
            "tools/call",
            json!({ "name": "greet", "arguments": { "name": "Ann" }, "task": { "ttl": 1000 } }),
        )
        .await;
    assert!(greet.get("taskId").is_none(), "{greet}");
    assert_eq!(greet["content"][0]["text"], "Hello, Ann!");
}

#[tokio::test]
async fn a_task_is_invisible_to_another_user_and_to_another_client() {
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let alice = client(&app, "alice", true).await;
    let bob = client(&app, "bob", true).await;

    let id = task_id(&alice.call("slow_compute", json!({ "seconds": 60 })).await);
    // Bob gets exactly what an unknown id gets, and changes nothing.
    for (method, params) in [
        ("tasks/get", json!({ "taskId": id })),
        ("tasks/cancel", json!({ "taskId": id })),
        (
            "tasks/update",
            json!({ "taskId": id, "inputResponses": {} }),
        ),
    ] {
        let theirs = bob.rpc(method, params.clone()).await;
        let mut unknown_params = params;
        unknown_params["taskId"] = json!("00000000-0000-0000-0000-000000000000");
        let unknown = bob.rpc(method, unknown_params).await;
        assert_eq!(theirs["error"]["code"], -32602, "{method}: {theirs}");
        assert_eq!(
            theirs["error"]["message"]
                .as_str()
                .unwrap()
                .replace(&id, "ID"),
            unknown["error"]["message"]
                .as_str()
                .unwrap()
                .replace("00000000-0000-0000-0000-000000000000", "ID"),
            "{method}"
        );
    }
    assert_eq!(
        alice.get(&id).await["status"],
        "working",
        "bob cancelled nothing"
    );

    // Alice through another client does not see it either.
    let (other_client, t) = app.full_flow("alice").await;
    assert_ne!(
        other_client,
        app.store.task(&id).await.unwrap().unwrap().client_id
    );
    let other = Client {
        app: &app,
        token: t["access_token"].as_str().unwrap().to_string(),
        tasks: true,
    };
    assert_eq!(
        other.error_code("tasks/get", json!({ "taskId": id })).await,
        -32602
    );
    alice.result("tasks/cancel", json!({ "taskId": id })).await;
}

#[tokio::test]
async fn a_task_is_read_from_the_store_after_a_restart_and_expires_with_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let alice = client(&app, "alice", true).await;
    let id = task_id(&alice.call("slow_compute", json!({ "seconds": 0.5 })).await);
    let done = alice.terminal(&id).await;
    let token = alice.token.clone();

    let upstream = fixture("conf", "args = [\"--conformance\"]\nprefix = \"\"");
    let app = app
        .restart_with(|s| {
            s.upstream = vec![upstream];
            s.public_url = Some(crate::cluster_support::PUBLIC_URL.into());
        })
        .await;
    let alice = Client {
        app: &app,
        token,
        tasks: true,
    };
    let again = alice.get(&id).await;
    assert_eq!(again, done, "the same task, from the store");

    // Past its TTL (one hour) it is unknown, and the housekeeping purges it.
    app.clock.advance(3_601);
    assert_eq!(
        alice.error_code("tasks/get", json!({ "taskId": id })).await,
        -32602
    );
    app.store.purge_expired(app.clock.now()).await.unwrap();
    assert_eq!(app.store.task(&id).await.unwrap(), None);
}

#[tokio::test]
async fn on_postgresql_another_instance_reads_and_cancels_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cancel.log");
    let extra = format!(
        "args = [\"--conformance\"]\nprefix = \"\"\nenv = {{ FIXTURE_CANCEL_LOG = {:?} }}",
        log.display().to_string()
    );
    let (_db, a, b) =
        crate::cluster_support::two_instances_with(|s| s.upstream = vec![fixture("conf", &extra)])
            .await;
    let on_a = client(&a, "alice", true).await;
    let on_b = Client {
        app: &b,
        token: on_a.token.clone(),
        tasks: true,
    };
    let bob_on_b = client(&b, "bob", true).await;

    // Created on A, read on B.
    let id = task_id(&on_a.call("slow_compute", json!({ "seconds": 60 })).await);
    assert_eq!(on_b.get(&id).await["status"], "working");
    assert_eq!(
        bob_on_b
            .error_code("tasks/get", json!({ "taskId": id }))
            .await,
        -32602
    );
    // Cancelled on B: A stops the upstream call.
    let ack = on_b.result("tasks/cancel", json!({ "taskId": id })).await;
    assert_eq!(ack["resultType"], "complete");
    assert_eq!(on_a.get(&id).await["status"], "cancelled");
    wait_for_cancellation(&log).await;

    // A task that completes on A is read whole on B.
    let id = task_id(
        &on_a
            .call("slow_compute", json!({ "seconds": 0.5, "label": "x" }))
            .await,
    );
    let done = on_a.terminal(&id).await;
    assert_eq!(on_b.get(&id).await, done);
}

#[tokio::test]
async fn one_user_cannot_run_more_than_the_limit_of_tasks_at_once() {
    use mcpgate_core::mcp::tasks::MAX_RUNNING_PER_OWNER;
    let dir = tempfile::tempdir().unwrap();
    let app = gateway(&dir.path().join("cancel.log")).await;
    let alice = client(&app, "alice", true).await;
    let bob = client(&app, "bob", true).await;
    let mut ids = Vec::new();
    for _ in 0..MAX_RUNNING_PER_OWNER {
        ids.push(task_id(
            &alice.call("slow_compute", json!({ "seconds": 60 })).await,
        ));
    }
    let m = alice
        .rpc(
            "tools/call",
            json!({ "name": "slow_compute", "arguments": { "seconds": 60 } }),
        )
        .await;
    assert_eq!(m["error"]["code"], -32600, "{m}");
    // Another user is not affected.
    let theirs = task_id(&bob.call("slow_compute", json!({ "seconds": 60 })).await);
    bob.result("tasks/cancel", json!({ "taskId": theirs }))
        .await;
    // Once one ends, alice may start another.
    alice
        .result("tasks/cancel", json!({ "taskId": ids[0] }))
        .await;
    let another = poll("room for another task", WAIT, || async {
        let m = alice
            .rpc(
                "tools/call",
                json!({ "name": "slow_compute", "arguments": { "seconds": 60 } }),
            )
            .await;
        m["result"]["taskId"].as_str().map(str::to_string)
    })
    .await;
    ids.push(another);
    for id in &ids {
        alice.result("tasks/cancel", json!({ "taskId": id })).await;
    }
}
