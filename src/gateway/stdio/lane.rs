//! [`Lane`]: requests to a stdio upstream written from the calling task,
//! their answers routed back by id from the connection's reader.
//!
//! rmcp's client sends a request by handing it to its service task, which
//! spawns a task to write it, and hands the answer back from the service
//! task after parsing the whole line as any message an upstream may send (an
//! untagged union of every request, notification and result type). For a
//! gateway call that was two task hand-offs, a spawned task and the widest
//! parse per call (docs/benchmarks.md, "Workload 4: where a gateway call's
//! CPU goes"). A lane call instead:
//!
//! 1. takes an id of its own range (from [`FIRST_ID`]: rmcp's ids count
//!    from 0 in 32 bits, so the two never meet on one connection), which is
//!    also its progress token (rmcp's tokens count from 0 as well);
//! 2. records it as waiting, tells [`RelayState`] it is outstanding (as
//!    rmcp's sends are told through `Counted`), and queues the message on
//!    the [`Outbox`];
//! 3. receives the answer's line from [`super::routed::Routed`], which
//!    hands every other line on to rmcp unchanged, and parses only the
//!    answer's `result` or `error`, in the caller's task.
//!
//! Everything else on the connection (`initialize`, the upstream's
//! notifications and requests, list requests rmcp makes) stays rmcp's.
//! What a call sees is what rmcp gave: the same `_meta` (the caller's
//! entries and the progress token), the same result type, `Timeout` after
//! the request timeout with `notifications/cancelled` sent (reason
//! "request timeout"), `TransportClosed` when the upstream goes away.
//! A call dropped before its answer forgets its id: a late answer goes on
//! to rmcp, which drops an answer to no request of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rmcp::model::{
    CallToolResult, CancelledNotification, CancelledNotificationParam, ClientNotification,
    ClientRequest, ClientResult, ErrorData, GetMeta, JsonRpcMessage, NumberOrString, ProgressToken,
    RequestId, RequestMetaObject, ServerResult,
};
use rmcp::service::ServiceError;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::outbox::Outbox;
use crate::gateway::relay::RelayState;

/// The first id of a lane: above every id rmcp's 32-bit counter gives.
pub const FIRST_ID: i64 = 1 << 32;

/// The reason rmcp gives when it cancels a request that timed out.
const TIMEOUT_REASON: &str = "request timeout";

type ClientMessage = JsonRpcMessage<ClientRequest, ClientResult, ClientNotification>;

#[derive(Default)]
struct Waiting {
    calls: HashMap<i64, oneshot::Sender<Bytes>>,
    closed: bool,
}

pub struct Lane {
    next: AtomicI64,
    waiting: Mutex<Waiting>,
    /// `waiting.calls.len()`, read by the reader without the lock.
    count: AtomicUsize,
    outbox: Arc<Outbox>,
    relay: Arc<RelayState>,
}

/// The head of a line from the upstream: enough to tell an answer to a
/// lane call (an id of the lane's, no method) from everything else.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
}

/// An answer's outcome (JSON-RPC 2.0 section 5: `result` or `error`).
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
}

/// What a call's answer is expected to hold, for reading it
/// ([`read_result`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A `tools/call` answer: most likely a `CallToolResult`.
    ToolResult,
    Any,
}

impl Lane {
    pub fn new(outbox: Arc<Outbox>, relay: Arc<RelayState>) -> Arc<Self> {
        Arc::new(Self {
            next: AtomicI64::new(FIRST_ID),
            waiting: Mutex::new(Waiting::default()),
            count: AtomicUsize::new(0),
            outbox,
            relay,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `request` with `meta` added to its `_meta`; the call is
    /// waiting for its answer once this returns, for at most `timeout`.
    pub async fn send(
        self: &Arc<Self>,
        mut request: ClientRequest,
        meta: Option<RequestMetaObject>,
        timeout: Option<Duration>,
    ) -> Result<Call, ServiceError> {
        let expect = match request {
            ClientRequest::CallToolRequest(_) => Expect::ToolResult,
            _ => Expect::Any,
        };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = RequestId::Number(n);
        let progress_token = ProgressToken(NumberOrString::Number(n));
        if let Some(meta) = meta {
            request.get_meta_mut().extend(meta);
        }
        request
            .get_meta_mut()
            .set_progress_token(progress_token.clone());
        let mut line =
            serde_json::to_vec(&ClientMessage::request(request, id.clone())).map_err(|e| {
                ServiceError::McpError(ErrorData::internal_error(
                    format!("the request could not be serialized: {e}"),
                    None,
                ))
            })?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        {
            let mut w = self.lock();
            if w.closed {
                return Err(ServiceError::TransportClosed);
            }
            w.calls.insert(n, tx);
            self.count.store(w.calls.len(), Ordering::Release);
        }
        let call = Call {
            lane: self.clone(),
            n,
            rx,
            id,
            progress_token,
            expect,
            timeout,
        };
        self.relay.sending(&call.id);
        if self.outbox.push(&line).await.is_err() {
            self.relay.answered(&call.id);
            return Err(ServiceError::TransportClosed);
        }
        Ok(call)
    }

    /// Hands `line` to the lane call it answers; `false` (nothing taken) for
    /// any other line.
    pub fn deliver(&self, line: &mut bytes::BytesMut) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let Ok(head) = serde_json::from_slice::<Head>(line) else {
            return false;
        };
        let (None, Some(RequestId::Number(n))) = (head.method, head.id) else {
            return false;
        };
        let Some(tx) = self.forget(n) else {
            return false;
        };
        // The caller may have stopped waiting in the meantime: the answer
        // is then dropped, as rmcp drops an answer nobody waits for.
        let _ = tx.send(line.split().freeze());
        true
    }

    fn forget(&self, n: i64) -> Option<oneshot::Sender<Bytes>> {
        let mut w = self.lock();
        let tx = w.calls.remove(&n);
        self.count.store(w.calls.len(), Ordering::Release);
        tx
    }

    /// The upstream's output ended: every waiting call fails with
    /// `TransportClosed`, and so does every later one.
    pub fn close(&self) {
        let mut w = self.lock();
        w.closed = true;
        w.calls.clear();
        self.count.store(0, Ordering::Release);
    }

    /// Tells the upstream the request `id` is cancelled (MCP
    /// `notifications/cancelled`).
    pub async fn cancel(&self, id: &RequestId, reason: &str) {
        let n = ClientNotification::CancelledNotification(CancelledNotification::new(
            CancelledNotificationParam::new(Some(id.clone()), Some(reason.to_owned())),
        ));
        let Ok(mut line) = serde_json::to_vec(&ClientMessage::notification(n)) else {
            return;
        };
        line.push(b'\n');
        if let RequestId::Number(n) = id {
            self.forget(*n);
        }
        let _ = self.outbox.push(&line).await;
    }
}

/// A request sent on a [`Lane`], waiting for its answer.
pub struct Call {
    lane: Arc<Lane>,
    n: i64,
    rx: oneshot::Receiver<Bytes>,
    pub id: RequestId,
    pub progress_token: ProgressToken,
    expect: Expect,
    timeout: Option<Duration>,
}

impl Call {
    /// The lane the call was sent on.
    pub fn lane(&self) -> Arc<Lane> {
        self.lane.clone()
    }

    /// The answer, or `Timeout` after the call's timeout (the upstream is
    /// told the request is cancelled), or `TransportClosed`.
    pub async fn answer(mut self) -> Result<ServerResult, ServiceError> {
        let line = match self.timeout {
            Some(t) => match tokio::time::timeout(t, &mut self.rx).await {
                Ok(r) => r,
                Err(_) => {
                    self.lane.cancel(&self.id, TIMEOUT_REASON).await;
                    return Err(ServiceError::Timeout { timeout: t });
                }
            },
            None => (&mut self.rx).await,
        }
        .map_err(|_| ServiceError::TransportClosed)?;
        parse_answer(&line, self.expect)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.lane.forget(self.n);
    }
}

/// An answer's `result` as rmcp reads it, or its `error` as rmcp reports
/// it.
fn parse_answer(line: &[u8], expect: Expect) -> Result<ServerResult, ServiceError> {
    let unreadable = |e: serde_json::Error| {
        ServiceError::McpError(ErrorData::internal_error(
            format!("the upstream's answer could not be read: {e}"),
            None,
        ))
    };
    let answer: Answer<'_> = serde_json::from_slice(line).map_err(unreadable)?;
    match (answer.error, answer.result) {
        (Some(error), _) => Err(ServiceError::McpError(error)),
        (None, Some(result)) => read_result(result.get(), expect).map_err(unreadable),
        (None, None) => Err(ServiceError::McpError(ErrorData::internal_error(
            "the upstream answered with neither a result nor an error",
            None,
        ))),
    }
}

/// A result as rmcp's untagged `ServerResult` reads it: the first of some
/// twenty result types that accepts it. An answer to `tools/call` whose
/// keys are only `CallToolResult`'s own (`content`, `structuredContent`,
/// `isError`, `_meta`), read as a `CallToolResult` directly, gives what
/// that untagged read gives, since every type tried before `CallToolResult`
/// requires a key of its own (`result_proptests` checks the two agree); any
/// other result, or one that direct read refuses, gets the untagged read.
pub fn read_result(result: &str, expect: Expect) -> serde_json::Result<ServerResult> {
    if expect == Expect::ToolResult
        && only_tool_result_keys(result)
        && let Ok(r) = serde_json::from_str::<CallToolResult>(result)
    {
        return Ok(ServerResult::CallToolResult(r));
    }
    serde_json::from_str(result)
}

/// Whether `json` is an object whose keys are all `CallToolResult`'s
/// (values skipped unread).
fn only_tool_result_keys(json: &str) -> bool {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Known(bool);
    impl<'de> Deserialize<'de> for Known {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Key;
            impl Visitor<'_> for Key {
                type Value = Known;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a key")
                }
                fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Known, E> {
                    Ok(Known(matches!(
                        k,
                        "content" | "structuredContent" | "isError" | "_meta"
                    )))
                }
            }
            d.deserialize_str(Key)
        }
    }
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<bool, M::Error> {
            let mut known = true;
            while let Some(Known(k)) = m.next_key()? {
                known &= k;
                m.next_value::<IgnoredAny>()?;
            }
            Ok(known)
        }
    }
    serde_json::Deserializer::from_str(json)
        .deserialize_map(Keys)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HI: &[u8] =
        br#"{"jsonrpc":"2.0","id":4294967296,"result":{"content":[{"type":"text","text":"hi"}]}}"#;

    #[test]
    fn answers_read_as_rmcp_reads_them() {
        for expect in [Expect::ToolResult, Expect::Any] {
            let ok = parse_answer(HI, expect).unwrap();
            assert!(matches!(ok, ServerResult::CallToolResult(ref r) if r.content.len() == 1));
            let from_rmcp: rmcp::service::RxJsonRpcMessage<rmcp::RoleClient> =
                serde_json::from_slice(HI).unwrap();
            let JsonRpcMessage::Response(r) = from_rmcp else {
                panic!("a response")
            };
            assert_eq!(
                serde_json::to_value(&ok).unwrap(),
                serde_json::to_value(&r.result).unwrap()
            );
        }
        let err = parse_answer(
            br#"{"jsonrpc":"2.0","id":4294967296,"error":{"code":-32602,"message":"no such tool"}}"#,
            Expect::ToolResult,
        )
        .unwrap_err();
        assert!(
            matches!(err, ServiceError::McpError(ref e) if e.code.0 == -32602 && e.message == "no such tool")
        );
        let neither =
            parse_answer(br#"{"jsonrpc":"2.0","id":4294967296}"#, Expect::Any).unwrap_err();
        assert!(matches!(neither, ServiceError::McpError(ref e) if e.message.contains("neither")));
        let garbled = parse_answer(
            br#"{"jsonrpc":"2.0","id":4294967296,"error":"oops"}"#,
            Expect::Any,
        )
        .unwrap_err();
        assert!(
            matches!(garbled, ServiceError::McpError(ref e) if e.message.contains("could not be read"))
        );
    }

    #[test]
    fn a_tool_call_answered_with_a_task_or_an_input_request_is_read_as_that() {
        let task = r#"{"task":{"taskId":"t1","status":"working","createdAt":"2026-12-06T00:00:00Z","lastUpdatedAt":"2026-12-06T00:00:00Z","ttl":60000}}"#;
        let untagged: ServerResult = serde_json::from_str(task).unwrap();
        let read = read_result(task, Expect::ToolResult).unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&untagged).unwrap()
        );
        assert!(!matches!(read, ServerResult::CallToolResult(_)), "{read:?}");
        assert!(only_tool_result_keys(
            r#"{"content":[],"isError":true,"_meta":{}}"#
        ));
        assert!(!only_tool_result_keys(
            r#"{"content":[],"resultType":"complete"}"#
        ));
        assert!(!only_tool_result_keys(r#"[1,2]"#));
        assert!(!only_tool_result_keys(r#"{"content":"#));
    }

    mod result_proptests {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{Value, json};

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(|n| json!(n)),
                "[a-z]{0,6}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 12, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn content() -> impl Strategy<Value = Value> {
            prop_oneof![
                "[a-z ]{0,8}".prop_map(|t| json!([{"type": "text", "text": t}])),
                Just(json!([])),
                Just(json!([{"type": "image", "data": "AAAA", "mimeType": "image/png"}])),
                Just(json!([{"type": "text"}])),
                value(),
            ]
        }

        /// A result object: `CallToolResult`'s keys, often with another
        /// result type's key (its value well-formed for that type or not).
        fn result() -> impl Strategy<Value = Value> {
            let key = prop_oneof![
                3 => Just("content"),
                2 => Just("structuredContent"),
                2 => Just("isError"),
                2 => Just("_meta"),
                1 => Just("resultType"),
                1 => Just("task"),
                1 => Just("tools"),
                1 => Just("action"),
                1 => Just("messages"),
                1 => Just("contents"),
                1 => Just("completion"),
                1 => Just("inputRequests"),
                1 => Just("prompts"),
                1 => Just("resources"),
            ];
            prop::collection::vec((key, content(), value(), any::<bool>()), 0..5).prop_map(
                |fields| {
                    let mut m = serde_json::Map::new();
                    for (k, c, v, b) in fields {
                        let v = match (k, b) {
                            ("content", _) => c,
                            ("isError", true) => json!(true),
                            ("_meta", true) => json!({"k": 1}),
                            ("resultType", true) => json!("complete"),
                            ("resultType", false) => json!("input_required"),
                            ("task", true) => json!({"taskId": "t", "status": "working",
                                "createdAt": "2026-12-06T00:00:00Z",
                                "lastUpdatedAt": "2026-12-06T00:00:00Z", "ttl": 1000}),
                            ("tools" | "messages" | "contents" | "prompts" | "resources", true) => {
                                json!([])
                            }
                            ("action", true) => json!("accept"),
                            ("completion", true) => json!({"values": []}),
                            ("inputRequests", true) => json!({}),
                            _ => v,
                        };
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]
            #[test]
            fn a_tool_results_direct_read_agrees_with_rmcps_untagged_read(r in result()) {
                let text = r.to_string();
                let untagged = serde_json::from_str::<ServerResult>(&text)
                    .map(|v| serde_json::to_value(v).unwrap())
                    .map_err(|e| e.to_string());
                let direct = read_result(&text, Expect::ToolResult)
                    .map(|v| serde_json::to_value(v).unwrap())
                    .map_err(|e| e.to_string());
                prop_assert_eq!(direct, untagged);
                // And which variant: the same.
                let a = serde_json::from_str::<ServerResult>(&text).ok().map(|v| std::mem::discriminant(&v));
                let b = read_result(&text, Expect::ToolResult).ok().map(|v| std::mem::discriminant(&v));
                prop_assert_eq!(a, b);
            }
        }
    }
}
