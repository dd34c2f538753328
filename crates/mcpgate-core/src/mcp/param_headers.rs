//! `Mcp-Param-*` headers (SEP-2243, MCP 2026-07-28 Streamable HTTP,
//! "Custom headers").
//!
//! A tool's input schema may annotate a property with `x-mcp-header: Name`
//! (reached from the schema root through `properties` alone). A client
//! calling the tool then repeats that argument in the header
//! `Mcp-Param-Name`, so that intermediaries can route on it without reading
//! the body: a string as it is, a number or boolean as its JSON text, and a
//! value that cannot travel as a header value (non-ASCII or control
//! characters, leading or trailing whitespace) as `=?base64?<Base64 of its
//! UTF-8>?=`. A value without that exact wrapper is literal.
//!
//! The server checks every annotated argument against its header and
//! rejects the request (HTTP 400, JSON-RPC `-32020` HeaderMismatch) when
//! the header is missing although the body has the value, is present
//! although the body has none, does not decode (the Base64 alphabet with
//! canonical padding, then UTF-8), or differs from the body. The body stays
//! the authority: a request that passes is served from its body; headers
//! are never read for a decision.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// The prefix of a custom header's name.
pub const PREFIX: &str = "mcp-param-";
const B64_OPEN: &str = "=?base64?";
const B64_CLOSE: &str = "?=";

/// Why a request's custom headers do not match its body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("missing Mcp-Param-{header} header for the argument `{path}`")]
    Missing { header: String, path: String },
    #[error("unexpected Mcp-Param-{header} header: the argument `{path}` is absent or null")]
    Unexpected { header: String, path: String },
    #[error("the Mcp-Param-{header} header is not valid Base64 (with padding) of UTF-8 text")]
    Undecodable { header: String },
    #[error("the Mcp-Param-{header} header does not match the argument `{path}` of the body")]
    Differs { header: String, path: String },
    #[error("the Mcp-Param-{header} header is invalid: {why}")]
    Invalid { header: String, why: String },
}

/// The annotated properties of an input schema: (path of property names
/// from the root, header name after `Mcp-Param-`).
pub fn annotations(schema: &Map<String, Value>) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    collect(schema, &mut Vec::new(), &mut out);
    out
}

/// Whether any property of the schema, at any depth, is annotated (what
/// [`annotations`] finds), without building the list.
pub fn has_annotations(schema: &Map<String, Value>) -> bool {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return false;
    };
    props.values().any(|sub| match sub {
        Value::Object(sub) => {
            matches!(sub.get("x-mcp-header"), Some(Value::String(h)) if !h.is_empty())
                || has_annotations(sub)
        }
        _ => false,
    })
}

fn collect(
    schema: &Map<String, Value>,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return;
    };
    for (name, sub) in props {
        let Value::Object(sub) = sub else { continue };
        path.push(name.clone());
        if let Some(Value::String(h)) = sub.get("x-mcp-header")
            && !h.is_empty()
        {
            out.push((path.clone(), h.clone()));
        }
        collect(sub, path, out);
        path.pop();
    }
}

/// The text a header carries for a JSON value; `None` for null and for
/// arrays and objects (which are never sent as headers).
fn header_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decodes a header value: Base64 inside the exact wrapper, literal
/// otherwise. `None` if the wrapped text does not decode.
pub fn decode(raw: &str) -> Option<String> {
    match raw
        .strip_prefix(B64_OPEN)
        .and_then(|r| r.strip_suffix(B64_CLOSE))
    {
        Some(inner) => STANDARD
            .decode(inner)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(raw.to_string()),
    }
}

/// Checks the custom headers of a `tools/call` against its `arguments` and
/// the tool's input `schema`. `header(name)` gives the one value of
/// `Mcp-Param-<name>` (case-insensitive), `Ok(None)` if absent, or why it
/// is unusable (repeated, not visible ASCII).
pub fn check<'h>(
    schema: &Map<String, Value>,
    arguments: Option<&Value>,
    header: impl Fn(&str) -> Result<Option<&'h str>, String>,
) -> Result<(), Mismatch> {
    for (path, name) in annotations(schema) {
        let dotted = path.join(".");
        let body = arguments
            .and_then(|a| path.iter().try_fold(a, |v, key| v.get(key)))
            .and_then(header_text);
        let sent = header(&name).map_err(|why| Mismatch::Invalid {
            header: name.clone(),
            why,
        })?;
        match (sent, body) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(Mismatch::Missing {
                    header: name,
                    path: dotted,
                });
            }
            (Some(_), None) => {
                return Err(Mismatch::Unexpected {
                    header: name,
                    path: dotted,
                });
            }
            (Some(raw), Some(expected)) => {
                let decoded = decode(raw).ok_or_else(|| Mismatch::Undecodable {
                    header: name.clone(),
                })?;
                if decoded != expected {
                    return Err(Mismatch::Differs {
                        header: name,
                        path: dotted,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Map<String, Value> {
        match json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "n": {"type": "integer", "x-mcp-header": "N"},
                "nested": {"type": "object", "properties": {
                    "flag": {"type": "boolean", "x-mcp-header": "Flag"}
                }},
                "plain": {"type": "string"}
            }
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn headers<'a>(
        pairs: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Result<Option<&'a str>, String> + 'a {
        move |name| {
            Ok(pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v))
        }
    }

    #[test]
    fn annotations_are_found_along_properties_chains() {
        let mut a = annotations(&schema());
        a.sort();
        assert_eq!(
            a,
            vec![
                (vec!["n".to_string()], "N".to_string()),
                (vec!["nested".into(), "flag".into()], "Flag".into()),
                (vec!["region".into()], "Region".into()),
            ]
        );
    }

    #[test]
    fn has_annotations_agrees_with_annotations() {
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert!(has_annotations(&schema()));
        let only_nested = obj(
            json!({"properties": {"a": {"type": "object", "properties": {
            "b": {"type": "string", "x-mcp-header": "B"}}}}}),
        );
        assert!(has_annotations(&only_nested));
        assert_eq!(annotations(&only_nested).len(), 1);
        for none in [
            json!({"type": "object"}),
            json!({"properties": {"text": {"type": "string"}}}),
            json!({"properties": {"text": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"text": {"type": "string", "x-mcp-header": 7}}}),
            json!({"properties": "not an object"}),
        ] {
            let m = obj(none.clone());
            assert!(!has_annotations(&m), "{none}");
            assert!(annotations(&m).is_empty(), "{none}");
        }
    }

    #[test]
    fn matching_headers_pass_literal_or_base64() {
        let args = json!({"region": "Hello", "n": 0, "nested": {"flag": false}});
        let ok = [
            ("region", "=?base64?SGVsbG8=?="),
            ("N", "0"),
            ("flag", "false"),
        ];
        assert_eq!(check(&schema(), Some(&args), headers(&ok)), Ok(()));
        let literal = json!({"region": "=?base64?SGVsbG8="});
        assert_eq!(
            check(
                &schema(),
                Some(&literal),
                headers(&[("Region", "=?base64?SGVsbG8=")])
            ),
            Ok(()),
            "without the closing ?= the value is literal"
        );
    }

    #[test]
    fn bad_base64_is_rejected() {
        let args = json!({"region": "Hello"});
        for raw in ["=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?="] {
            assert!(matches!(
                check(&schema(), Some(&args), headers(&[("Region", raw)])),
                Err(Mismatch::Undecodable { .. })
            ));
        }
    }

    #[test]
    fn a_missing_unexpected_or_different_header_is_rejected() {
        let args = json!({"region": "eu"});
        assert!(matches!(
            check(&schema(), Some(&args), headers(&[])),
            Err(Mismatch::Missing { .. })
        ));
        assert!(matches!(
            check(&schema(), Some(&json!({})), headers(&[("Region", "eu")])),
            Err(Mismatch::Unexpected { .. })
        ));
        assert!(matches!(
            check(&schema(), Some(&args), headers(&[("Region", "us")])),
            Err(Mismatch::Differs { .. })
        ));
    }

    #[test]
    fn no_arguments_and_no_headers_pass() {
        assert_eq!(check(&schema(), None, headers(&[])), Ok(()));
    }
}
