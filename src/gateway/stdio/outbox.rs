//! [`Outbox`]: a stdio upstream's stdin, written by one task.
//!
//! Messages are queued whole (a JSON-RPC message and its newline, as the
//! MCP stdio transport frames them: "Messages are delimited by newlines"),
//! and the writer task writes whatever has queued up in one `write`. Under
//! load, many requests go out in one system call and the upstream reads
//! them in one wake-up; a lone request costs one write, as before.
//!
//! Two writers share it: rmcp's transport (through [`OutboxWriter`], an
//! `AsyncWrite` whose writes append whole messages) and the direct calls of
//! [`super::lane`]. At most [`CAP`] bytes wait: past that, writers wait for
//! the upstream to read (backpressure, as a pipe gives).
//!
//! Closing: dropping the [`OutboxWriter`] (rmcp drops its writer when the
//! session ends) lets the task write what is queued, then close stdin, so
//! the upstream sees end of input (the shutdown sequence of the MCP stdio
//! transport). A failed write (the upstream is gone) fails every later one.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes queued at most before writers wait.
pub const CAP: usize = 1 << 20;

#[derive(Default)]
struct State {
    queued: Vec<u8>,
    /// No more writes: the writer task ends once `queued` is written.
    closing: bool,
    /// The writer task is gone (closed, or a write failed).
    done: bool,
    failed: Option<io::ErrorKind>,
    /// Writers waiting for room (or, on shutdown, for the task to end).
    waiting: Vec<Waker>,
}

pub struct Outbox {
    state: Mutex<State>,
    wake: Notify,
}

impl Outbox {
    /// Starts the writer task for `stdin`.
    pub fn start<W: AsyncWrite + Unpin + Send + 'static>(stdin: W) -> Arc<Self> {
        let outbox = Arc::new(Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        });
        tokio::spawn(outbox.clone().run(stdin));
        outbox
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run<W: AsyncWrite + Unpin>(self: Arc<Self>, mut stdin: W) {
        let mut out = Vec::new();
        loop {
            let notified = self.wake.notified();
            {
                let mut st = self.lock();
                if st.queued.is_empty() {
                    if st.closing {
                        st.done = true;
                        wake_all(&mut st);
                        break;
                    }
                } else {
                    std::mem::swap(&mut out, &mut st.queued);
                    wake_all(&mut st);
                }
            }
            if out.is_empty() {
                notified.await;
                continue;
            }
            if let Err(e) = stdin.write_all(&out).await {
                tracing::debug!(error = %e, "writing to the upstream's stdin failed");
                let mut st = self.lock();
                st.failed = Some(e.kind());
                st.done = true;
                st.queued = Vec::new();
                wake_all(&mut st);
                break;
            }
            out.clear();
        }
        // Closing stdin tells the upstream no more input comes.
        let _ = stdin.shutdown().await;
    }

    /// Queues `message` whole, or waits for room.
    pub fn poll_push(&self, cx: &mut Context<'_>, message: &[u8]) -> Poll<io::Result<()>> {
        let mut st = self.lock();
        if let Some(kind) = st.failed {
            return Poll::Ready(Err(io::Error::new(kind, "the upstream's stdin is closed")));
        }
        if st.closing || st.done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the upstream's stdin is closed",
            )));
        }
        if !st.queued.is_empty() && st.queued.len() + message.len() > CAP {
            st.waiting.push(cx.waker().clone());
            return Poll::Pending;
        }
        st.queued.extend_from_slice(message);
        drop(st);
        self.wake.notify_one();
        Poll::Ready(Ok(()))
    }

    /// Queues `message` whole (see [`Self::poll_push`]).
    pub async fn push(&self, message: &[u8]) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_push(cx, message)).await
    }

    fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_one();
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.done {
            return Poll::Ready(());
        }
        st.waiting.push(cx.waker().clone());
        Poll::Pending
    }
}

fn wake_all(st: &mut State) {
    for w in st.waiting.drain(..) {
        w.wake();
    }
}

/// rmcp's side of the [`Outbox`]: each `write` queues its bytes whole
/// (rmcp's codec hands over one whole message at a time). Dropping it
/// closes the outbox.
pub struct OutboxWriter(pub Arc<Outbox>);

impl AsyncWrite for OutboxWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_push(cx, buf).map_ok(|()| buf.len())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Queued is as far as a flush goes: the task writes it at once.
        match self.0.lock().failed {
            Some(kind) => Poll::Ready(Err(io::Error::new(kind, "the upstream's stdin is closed"))),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close();
        self.0.poll_closed(cx).map(Ok)
    }
}

impl Drop for OutboxWriter {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn messages_arrive_whole_in_order_and_closing_ends_input() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let outbox = Outbox::start(ours);
        let mut writer = OutboxWriter(outbox.clone());
        let mut expected = Vec::new();
        for i in 0..200 {
            let line = format!("{{\"id\":{i}}}\n");
            if i % 2 == 0 {
                outbox.push(line.as_bytes()).await.unwrap();
            } else {
                writer.write_all(line.as_bytes()).await.unwrap();
            }
            expected.extend_from_slice(line.as_bytes());
        }
        drop(writer);
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, expected);
        let err = outbox.push(b"late\n").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    }

    #[tokio::test]
    async fn a_full_outbox_makes_writers_wait_until_the_reader_reads() {
        let (ours, mut theirs) = tokio::io::duplex(16);
        let outbox = Outbox::start(ours);
        let big = vec![b'x'; CAP];
        outbox.push(&big).await.unwrap();
        // The task holds at most one batch; the next batch fills the queue.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        outbox.push(&big).await.unwrap();
        let blocked = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            outbox.push(b"one more\n"),
        )
        .await;
        assert!(blocked.is_err(), "a full outbox must make the writer wait");
        let reader = tokio::spawn(async move {
            let mut n = 0;
            let mut buf = vec![0; 65536];
            loop {
                let got = theirs.read(&mut buf).await.unwrap();
                if got == 0 {
                    return n;
                }
                n += got;
            }
        });
        outbox.push(b"one more\n").await.unwrap();
        drop(OutboxWriter(outbox.clone()));
        assert_eq!(reader.await.unwrap(), 2 * CAP + 9);
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_later_one() {
        let (ours, theirs) = tokio::io::duplex(16);
        drop(theirs);
        let outbox = Outbox::start(ours);
        outbox.push(b"lost\n").await.unwrap();
        let mut writer = OutboxWriter(outbox.clone());
        let mut failed = false;
        for _ in 0..100 {
            if writer.write_all(b"x\n").await.is_err() || writer.flush().await.is_err() {
                failed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(failed, "writes after a broken pipe must fail");
        assert!(outbox.push(b"y\n").await.is_err());
    }
}
