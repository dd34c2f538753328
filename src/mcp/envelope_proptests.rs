//! Property tests of the JSON-RPC envelope as mcpgate parses it: a client's
//! message (`ClientJsonRpcMessage`, the same type as the legacy transport's
//! `RxJsonRpcMessage<RoleServer>`) read from a `POST /messages/` body
//! ([`super::sse`]), a queued legacy message, or a Streamable HTTP POST
//! ([`super::inline`]); and a server's message (`ServerJsonRpcMessage`)
//! read from an upstream (`crate::gateway::sse_client`).
//!
//! For each: no panic on any bytes, any JSON, or JSON nested past serde's
//! recursion limit; every valid message generated here parses, as the
//! kind it is, with its id; and parse → serialize → parse is stable (the
//! gateway forwards what it parsed by serializing it again).
//!
//! The generators are shared with the SSE event parser's properties.

use proptest::prelude::*;
use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::RxJsonRpcMessage;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// The kinds of JSON-RPC message (JSON-RPC 2.0 §4, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Notification,
    Response,
    Error,
}

pub(crate) fn kind_of<A, B, C>(m: &JsonRpcMessage<A, B, C>) -> Kind {
    match m {
        JsonRpcMessage::Request(_) => Kind::Request,
        JsonRpcMessage::Notification(_) => Kind::Notification,
        JsonRpcMessage::Response(_) => Kind::Response,
        JsonRpcMessage::Error(_) => Kind::Error,
    }
}

/// Any JSON value, without floats (whose text form need not round-trip).
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map("[a-zA-Z_]{1,8}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

pub(crate) fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..i64::MAX).prop_map(Value::from),
        "[A-Za-z0-9_-]{1,24}".prop_map(Value::String)
    ]
}

fn text() -> impl Strategy<Value = String> {
    ".{0,24}"
}

fn envelope(id: Option<Value>, method: &str, params: Option<Value>) -> Value {
    let mut m = json!({"jsonrpc": "2.0", "method": method});
    if let Some(id) = id {
        m["id"] = id;
    }
    if let Some(p) = params {
        m["params"] = p;
    }
    m
}

fn with_meta(params: Value, progress: Option<Value>) -> Value {
    match (params, progress) {
        (Value::Object(mut p), Some(t)) => {
            p.insert("_meta".into(), json!({"progressToken": t}));
            Value::Object(p)
        }
        (p, _) => p,
    }
}

/// Valid client requests: (message, method).
pub(crate) fn client_request() -> impl Strategy<Value = (Value, &'static str)> {
    let params = prop_oneof![
        Just(("ping", json!({}))),
        Just(("tools/list", json!({}))),
        text().prop_map(|c| ("tools/list", json!({"cursor": c}))),
        (text(), object()).prop_map(|(n, a)| ("tools/call", json!({"name": n, "arguments": a}))),
        Just(("resources/list", json!({}))),
        Just(("resources/templates/list", json!({}))),
        text().prop_map(|u| ("resources/read", json!({"uri": u}))),
        text().prop_map(|u| ("resources/subscribe", json!({"uri": u}))),
        Just(("prompts/list", json!({}))),
        (
            text(),
            proptest::collection::btree_map("[a-z]{1,6}", text(), 0..3)
        )
            .prop_map(|(n, a)| ("prompts/get", json!({"name": n, "arguments": a}))),
        prop_oneof![Just("debug"), Just("info"), Just("warning"), Just("error")]
            .prop_map(|l| ("logging/setLevel", json!({"level": l}))),
        (text(), text()).prop_map(|(n, v)| (
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": n, "version": v}})
        )),
    ];
    (id(), params, proptest::option::of(id())).prop_map(|(id, (method, p), progress)| {
        (
            envelope(Some(id), method, Some(with_meta(p, progress))),
            method,
        )
    })
}

fn client_notification() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(envelope(None, "notifications/initialized", None)),
        Just(envelope(None, "notifications/roots/list_changed", None)),
        (id(), proptest::option::of(text())).prop_map(|(r, reason)| {
            let mut p = json!({"requestId": r});
            if let Some(reason) = reason {
                p["reason"] = reason.into();
            }
            envelope(None, "notifications/cancelled", Some(p))
        }),
        (id(), 0u32..1000, proptest::option::of(1u32..1000)).prop_map(|(t, n, total)| {
            let mut p = json!({"progressToken": t, "progress": n});
            if let Some(total) = total {
                p["total"] = total.into();
            }
            envelope(None, "notifications/progress", Some(p))
        }),
    ]
}

fn error(id: Value) -> impl Strategy<Value = Value> {
    (any::<i32>(), text(), proptest::option::of(json_value())).prop_map(move |(code, msg, data)| {
        let mut e = json!({"code": code, "message": msg});
        if let Some(d) = data {
            e["data"] = d;
        }
        json!({"jsonrpc": "2.0", "id": id.clone(), "error": e})
    })
}

fn client_response() -> impl Strategy<Value = Value> {
    let result = prop_oneof![
        Just(json!({})),
        proptest::collection::vec("file:///[a-z]{1,8}", 0..3).prop_map(
            |r| json!({"roots": r.iter().map(|u| json!({"uri": u})).collect::<Vec<_>>()})
        ),
        prop_oneof![Just("decline"), Just("cancel")].prop_map(|a| json!({"action": a})),
    ];
    (id(), result).prop_map(|(id, r)| json!({"jsonrpc": "2.0", "id": id, "result": r}))
}

/// Any valid client message, with its kind and id.
pub(crate) fn client_message() -> impl Strategy<Value = (Value, Kind)> {
    prop_oneof![
        client_request().prop_map(|(m, _)| (m, Kind::Request)),
        client_notification().prop_map(|m| (m, Kind::Notification)),
        client_response().prop_map(|m| (m, Kind::Response)),
        id().prop_flat_map(error).prop_map(|m| (m, Kind::Error)),
    ]
}

/// Any valid server message (what an upstream sends), with its kind.
pub(crate) fn server_message() -> impl Strategy<Value = (Value, Kind)> {
    let result = prop_oneof![
        Just(json!({})),
        proptest::collection::vec("[a-z_]{1,10}", 0..3).prop_map(|names| json!({"tools":
            names.iter().map(|n| json!({"name": n, "inputSchema": {"type": "object"}})).collect::<Vec<_>>()})),
        text().prop_map(|t| json!({"content": [{"type": "text", "text": t}], "isError": false})),
    ];
    let request = prop_oneof![
        Just(("ping", json!({}))),
        Just(("roots/list", json!({}))),
        (text(), 1u32..4096).prop_map(|(t, n)| (
            "sampling/createMessage",
            json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": t}}],
            "maxTokens": n})
        )),
    ];
    let notification = prop_oneof![
        Just(envelope(None, "notifications/tools/list_changed", None)),
        Just(envelope(None, "notifications/resources/list_changed", None)),
        json_value().prop_map(|d| envelope(
            None,
            "notifications/message",
            Some(json!({"level": "info", "data": d}))
        )),
        (id(), 0u32..1000).prop_map(|(t, n)| envelope(
            None,
            "notifications/progress",
            Some(json!({"progressToken": t, "progress": n}))
        )),
    ];
    prop_oneof![
        (id(), result).prop_map(|(id, r)| (
            json!({"jsonrpc": "2.0", "id": id, "result": r}),
            Kind::Response
        )),
        (id(), request).prop_map(|(id, (m, p))| (envelope(Some(id), m, Some(p)), Kind::Request)),
        notification.prop_map(|m| (m, Kind::Notification)),
        id().prop_flat_map(error).prop_map(|m| (m, Kind::Error)),
    ]
}

/// Bytes a client might send instead: anything, JSON of any shape, and
/// envelopes with fields of the wrong types.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        any::<String>().prop_map(String::into_bytes),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (
            proptest::option::of(json_value()),
            proptest::option::of(json_value()),
            proptest::option::of(prop_oneof![".{0,12}".prop_map(Value::String), json_value()]),
            proptest::option::of(json_value()),
            proptest::option::of(json_value()),
            proptest::option::of(json_value()),
        )
            .prop_map(|(v, id, method, params, result, error)| {
                let mut m = Map::new();
                for (k, x) in [
                    ("jsonrpc", v),
                    ("id", id),
                    ("method", method),
                    ("params", params),
                    ("result", result),
                    ("error", error),
                ] {
                    if let Some(x) = x {
                        m.insert(k.into(), x);
                    }
                }
                Value::Object(m).to_string().into_bytes()
            }),
    ]
}

/// parse → serialize → parse gives the same message.
fn assert_stable<T: Serialize + DeserializeOwned>(m: &T) -> Result<(), TestCaseError> {
    let printed = serde_json::to_string(m).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let again: T = serde_json::from_str(&printed)
        .map_err(|e| TestCaseError::fail(format!("{printed} does not parse again: {e}")))?;
    prop_assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(m).unwrap(),
        "{}",
        printed
    );
    Ok(())
}

proptest! {
    #[test]
    fn a_client_body_of_any_bytes_never_panics_and_what_parses_is_stable(bytes in garbage()) {
        if let Ok(m) = serde_json::from_slice::<ClientJsonRpcMessage>(&bytes) {
            assert_stable(&m)?;
        }
        if let Ok(m) = serde_json::from_slice::<ServerJsonRpcMessage>(&bytes) {
            assert_stable(&m)?;
        }
    }

    #[test]
    fn the_fast_parse_agrees_with_rmcps_on_any_bytes(bytes in garbage()) {
        crate::mcp::parse::tests::agrees(&bytes).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn every_valid_client_message_parses_as_its_kind_and_is_stable((v, kind) in client_message()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        crate::mcp::parse::tests::agrees(&bytes).map_err(TestCaseError::fail)?;
        // The legacy transport's body type is the Streamable HTTP one.
        let m: RxJsonRpcMessage<RoleServer> = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{v} does not parse: {e}")))?;
        let m: ClientJsonRpcMessage = m;
        prop_assert_eq!(kind_of(&m), kind);
        let printed = serde_json::to_value(&m).unwrap();
        prop_assert_eq!(printed.get("id"), v.get("id"));
        prop_assert_eq!(printed.get("method"), v.get("method"));
        assert_stable(&m)?;
    }

    #[test]
    fn every_valid_server_message_parses_as_its_kind_and_is_stable((v, kind) in server_message()) {
        let m: ServerJsonRpcMessage = serde_json::from_value(v.clone())
            .map_err(|e| TestCaseError::fail(format!("{v} does not parse: {e}")))?;
        prop_assert_eq!(kind_of(&m), kind);
        let printed = serde_json::to_value(&m).unwrap();
        prop_assert_eq!(printed.get("id"), v.get("id"));
        assert_stable(&m)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// serde_json stops at 128 levels, so a deep body is an error, not a
    /// stack overflow (which would abort the process).
    #[test]
    fn deeply_nested_bodies_are_refused_without_overflowing_the_stack(
        depth in 100usize..20_000, open in prop_oneof![Just("["), Just("{\"a\":")], where_ in 0usize..3
    ) {
        let close = if open == "[" { "]" } else { "}" };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let body = match where_ {
            0 => nested,
            1 => format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"a":{nested}}}}}}}"#),
            _ => format!(r#"{{"jsonrpc":"2.0","id":{nested},"result":{{}}}}"#),
        };
        let client = serde_json::from_str::<ClientJsonRpcMessage>(&body);
        let server = serde_json::from_str::<ServerJsonRpcMessage>(&body);
        if depth > 130 {
            prop_assert!(client.is_err() && server.is_err());
        }
    }
}
