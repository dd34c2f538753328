//! Parsing a client's JSON-RPC message, fast for the requests that matter.
//!
//! rmcp's `ClientJsonRpcMessage` is an untagged union: its parse buffers
//! the message, checks its shape (`id`, `method`, `result`, `error`), and
//! then tries each of some twenty request types in turn, each failing with
//! a formatted error until one whose method matches. For a `tools/call`,
//! that was about a tenth of the server's CPU time per request
//! (docs/benchmarks.md, "Profile of workload 1").
//!
//! [`client_message`] reads the message's keys first, borrowing, without
//! building anything. A request (an `id`, a `method`, neither `result` nor
//! `error`) for `tools/call` or `tools/list` is then parsed as that request
//! type directly. Every other message, and a request of those methods whose
//! direct parse fails, gets rmcp's full parse, so the answer is always
//! exactly what rmcp's parse gives: rmcp's union takes the `tools/call`
//! (`tools/list`) request type for that method whenever its parameters
//! parse, and falls back to `CustomRequest` (or fails) when they do not,
//! which is what the full parse then does. The property test in
//! `envelope_proptests` checks this equivalence on generated messages and
//! on arbitrary bytes.

use std::fmt;

use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, JsonRpcRequest,
    ListToolsRequest,
};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

/// The message in `bytes`, as `serde_json::from_slice::<ClientJsonRpcMessage>`
/// would parse it (see the module documentation).
pub fn client_message(bytes: &[u8]) -> serde_json::Result<ClientJsonRpcMessage> {
    if let Ok(keys) = serde_json::from_slice::<Keys<'_>>(bytes)
        && keys.id
        && !keys.result_or_error
        && let Some(fast) = match keys.method {
            Some("tools/call") => serde_json::from_slice::<JsonRpcRequest<CallToolRequest>>(bytes)
                .ok()
                .map(|r| request(r, ClientRequest::CallToolRequest)),
            Some("tools/list") => serde_json::from_slice::<JsonRpcRequest<ListToolsRequest>>(bytes)
                .ok()
                .map(|r| request(r, ClientRequest::ListToolsRequest)),
            _ => None,
        }
    {
        return Ok(fast);
    }
    serde_json::from_slice(bytes)
}

fn request<R>(r: JsonRpcRequest<R>, kind: fn(R) -> ClientRequest) -> ClientJsonRpcMessage {
    JsonRpcMessage::Request(JsonRpcRequest {
        jsonrpc: r.jsonrpc,
        id: r.id,
        request: kind(r.request),
    })
}

/// Which of the keys that decide a message's shape a JSON object has, and
/// its method when that is a plain string. Only a JSON object without
/// escapes in its keys or method, and without a repeated `method`, reads
/// as `Keys`; anything else fails (and gets the full parse).
struct Keys<'a> {
    method: Option<&'a str>,
    id: bool,
    result_or_error: bool,
}

impl<'de> Deserialize<'de> for Keys<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys<'de>, A::Error> {
                let mut keys = Keys {
                    method: None,
                    id: false,
                    result_or_error: false,
                };
                while let Some(key) = map.next_key::<&'de str>()? {
                    match key {
                        "method" if keys.method.is_none() => {
                            keys.method = Some(map.next_value::<&'de str>()?);
                            continue;
                        }
                        "method" => return Err(serde::de::Error::custom("method twice")),
                        "id" => keys.id = true,
                        "result" | "error" => keys.result_or_error = true,
                        _ => {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(keys)
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fast parse and rmcp's agree: both fail, or both give the same
    /// message (compared as printed and as debugged, which shows the
    /// request's type and its extensions' `_meta`).
    pub(crate) fn agrees(bytes: &[u8]) -> Result<(), String> {
        let full = serde_json::from_slice::<ClientJsonRpcMessage>(bytes);
        let fast = client_message(bytes);
        match (full, fast) {
            (Err(_), Err(_)) => Ok(()),
            (Ok(a), Ok(b)) => {
                let (pa, pb) = (
                    serde_json::to_value(&a).map_err(|e| e.to_string())?,
                    serde_json::to_value(&b).map_err(|e| e.to_string())?,
                );
                if pa != pb || format!("{a:?}") != format!("{b:?}") {
                    return Err(format!("differ: {a:?} / {b:?}"));
                }
                Ok(())
            }
            (a, b) => Err(format!("one failed: {a:?} / {b:?}")),
        }
    }

    #[test]
    fn tools_requests_of_every_form_parse_as_rmcp_parses_them() {
        for m in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","_meta":{"progressToken":7}}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"n":1.5e300,"big":18446744073709551616,"u":"\u00e9\n"}},"extra":true}"#,
            r#"{"method":"tools/call","params":{"name":"echo"},"id":3,"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"cursor":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            // Each of these takes the full parse, for one reason or another.
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo"},"result":null}"#,
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo"},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","id":10,"method":"tools\/call","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","method":"tools/list","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"1.0","id":12,"method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","id":13,"method":"tools/list","params":{"cursor":5}}"#,
            r#"{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"echo"}} "#,
            r#"{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"echo"}}x"#,
            r#"[{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{"name":"echo"}}]"#,
            r#"{"jsonrpc":"2.0","id":17,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ] {
            agrees(m.as_bytes()).unwrap_or_else(|e| panic!("{m}: {e}"));
        }
    }

    #[test]
    fn a_tools_call_takes_the_fast_parse_and_is_a_call_tool_request() {
        let m = client_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
        )
        .unwrap();
        let JsonRpcMessage::Request(r) = m else {
            panic!("not a request")
        };
        let ClientRequest::CallToolRequest(c) = r.request else {
            panic!("not a tools/call")
        };
        assert_eq!(c.params.name, "echo");
        // The key scan alone reads the shape, borrowing.
        let k = serde_json::from_slice::<Keys<'_>>(br#"{"id":1,"method":"tools/call"}"#).unwrap();
        assert_eq!(
            (k.method, k.id, k.result_or_error),
            (Some("tools/call"), true, false)
        );
    }
}
