//! Logging: the subscriber the binary installs, and the guarantee that a
//! log line cannot be forged.
//!
//! Values a client controls (a `redirect_uri`, a `client_id`, a username,
//! a `state`, an error description quoting them) are logged as fields with
//! `?` (their `Debug` form: quoted, control characters escaped), never
//! interpolated into the message. As a second line of defence for anything
//! that slips through (an upstream's stderr, a library's message),
//! [`Escaping`] escapes, in the text format, every control character of an
//! event except the newline that ends it: one event is always one line.
//! The JSON format escapes on its own.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber: text (or JSON) to standard error,
/// filtered by `RUST_LOG` (default `info`).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    if json {
        builder.json().with_writer(std::io::stderr).init();
    } else {
        builder
            .with_writer(Escaping::new(std::io::stderr, ansi))
            .init();
    }
}

/// A [`MakeWriter`] whose writers escape control characters (see the
/// module documentation). The formatter writes each event with one
/// `write`, so each write is one event and only its last byte may be a
/// newline. With `ansi` (a terminal), `ESC` is kept for the colours.
#[derive(Clone, Copy)]
pub struct Escaping<M> {
    inner: M,
    ansi: bool,
}

impl<M> Escaping<M> {
    pub fn new(inner: M, ansi: bool) -> Self {
        Self { inner, ansi }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaping<M> {
    type Writer = EscapingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter {
            inner: self.inner.make_writer(),
            ansi: self.ansi,
        }
    }
}

pub struct EscapingWriter<W> {
    inner: W,
    ansi: bool,
}

/// `event` with its control characters escaped, except a final newline
/// (and `ESC` when `ansi`); `None` when nothing needs escaping.
pub fn escape_event(event: &[u8], ansi: bool) -> Option<Vec<u8>> {
    let body = event.strip_suffix(b"\n").unwrap_or(event);
    let needs = |b: u8| (b < 0x20 && !(ansi && b == 0x1b)) || b == 0x7f;
    if !body.iter().any(|&b| needs(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if needs(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    if body.len() < event.len() {
        out.push(b'\n');
    }
    Some(out)
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match escape_event(buf, self.ansi) {
            Some(escaped) => self.inner.write_all(&escaped)?,
            None => self.inner.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::escape_event;

    #[test]
    fn an_event_with_an_embedded_newline_stays_one_line() {
        let e = escape_event(b"INFO x redirect_uri=a\nINFO forged\n", false).unwrap();
        assert_eq!(e, b"INFO x redirect_uri=a\\nINFO forged\n");
    }

    #[test]
    fn carriage_returns_tabs_and_other_controls_are_escaped() {
        let e = escape_event(b"a\rb\tc\x07d\x7f\n", false).unwrap();
        assert_eq!(e, b"a\\rb\\tc\\x07d\\x7f\n");
    }

    #[test]
    fn a_clean_event_is_written_as_it_is() {
        assert_eq!(escape_event(b"INFO all fine\n", false), None);
    }

    #[test]
    fn escape_is_kept_for_colours_on_a_terminal_only() {
        assert_eq!(escape_event(b"\x1b[32mINFO\x1b[0m\n", true), None);
        assert_eq!(
            escape_event(b"\x1b[32m\n", false).unwrap(),
            b"\\x1b[32m\n".to_vec()
        );
    }
}
