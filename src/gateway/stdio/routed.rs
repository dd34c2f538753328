//! [`Routed`]: a stdio upstream's stdout as rmcp reads it, less the answers
//! to [`Lane`] calls.
//!
//! It reads the upstream's output in chunks and looks at each complete line
//! (the MCP stdio transport delimits messages by newlines): a line the lane
//! takes ([`Lane::deliver`]: an answer to one of its calls) is removed;
//! every other byte is handed on to rmcp's reader unchanged and in order,
//! so rmcp parses, ignores or answers it exactly as it did reading stdout
//! itself. Order matters: the notifications an upstream sends before an
//! answer reach rmcp (and are counted for `RelayState::settle`) before the
//! answer reaches its caller, because the answer's line is only looked at
//! once everything before it has been handed on.
//!
//! A line longer than [`LINE_LIMIT`] (rmcp's own limit) is handed on as it
//! comes, for rmcp to discard, without being kept here. When the output
//! ends, the lane is closed: its waiting calls fail at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

use super::lane::Lane;

/// The longest line looked at: rmcp's limit for one message.
pub const LINE_LIMIT: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;

const CHUNK: usize = 16 * 1024;

pub struct Routed<R> {
    inner: R,
    lane: Arc<Lane>,
    /// Read from the upstream, not yet handed on or taken.
    buf: BytesMut,
    /// The first `pass` bytes of `buf` are to be handed on.
    pass: usize,
    /// Where the search for the next newline resumes.
    scanned: usize,
    /// Handing on an over-long line until its newline.
    skipping: bool,
    eof: bool,
    chunk: Box<[u8; CHUNK]>,
}

impl<R> Routed<R> {
    pub fn new(inner: R, lane: Arc<Lane>) -> Self {
        Self {
            inner,
            lane,
            buf: BytesMut::new(),
            pass: 0,
            scanned: 0,
            skipping: false,
            eof: false,
            chunk: Box::new([0; CHUNK]),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Routed<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pass > 0 {
                let n = this.pass.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.advance(n);
                this.pass -= n;
                this.scanned = this.scanned.saturating_sub(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(i) = memchr(&this.buf[this.scanned..]) {
                let end = this.scanned + i + 1;
                this.scanned = 0;
                if this.skipping {
                    this.skipping = false;
                    this.pass = end;
                    continue;
                }
                let mut line = this.buf.split_to(end);
                if !this.lane.deliver(&mut line) {
                    // Not the lane's: back in front, to be handed on.
                    line.unsplit(std::mem::take(&mut this.buf));
                    this.buf = line;
                    this.pass = end;
                }
                continue;
            }
            this.scanned = this.buf.len();
            if this.skipping || this.buf.len() > LINE_LIMIT {
                this.skipping = true;
                this.pass = this.buf.len();
                if this.pass > 0 {
                    continue;
                }
            }
            if this.eof {
                // A last line without its newline: rmcp's to judge.
                this.pass = this.buf.len();
                if this.pass > 0 {
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.chunk[..]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    if got.is_empty() {
                        this.eof = true;
                        this.lane.close();
                    } else {
                        this.buf.extend_from_slice(got);
                    }
                }
            }
        }
    }
}

impl<R> Drop for Routed<R> {
    fn drop(&mut self) {
        self.lane.close();
    }
}

fn memchr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == b'\n')
}
