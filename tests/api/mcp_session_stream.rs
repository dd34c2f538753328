//! A Streamable HTTP session as mcpgate serves it (no rmcp service per
//! session): its standalone stream (`GET`) keeps what was sent while no
//! stream was open and resumes after `Last-Event-ID`; a second `GET`
//! while one is open takes nothing from it; `initialize` is answered once;
//! what the client declared at `initialize` (the tasks extension) holds for
//! its session only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::FIXTURE;
use crate::helpers::{TestApp, spawn_app_from_file};
use crate::mcp_support::{
    MCP, McpClient, SseEvent, SseReader, assert_rpc_error, bearer, initialize_body,
    initialized_notification, response_message, signed_in,
};
use crate::tasks::EXT;

fn upstreams(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("[[upstream]]\nname = {n:?}\ncommand = {FIXTURE:?}\n"))
        .collect()
}

async fn spawn_with(config: &str) -> (TestApp, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mcpgate.toml");
    std::fs::write(&file, config).expect("write the config");
    (spawn_app_from_file(dir, file.clone()).await, file)
}

/// Rewrites the configuration with `names` as upstreams and reloads it:
/// every session is told its tool list changed.
async fn reload(app: &TestApp, file: &Path, names: &[&str]) {
    std::fs::write(file, upstreams(names)).expect("write the config");
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert!(report.sessions_notified >= 1, "{report:?}");
}

/// `GET` of `c`'s session, with `Last-Event-ID: last` if given.
async fn get(app: &TestApp, c: &McpClient, last: Option<&str>) -> reqwest::Response {
    let mut rb = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&c.token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().expect("a session"))
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(last) = last {
        rb = rb.header("last-event-id", last);
    }
    let r = rb.send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    r
}

async fn event(reader: &mut SseReader) -> SseEvent {
    tokio::time::timeout(Duration::from_secs(10), reader.next_event())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
}

/// The events of one reload (a `list_changed` for each list that may have
/// changed, tools among them): read until none follows for a while.
/// Their ids.
async fn changes(reader: &mut SseReader) -> Vec<u64> {
    let mut events = vec![event(reader).await];
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(500), reader.next_event()).await
    {
        events.push(e);
    }
    assert!(
        events
            .iter()
            .any(|e| e.json()["method"] == "notifications/tools/list_changed"),
        "{events:?}"
    );
    events
        .iter()
        .map(|e| {
            assert!(
                e.json()["method"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("/list_changed")),
                "{e:?}"
            );
            e.id.as_deref()
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("no numeric id: {e:?}"))
        })
        .collect()
}

/// `from..=to`.
fn ids(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

/// The priming event a stream starts with (SEP-1699): no data, the id to
/// resume from.
async fn priming(reader: &mut SseReader) -> String {
    let e = event(reader).await;
    assert!(e.data.is_empty(), "{e:?}");
    e.id.expect("the priming event's id")
}

#[tokio::test]
async fn events_sent_while_no_get_is_open_wait_for_it_and_a_reconnect_resumes_after_its_last_event_id()
 {
    let (app, file) = spawn_with(&upstreams(&["one"])).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;

    // Sent while no GET is open: kept for the first.
    reload(&app, &file, &["one", "two"]).await;
    let mut first = SseReader::new(get(&app, &c, None).await);
    assert_eq!(priming(&mut first).await, "0");
    let one = changes(&mut first).await;
    let k1 = *one.last().unwrap();
    assert_eq!(one, ids(1, k1));

    // Sent while it is open: on it at once.
    reload(&app, &file, &["one"]).await;
    let two = changes(&mut first).await;
    let k2 = *two.last().unwrap();
    assert_eq!(two, ids(k1 + 1, k2));
    drop(first);

    // Sent after it dropped, and before the client reconnects: the
    // reconnect names the last event it saw, and gets only what followed.
    reload(&app, &file, &["one", "three"]).await;
    let mut again = SseReader::new(get(&app, &c, Some(&k2.to_string())).await);
    assert_eq!(priming(&mut again).await, k2.to_string());
    let three = changes(&mut again).await;
    let k3 = *three.last().unwrap();
    assert_eq!(three, ids(k2 + 1, k3));

    // A second GET while this one is open gets keep-alives only, and the
    // open one keeps receiving.
    let mut second = SseReader::new(get(&app, &c, None).await);
    priming(&mut second).await;
    reload(&app, &file, &["one"]).await;
    let four = changes(&mut again).await;
    let k4 = *four.last().unwrap();
    assert_eq!(four, ids(k3 + 1, k4));
    let stray = tokio::time::timeout(Duration::from_millis(300), second.next_event()).await;
    assert!(stray.is_err(), "the second stream got {stray:?}");
    drop(second);
    drop(again);

    // Reconnecting from the start replays every kept event, in order.
    let mut replay = SseReader::new(get(&app, &c, Some("0")).await);
    assert_eq!(priming(&mut replay).await, "0");
    assert_eq!(changes(&mut replay).await, ids(1, k4));
    drop(replay);

    // A Last-Event-ID that is no id of this stream: an empty stream.
    let body = get(&app, &c, Some("not-an-id")).await.text().await.unwrap();
    assert!(
        body.lines().all(|l| l.is_empty() || l.starts_with(':')),
        "{body:?}"
    );

    // The session still serves requests.
    let m = c.request("tools/list", json!({})).await;
    assert!(m["result"]["tools"].is_array(), "{m}");
}

#[tokio::test]
async fn bobs_get_reads_nothing_of_alices_session_and_another_users_get_is_not_found() {
    let (app, file) = spawn_with(&upstreams(&["one"])).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let mut a = McpClient::new(&app, &alice);
    a.initialize("2025-06-18").await;
    reload(&app, &file, &["one", "two"]).await;

    // Bob presenting alice's session id: as unknown, and her kept event
    // stays hers.
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&bob))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", a.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mut hers = SseReader::new(get(&app, &a, None).await);
    priming(&mut hers).await;
    let kept = changes(&mut hers).await;
    assert_eq!(kept.first(), Some(&1), "{kept:?}");
}

#[tokio::test]
async fn initialize_is_answered_once_per_session() {
    let (app, _file) = spawn_with("").await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut c = McpClient::new(&app, &token);
    c.initialize("2025-06-18").await;
    let id = c.take_id();
    let r = c
        .post(&initialize_body(id, "2025-06-18"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m = response_message(r, id).await;
    assert_rpc_error(&m, -32600, "already initialized");
    let m = c.request("tools/list", json!({})).await;
    assert!(m["result"]["tools"].is_array(), "{m}");
}

/// A session whose client declares `capabilities` at `initialize`.
async fn session_declaring(app: &TestApp, token: &str, capabilities: Value) -> McpClient {
    let mut c = McpClient::new(app, token);
    let id = c.take_id();
    let mut body = initialize_body(id, "2025-11-25");
    body["params"]["capabilities"] = capabilities;
    let r = c.post(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    c.session = crate::mcp_support::header(&r, "mcp-session-id");
    let m = response_message(r, id).await;
    assert!(m["result"].is_object(), "{m}");
    c.version = Some("2025-11-25".into());
    let r = c.post(&initialized_notification()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    c
}

#[tokio::test]
async fn the_tasks_extension_declared_at_initialize_holds_for_that_session_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = crate::tasks::gateway(&dir.path().join("cancel.log")).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    // Alice's client declares tasks; bob's, initialized after hers with
    // otherwise the same initialize, does not.
    let mut a = session_declaring(&app, &alice, json!({ "extensions": { EXT: {} } })).await;
    let mut b = session_declaring(&app, &bob, json!({})).await;

    let created = a
        .call_tool("slow_compute", json!({ "seconds": 1, "label": "a" }))
        .await;
    let task = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("alice's call made no task: {created}"))
        .to_string();
    let got = a.request("tasks/get", json!({ "taskId": task })).await;
    assert_eq!(got["result"]["taskId"], task, "{got}");

    // Bob's call runs to its result, no task; tasks/* need the extension.
    let done = b
        .call_tool("slow_compute", json!({ "seconds": 1, "label": "b" }))
        .await;
    assert_eq!(
        done["result"]["content"][0]["text"], "slow_compute b: done after 1 s",
        "{done}"
    );
    let refused = b.request("tasks/get", json!({ "taskId": task })).await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
}
