//! The event-stream parser of the legacy SSE upstream client
//! ([`super::sse_client`]), as the WHATWG HTML standard defines the format
//! (§9.2.6 "Interpreting an event stream"):
//!
//! - lines end with CRLF, LF or CR; one leading byte order mark is ignored;
//!   bytes that are not UTF-8 become U+FFFD;
//! - a line starting with `:` is a comment; a line without a colon is a
//!   field with an empty value; one space after the colon is dropped;
//! - `data` lines are joined with LF; the last `event` and `id` of an event
//!   win; a `retry` that is not all digits, an `id` with NUL and any other
//!   field are ignored;
//! - an empty line ends the event, which is dispatched if it had data; at
//!   the end of the stream a pending event is discarded.
//!
//! `sse_stream::SseStream`, used before, ended the stream at an unknown
//! field, a line without a colon, a repeated `event` or `id`, a bad `retry`
//! or bytes that are not UTF-8, and dropped the events already read in the
//! same chunk. Lines and events are bounded ([`MAX_EVENT_BYTES`]), so an
//! upstream cannot make mcpgate buffer without end.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
pub use sse_stream::Sse;

/// The longest line, and the most data in one event, read from an upstream.
pub const MAX_EVENT_BYTES: usize = 32 * 1024 * 1024;

/// Why an event stream ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Reading the body failed.
    #[error("the body could not be read: {0}")]
    Body(String),
    /// A line or an event's data passed [`MAX_EVENT_BYTES`].
    #[error("an event is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl Parser {
    /// Reads a chunk; complete events go to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut VecDeque<Sse>) -> Result<(), Error> {
        while !bytes.is_empty() {
            if std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
                bytes = &bytes[1..];
                continue;
            }
            let Some(end) = bytes.iter().position(|b| matches!(b, b'\n' | b'\r')) else {
                self.extend(bytes)?;
                break;
            };
            self.extend(&bytes[..end])?;
            self.after_cr = bytes[end] == b'\r';
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
            self.line = line;
            self.line.clear();
            bytes = &bytes[end + 1..];
        }
        Ok(())
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.line.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(Error::TooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut VecDeque<Sse>) -> Result<(), Error> {
        let line = if std::mem::replace(&mut self.started, true) {
            line
        } else {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        };
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "" => {} // a comment
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    if d.len() + 1 + value.len() > MAX_EVENT_BYTES {
                        return Err(Error::TooLarge);
                    }
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().or(self.retry);
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut VecDeque<Sse>) {
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.retry.take();
        if let Some(data) = self.data.take() {
            out.push_back(Sse {
                event,
                data: Some(data),
                id,
                retry,
            });
        }
    }
}

/// The events of a byte stream (a response body).
pub struct SseStream<S> {
    body: Pin<Box<S>>,
    parser: Parser,
    ready: VecDeque<Sse>,
    failed: Option<Error>,
    done: bool,
}

impl<S, B, E> SseStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    pub fn from_byte_stream(body: S) -> Self {
        Self {
            body: Box::pin(body),
            parser: Parser::default(),
            ready: VecDeque::new(),
            failed: None,
            done: false,
        }
    }
}

impl<S, B, E> Stream for SseStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    type Item = Result<Sse, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin (the body is boxed).
        let this = self.get_mut();
        loop {
            if let Some(e) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(e)));
            }
            if let Some(e) = this.failed.take() {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Err(e))) => this.failed = Some(Error::Body(e.to_string())),
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = this.parser.feed(chunk.as_ref(), &mut this.ready) {
                        this.failed = Some(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> (Vec<Sse>, Option<Error>) {
        let mut p = Parser::default();
        let mut out = VecDeque::new();
        for c in chunks {
            if let Err(e) = p.feed(c, &mut out) {
                return (out.into(), Some(e));
            }
        }
        (out.into(), None)
    }

    fn data(d: &str) -> Sse {
        Sse::default().data(d)
    }

    /// Found by the property tests: `sse_stream` ended the stream here, and
    /// lost the event before the line it refused.
    #[test]
    fn a_line_without_a_colon_or_an_unknown_field_is_ignored() {
        assert_eq!(
            events(&[b"data: a\n\nbogus\nfoo: bar\nevent: a\ndata: b\n\n"]),
            (vec![data("a"), data("b").event("a")], None)
        );
    }

    #[test]
    fn the_last_event_and_id_win_and_a_bad_retry_is_ignored() {
        assert_eq!(
            events(&[b"event: x\nevent: y\nid: 1\nid: 2\nretry: soon\ndata: d\n\n"]),
            (vec![data("d").event("y").id("2")], None)
        );
    }

    #[test]
    fn line_ends_may_be_split_between_chunks_and_a_bom_is_dropped() {
        assert_eq!(
            events(&[b"\xEF\xBB\xBFdata: a\r", b"\ndata: b\r", b"\r", b"\n"]),
            (vec![data("a\nb")], None)
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_nor_is_an_unfinished_one() {
        assert_eq!(events(&[b"event: x\n\ndata: pending"]), (vec![], None));
    }

    #[test]
    fn a_line_past_the_limit_ends_the_stream_after_the_events_before_it() {
        let long = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(
            events(&[b"data: a\n\ndata: ", &long]),
            (vec![data("a")], Some(Error::TooLarge))
        );
    }
}
