//! Property tests of the event-stream parser the legacy SSE upstream client
//! reads with ([`super::SseStream`], the WHATWG HTML "event stream"
//! format): no panic on any bytes, and the same events however they are
//! split into reads; a well-formed stream gives its events; lines the
//! format says to ignore are ignored; and the
//! events mcpgate itself writes (axum's `Event` with a JSON-RPC message as
//! `data`, as `crate::mcp::sse` and `crate::mcp::inline::reply` send them)
//! read back as the same messages.

use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse as SseResponse};
use futures::StreamExt;
use proptest::prelude::*;
use rmcp::RoleClient;
use rmcp::service::RxJsonRpcMessage;
use sse_stream::Sse;

use super::SseStream;

use crate::mcp::envelope_proptests::{kind_of, server_message};

/// The events, or the first error, from `bytes` read in `chunks`.
fn read(chunks: Vec<Vec<u8>>) -> (Vec<Sse>, Option<String>) {
    let stream = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
    );
    let mut events = SseStream::from_byte_stream(stream);
    futures::executor::block_on(async {
        let mut out = Vec::new();
        while let Some(e) = events.next().await {
            match e {
                Ok(e) => out.push(e),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        (out, None)
    })
}

/// `bytes` cut at the given points.
fn split(bytes: &[u8], cuts: &[proptest::sample::Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for a in at.into_iter().chain([bytes.len()]) {
        out.push(bytes[from..a].to_vec());
        from = a;
    }
    out
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

/// A well-formed event: optional name and id, one or more data lines,
/// maybe a comment; with what the parser should give back.
fn event() -> impl Strategy<Value = (Vec<String>, Sse)> {
    (
        proptest::option::of("[a-z]{1,10}"),
        proptest::option::of("[ -~]{0,10}"),
        proptest::collection::vec("[^\r\n]{0,20}", 1..4),
        proptest::option::of("[^\r\n]{0,10}"),
    )
        .prop_map(|(name, id, data, comment)| {
            let mut lines = Vec::new();
            if let Some(c) = comment {
                lines.push(format!(":{c}"));
            }
            if let Some(n) = &name {
                lines.push(format!("event: {n}"));
            }
            for d in &data {
                lines.push(format!("data: {d}"));
            }
            if let Some(i) = &id {
                lines.push(format!("id: {i}"));
            }
            let sse = Sse {
                event: name,
                data: Some(data.join("\n")),
                id,
                retry: None,
            };
            (lines, sse)
        })
}

/// The bytes axum writes for these events.
fn written(events: Vec<Event>) -> Vec<u8> {
    let body = SseResponse::new(futures::stream::iter(
        events.into_iter().map(Ok::<_, std::convert::Infallible>),
    ))
    .into_response()
    .into_body();
    futures::executor::block_on(axum::body::to_bytes(body, usize::MAX))
        .unwrap()
        .to_vec()
}

/// Found by the property tests: `sse_stream`, used before, ended the stream
/// at a line without a colon, so the event after it was lost.
#[test]
fn a_line_without_a_colon_does_not_end_the_stream() {
    let (events, error) = read(vec![b"a\nevent: a\ndata: \n\n".to_vec()]);
    assert_eq!(error, None);
    assert_eq!(events, vec![Sse::default().event("a").data("")]);
}

proptest! {
    #[test]
    fn any_bytes_give_the_same_events_however_they_are_split(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            "((data|event|id|retry|)(: ?)?[^\r\n]{0,12}(\r\n|\n|\r)){0,12}".prop_map(String::into_bytes),
        ],
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
        bom in any::<bool>()
    ) {
        let bytes = if bom { [b"\xEF\xBB\xBF".as_slice(), &bytes].concat() } else { bytes };
        prop_assert_eq!(read(split(&bytes, &cuts)), read(vec![bytes]));
    }

    #[test]
    fn a_well_formed_stream_gives_its_events_however_it_is_split(
        events in proptest::collection::vec(event(), 0..5),
        ends in proptest::collection::vec(line_end(), 64),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        // A CR then an LF would be one CRLF: after a CR, an LF is a CRLF.
        let mut ends = ends.into_iter().cycle();
        let mut text = String::new();
        let mut end = |text: &mut String| {
            let e = ends.next().unwrap();
            text.push_str(if e == "\n" && text.ends_with('\r') { "\r\n" } else { e });
        };
        for (lines, _) in &events {
            for l in lines {
                text.push_str(l);
                end(&mut text);
            }
            end(&mut text);
        }
        let want: Vec<Sse> = events.into_iter().map(|(_, e)| e).collect();
        let whole = read(vec![text.clone().into_bytes()]);
        prop_assert_eq!(&whole, &(want.clone(), None), "{:?}", text);
        prop_assert_eq!(read(split(text.as_bytes(), &cuts)), (want, None), "{:?}", text);
    }

    /// WHATWG HTML §9.2.6: a field other than `event`, `data`, `id` and
    /// `retry` is ignored, a line without a colon is a field with an empty
    /// value, a `retry` that is not digits is ignored, and the last `event`
    /// and `id` of an event win.
    #[test]
    fn lines_the_format_says_to_ignore_are_ignored(
        events in proptest::collection::vec(event(), 1..4),
        noise in proptest::collection::vec(prop_oneof![
            "[a-z]{1,8}(: ?[^\r\n]{0,10})?".prop_filter("not a field", |l| {
                !["event", "data", "id", "retry"].iter().any(|f| l.split(':').next() == Some(*f))
            }),
            Just("retry: soon".to_string()),
            Just("event: overwritten".to_string()),
            Just("id: overwritten".to_string()),
        ], 4),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
    ) {
        let mut text = String::new();
        for ((lines, _), noise) in events.iter().zip(noise.iter().cycle()) {
            text.push_str(noise);
            text.push('\n');
            for l in lines {
                text.push_str(l);
                text.push('\n');
            }
            text.push('\n');
        }
        let want: Vec<Sse> = events
            .into_iter()
            .zip(noise.iter().cycle())
            .map(|((_, mut e), noise)| {
                if noise == "event: overwritten" && e.event.is_none() {
                    e.event = Some("overwritten".into());
                }
                if noise == "id: overwritten" && e.id.is_none() {
                    e.id = Some("overwritten".into());
                }
                e
            })
            .collect();
        prop_assert_eq!(read(split(text.as_bytes(), &cuts)), (want, None), "{:?}", text);
    }

    #[test]
    fn the_messages_mcpgate_writes_read_back_as_the_same_messages(
        messages in proptest::collection::vec(server_message(), 1..4),
        endpoint in "/[a-z]{1,8}/\\?session_id=[0-9a-f]{8}",
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        let parsed: Vec<RxJsonRpcMessage<RoleClient>> = messages
            .iter()
            .map(|(v, _)| serde_json::from_value(v.clone()).unwrap())
            .collect();
        let mut events = vec![Event::default().event("endpoint").data(&endpoint)];
        for m in &parsed {
            events.push(Event::default().event("message").data(serde_json::to_string(m).unwrap()));
        }
        let bytes = written(events);
        let (got, error) = read(split(&bytes, &cuts));
        prop_assert_eq!(error, None);
        prop_assert_eq!(got.len(), parsed.len() + 1);
        prop_assert_eq!(got[0].event.as_deref(), Some("endpoint"));
        prop_assert_eq!(got[0].data.as_deref(), Some(endpoint.as_str()));
        for ((e, m), (_, kind)) in got[1..].iter().zip(&parsed).zip(&messages) {
            prop_assert_eq!(e.event.as_deref(), Some("message"));
            let back: RxJsonRpcMessage<RoleClient> =
                serde_json::from_str(e.data.as_deref().unwrap_or_default()).unwrap();
            prop_assert_eq!(kind_of(&back), *kind);
            prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(m).unwrap());
        }
    }
}
