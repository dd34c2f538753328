//! The lane and the routed reader together, against an "upstream" made of
//! in-memory pipes.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientRequest, Request, ServerResult};
use rmcp::service::ServiceError;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::lane::{FIRST_ID, Lane};
use super::outbox::Outbox;
use super::routed::{LINE_LIMIT, Routed};
use crate::gateway::relay::RelayState;

struct Upstream {
    /// What mcpgate wrote to the upstream's stdin.
    stdin: BufReader<DuplexStream>,
    /// The upstream's stdout.
    stdout: DuplexStream,
}

fn pipes() -> (Arc<Lane>, Routed<DuplexStream>, Upstream) {
    let (ours_in, theirs_in) = tokio::io::duplex(1 << 16);
    let (theirs_out, ours_out) = tokio::io::duplex(1 << 16);
    let relay = Arc::new(RelayState::new("t", false, Duration::from_secs(60)));
    let lane = Lane::new(Outbox::start(ours_in), relay);
    let routed = Routed::new(ours_out, lane.clone());
    (
        lane,
        routed,
        Upstream {
            stdin: BufReader::new(theirs_in),
            stdout: theirs_out,
        },
    )
}

fn echo() -> ClientRequest {
    let mut params = CallToolRequestParams::new("echo");
    params.arguments = json!({"text": "hi"}).as_object().cloned();
    ClientRequest::CallToolRequest(Request::new(params))
}

async fn received(up: &mut Upstream) -> Value {
    let mut line = String::new();
    up.stdin.read_line(&mut line).await.unwrap();
    serde_json::from_str(&line).unwrap()
}

/// The upstream answers `id` (no longer waited for) and ends its output:
/// the answer is handed on to rmcp, which drops it.
async fn a_late_answer_goes_on_to_rmcp(
    mut up: Upstream,
    mut routed: Routed<DuplexStream>,
    id: Value,
) {
    let late = format!("{}\n", json!({"jsonrpc": "2.0", "id": id, "result": {}}));
    up.stdout.write_all(late.as_bytes()).await.unwrap();
    drop(up);
    let mut rest = Vec::new();
    routed.read_to_end(&mut rest).await.unwrap();
    assert_eq!(String::from_utf8(rest).unwrap(), late);
}

#[tokio::test]
async fn a_call_goes_out_with_its_id_and_token_and_only_its_answer_is_taken() {
    let (lane, mut routed, mut up) = pipes();
    let mut meta = rmcp::model::RequestMetaObject::new();
    meta.insert("traceparent".into(), json!("00-abc-def-01"));
    let call = lane
        .send(echo(), Some(meta), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let sent = received(&mut up).await;
    assert_eq!(sent["id"], json!(FIRST_ID));
    assert_eq!(sent["method"], "tools/call");
    assert_eq!(sent["params"]["name"], "echo");
    assert_eq!(sent["params"]["arguments"], json!({"text": "hi"}));
    assert_eq!(sent["params"]["_meta"]["progressToken"], json!(FIRST_ID));
    assert_eq!(sent["params"]["_meta"]["traceparent"], "00-abc-def-01");

    let others = [
        // A notification, a request of the upstream's that happens to use
        // the call's id, and an answer to one of rmcp's requests.
        format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{FIRST_ID},"progress":1}}}}"#
        ),
        format!(r#"{{"jsonrpc":"2.0","id":{FIRST_ID},"method":"ping"}}"#),
        r#"{"jsonrpc":"2.0","id":3,"result":{}}"#.to_string(),
        "not json at all".to_string(),
    ];
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":{FIRST_ID},"result":{{"content":[{{"type":"text","text":"hi"}}]}}}}"#
    );
    let mut written = String::new();
    for l in &others[..2] {
        written.push_str(l);
        written.push('\n');
    }
    let mut expected = written.clone();
    written.push_str(&answer);
    written.push('\n');
    for l in &others[2..] {
        written.push_str(l);
        written.push('\n');
        expected.push_str(l);
        expected.push('\n');
    }
    written.push_str("{\"partial");
    expected.push_str("{\"partial");
    // In small pieces, so lines arrive split across reads.
    let writer = tokio::spawn(async move {
        for piece in written.as_bytes().chunks(7) {
            up.stdout.write_all(piece).await.unwrap();
            tokio::task::yield_now().await;
        }
        drop(up.stdout);
    });
    let mut handed_on = Vec::new();
    routed.read_to_end(&mut handed_on).await.unwrap();
    writer.await.unwrap();
    assert_eq!(String::from_utf8(handed_on).unwrap(), expected);
    let result = call.answer().await.unwrap();
    let ServerResult::CallToolResult(r) = result else {
        panic!("a tool result: {result:?}")
    };
    assert_eq!(r.content.len(), 1);
}

#[tokio::test]
async fn an_error_answer_is_the_calls_error() {
    let (lane, mut routed, mut up) = pipes();
    let call = lane.send(echo(), None, None).await.unwrap();
    let id = received(&mut up).await["id"].clone();
    up.stdout
        .write_all(
            format!(
                "{}\n",
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "no tool echo"}})
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    drop(up.stdout);
    let mut rest = Vec::new();
    routed.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    match call.answer().await {
        Err(ServiceError::McpError(e)) => {
            assert_eq!((e.code.0, e.message.as_ref()), (-32602, "no tool echo"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn when_the_output_ends_waiting_and_later_calls_fail_as_closed() {
    let (lane, mut routed, up) = pipes();
    let call = lane
        .send(echo(), None, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    drop(up.stdout);
    let mut rest = Vec::new();
    routed.read_to_end(&mut rest).await.unwrap();
    assert!(matches!(
        call.answer().await,
        Err(ServiceError::TransportClosed)
    ));
    assert!(matches!(
        lane.send(echo(), None, None).await,
        Err(ServiceError::TransportClosed)
    ));
}

#[tokio::test]
async fn a_call_that_times_out_is_cancelled_upstream_and_its_late_answer_goes_on_to_rmcp() {
    let (lane, routed, mut up) = pipes();
    let call = lane
        .send(echo(), None, Some(Duration::from_millis(50)))
        .await
        .unwrap();
    let id = received(&mut up).await["id"].clone();
    let r = call.answer().await;
    assert!(
        matches!(r, Err(ServiceError::Timeout { timeout }) if timeout == Duration::from_millis(50))
    );
    let cancelled = received(&mut up).await;
    assert_eq!(cancelled["method"], "notifications/cancelled");
    assert_eq!(cancelled["params"]["requestId"], id);
    assert_eq!(cancelled["params"]["reason"], "request timeout");
    a_late_answer_goes_on_to_rmcp(up, routed, id).await;
}

#[tokio::test]
async fn a_dropped_call_is_forgotten() {
    let (lane, routed, mut up) = pipes();
    let call = lane.send(echo(), None, None).await.unwrap();
    let id = received(&mut up).await["id"].clone();
    drop(call);
    a_late_answer_goes_on_to_rmcp(up, routed, id).await;
}

#[tokio::test]
async fn an_over_long_line_is_handed_on_whole_and_the_next_answer_still_taken() {
    let (lane, mut routed, mut up) = pipes();
    let call = lane.send(echo(), None, None).await.unwrap();
    let id = received(&mut up).await["id"].clone();
    let long = format!("{{\"x\":\"{}\"}}\n", "a".repeat(LINE_LIMIT + 10));
    let answer = format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}})
    );
    let long_len = long.len();
    let writer = tokio::spawn(async move {
        up.stdout.write_all(long.as_bytes()).await.unwrap();
        up.stdout.write_all(answer.as_bytes()).await.unwrap();
        drop(up.stdout);
    });
    let mut rest = Vec::new();
    routed.read_to_end(&mut rest).await.unwrap();
    writer.await.unwrap();
    assert_eq!(rest.len(), long_len);
    assert!(call.answer().await.is_ok());
}
