//! Property tests of what dispatch reads before it decides to serve a
//! message itself: whether a POST without a session opens one
//! ([`super::opens_session`]) and the headers of a session's POST
//! ([`super::plain_session_request`], RFC 9110 §12.5.1 quality values).
//! The envelope itself is property-tested in `crate::mcp::envelope_proptests`.

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage};

use super::{accepts_events, opens_session, plain_session_request, session_era};
use crate::mcp::envelope_proptests::client_request;

/// `type/subtype`, in any case.
fn cased(s: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), s.len()).prop_map(move |up| {
        s.chars()
            .zip(up)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// A media range that accepts: no `q`, or a non-zero one, maybe other
/// parameters.
fn accepting(essence: &'static str) -> impl Strategy<Value = String> {
    (
        cased(essence),
        proptest::option::of(prop_oneof![
            Just("1"),
            Just("0.5"),
            Just("0.001"),
            Just("1.000")
        ]),
        "( ?; ?charset=utf-8)?",
    )
        .prop_map(|(e, q, p)| match q {
            Some(q) => format!("{e}{p};q={q}"),
            None => format!("{e}{p}"),
        })
}

fn refusing(essence: &'static str) -> impl Strategy<Value = String> {
    (
        cased(essence),
        prop_oneof![Just("q=0"), Just("q=0.0"), Just("Q=0.000"), Just(" q = 0 ")],
    )
        .prop_map(|(e, q)| format!("{e};{q}"))
}

fn other_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("text/html"),
        Just("*/*"),
        Just("application/*"),
        Just("text/plain;q=0.1")
    ]
    .prop_map(str::to_string)
}

/// Accept header values: the ranges, in any order, in one or several
/// headers, with optional white space.
fn accept_headers(ranges: Vec<String>, split: usize) -> Vec<String> {
    let at = split % (ranges.len() + 1);
    let (a, b) = ranges.split_at(at);
    [a, b]
        .into_iter()
        .filter(|part| !part.is_empty())
        .map(|part| part.join(" ,  "))
        .collect()
}

fn headers(accept: &[String], content_type: &str, version: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    for a in accept {
        h.append("accept", HeaderValue::from_str(a).unwrap());
    }
    h.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    if let Some(v) = version {
        h.insert("mcp-protocol-version", HeaderValue::from_str(v).unwrap());
    }
    h
}

fn session_version() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop_oneof![
        Just("2024-11-05"),
        Just("2025-03-26"),
        Just("2025-06-18"),
        Just("2025-11-25")
    ])
}

proptest! {
    #[test]
    fn only_an_initialize_whose_version_header_is_absent_or_agrees_opens_a_session(
        (v, method) in client_request(),
        header in proptest::option::of(prop_oneof![
            Just("2025-06-18"), Just("2025-03-26"), Just("2026-07-28"), Just("1999-01-01")
        ])
    ) {
        let m: ClientJsonRpcMessage = serde_json::from_value(v.clone()).unwrap();
        let JsonRpcMessage::Request(r) = m else {
            return Err(TestCaseError::fail(format!("{v} is not a request")));
        };
        let both = ["application/json, text/event-stream".to_string()];
        let h = headers(&both, "application/json", header);
        // The generated initialize names 2025-06-18 in its body.
        let agrees = header.is_none_or(|h| h == "2025-06-18");
        prop_assert_eq!(opens_session(&h, &r.request), method == "initialize" && agrees, "{}", v);
        // Refused by rmcp whatever it is: without both types, or not JSON.
        let json_only = ["application/json".to_string()];
        prop_assert!(!opens_session(&headers(&json_only, "application/json", header), &r.request));
        prop_assert!(!opens_session(&headers(&both, "text/plain", header), &r.request));
    }

    #[test]
    fn a_post_accepting_both_types_and_sending_json_is_plain(
        json in accepting("application/json"), sse in accepting("text/event-stream"),
        others in proptest::collection::vec(other_type(), 0..3),
        swap in any::<bool>(), split in any::<usize>(),
        content_type in (cased("application/json"), "(; ?charset=utf-8)?").prop_map(|(c, p)| format!("{c}{p}")),
        version in session_version()
    ) {
        let mut ranges = others;
        if swap { ranges.extend([sse, json]) } else { ranges.extend([json, sse]) }
        let accept = accept_headers(ranges, split);
        prop_assert!(plain_session_request(&headers(&accept, &content_type, version)), "{:?}", accept);
    }

    #[test]
    fn a_post_refusing_or_missing_a_type_or_not_sending_json_is_not_plain(
        json in accepting("application/json"), sse in accepting("text/event-stream"),
        json_off in refusing("application/json"), sse_off in refusing("text/event-stream"),
        others in proptest::collection::vec(other_type(), 0..3),
        which in 0usize..6, split in any::<usize>(),
        version in session_version()
    ) {
        let mut ranges = others;
        let mut content_type = "application/json";
        let mut version = version;
        match which {
            0 => ranges.push(sse),
            1 => ranges.push(json),
            2 => ranges.extend([json_off, sse]),
            3 => ranges.extend([json, sse_off]),
            4 => { ranges.extend([json, sse]); content_type = "text/plain" }
            _ => { ranges.extend([json, sse]); version = Some("2026-07-28") }
        }
        let accept = accept_headers(ranges, split);
        prop_assert!(!plain_session_request(&headers(&accept, content_type, version)), "{:?}", accept);
    }

    #[test]
    fn header_checks_never_panic_on_any_header_bytes(
        values in proptest::collection::vec(
            (prop_oneof![Just("accept"), Just("content-type"), Just("mcp-protocol-version")],
             proptest::collection::vec(any::<u8>(), 0..64)),
            0..6)
    ) {
        let mut h = HeaderMap::new();
        for (name, bytes) in values {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.append(name, v);
            }
        }
        let _ = plain_session_request(&h);
        let _ = session_era(&h);
        let _ = accepts_events(&h);
    }
}
