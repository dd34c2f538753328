//! The standalone event stream of a Streamable HTTP session: what mcpgate
//! sends the client outside the answer to one of its requests (list
//! changes, resource updates, requests relayed from upstreams) goes here,
//! and the client reads it with `GET` (MCP 2025-06-18, *Transports*,
//! "Listening for Messages from the Server").
//!
//! The client may have no `GET` open when something is sent, or reopen one
//! after a drop. So every event gets an id (1, 2, ...) and the last
//! [`CACHE`] events are kept:
//!
//! - a `GET` with `Last-Event-ID: n` gets the kept events after `n` first
//!   (*Transports*, "Resumability and Redelivery"), then what follows;
//! - a `GET` without it gets the kept events no stream has been handed yet
//!   (sent while none was open), then what follows;
//! - a `GET` while another is open gets a stream that carries only
//!   keep-alives, as rmcp does ("shadow" streams): two of a client's
//!   reconnecting event sources must not take the stream from each other.
//!
//! Sending never waits: an open stream whose client reads too slowly to
//! keep [`BUFFER`] events in flight is ended, and its client, reconnecting
//! with its last event id, gets what it missed from the cache.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use rmcp::model::ServerJsonRpcMessage;

/// Events kept for a client that reconnects.
pub const CACHE: usize = 64;
/// Events that may wait for an open stream's client to read them.
pub const BUFFER: usize = 64;

/// One event of the stream: its id and its JSON.
pub type Sent = (u64, Arc<str>);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// See the module documentation.
pub struct Standalone {
    state: Mutex<State>,
    /// When the session was last used (milliseconds since [`EPOCH`]): a
    /// message from its client or an event sent to it.
    active: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The id of the last event sent (0: none yet).
    last: u64,
    /// The id of the last event handed to an open stream.
    handed: u64,
    kept: VecDeque<Sent>,
    open: Option<mpsc::Sender<Sent>>,
    closed: bool,
}

/// What a `GET` gets.
pub enum Attached {
    /// The stream, and the id its first (priming) event carries: the
    /// events after it follow.
    Primary(mpsc::Receiver<Sent>, u64),
    /// Another stream is open: keep-alives only.
    Shadow,
    /// The session has ended.
    Closed,
}

impl Default for Standalone {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            active: AtomicU64::new(now_ms()),
        }
    }
}

impl Standalone {
    /// Sends `message`: kept, and put on the open stream if there is one.
    /// `false` once the session has ended.
    pub fn send(&self, message: &ServerJsonRpcMessage) -> bool {
        let json: Arc<str> = match serde_json::to_string(message) {
            Ok(j) => j.into(),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a server message");
                return true;
            }
        };
        self.touch();
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        if s.closed {
            return false;
        }
        s.last += 1;
        let id = s.last;
        if s.kept.len() == CACHE {
            s.kept.pop_front();
        }
        s.kept.push_back((id, json.clone()));
        if let Some(open) = s.open.as_mut() {
            if open.try_send((id, json)).is_ok() {
                s.handed = id;
            } else {
                // Gone, or too slow: it ends, and a reconnect resumes.
                s.open = None;
            }
        }
        true
    }

    /// A `GET`'s stream; `last` is its `Last-Event-ID`.
    pub fn attach(&self, last: Option<u64>) -> Attached {
        let Ok(mut s) = self.state.lock() else {
            return Attached::Closed;
        };
        if s.closed {
            return Attached::Closed;
        }
        if s.open.as_ref().is_some_and(|o| !o.is_closed()) {
            return Attached::Shadow;
        }
        let after = last.unwrap_or(s.handed).min(s.last);
        let (mut tx, rx) = mpsc::channel(BUFFER);
        let mut handed = after;
        for (id, json) in s.kept.iter().filter(|(id, _)| *id > after) {
            if tx.try_send((*id, json.clone())).is_err() {
                break;
            }
            handed = *id;
        }
        s.handed = s.handed.max(handed);
        s.open = Some(tx);
        Attached::Primary(rx, after)
    }

    /// Ends the stream for good (the session ended).
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
            s.open = None;
            s.kept.clear();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().map(|s| s.closed).unwrap_or(true)
    }

    /// The session was used now.
    pub fn touch(&self) {
        self.active.store(now_ms(), Ordering::Relaxed);
    }

    /// How long since the session was last used.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.active.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use rmcp::model::{ServerNotification, ToolListChangedNotification};

    fn message() -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::notification(ServerNotification::ToolListChangedNotification(
            ToolListChangedNotification::default(),
        ))
    }

    fn ids(rx: &mut mpsc::Receiver<Sent>) -> Vec<u64> {
        let mut v = Vec::new();
        while let Ok((id, _)) = rx.try_recv() {
            v.push(id);
        }
        v
    }

    fn primary(a: Attached) -> (mpsc::Receiver<Sent>, u64) {
        match a {
            Attached::Primary(rx, after) => (rx, after),
            _ => panic!("expected the primary stream"),
        }
    }

    #[test]
    fn events_sent_before_any_stream_opens_are_handed_to_the_first() {
        let s = Standalone::default();
        assert!(s.send(&message()));
        assert!(s.send(&message()));
        let (mut rx, after) = primary(s.attach(None));
        assert_eq!(after, 0);
        assert_eq!(ids(&mut rx), [1, 2]);
        assert!(s.send(&message()));
        assert_eq!(ids(&mut rx), [3]);
    }

    #[test]
    fn a_second_stream_while_one_is_open_gets_nothing_and_the_first_keeps_the_events() {
        let s = Standalone::default();
        let (mut first, _) = primary(s.attach(None));
        assert!(matches!(s.attach(None), Attached::Shadow));
        s.send(&message());
        assert_eq!(ids(&mut first), [1]);
    }

    #[test]
    fn a_reconnect_with_last_event_id_gets_what_followed_it() {
        let s = Standalone::default();
        let (first, _) = primary(s.attach(None));
        for _ in 0..3 {
            s.send(&message());
        }
        drop(first);
        s.send(&message());
        let (mut again, after) = primary(s.attach(Some(2)));
        assert_eq!(after, 2);
        assert_eq!(ids(&mut again), [3, 4]);
        // Without Last-Event-ID: only what no stream was handed.
        drop(again);
        s.send(&message());
        let (mut third, after) = primary(s.attach(None));
        assert_eq!(after, 4);
        assert_eq!(ids(&mut third), [5]);
    }

    #[test]
    fn only_the_last_events_are_kept() {
        let s = Standalone::default();
        for _ in 0..(CACHE + 10) {
            s.send(&message());
        }
        let (mut rx, _) = primary(s.attach(Some(0)));
        let got = ids(&mut rx);
        assert_eq!(got.len(), CACHE);
        assert_eq!(got.first(), Some(&11));
        assert_eq!(got.last(), Some(&(CACHE as u64 + 10)));
    }

    #[test]
    fn a_stream_too_slow_to_read_is_ended_and_resumes_from_the_cache() {
        let s = Standalone::default();
        let (mut slow, _) = primary(s.attach(None));
        // The channel takes BUFFER events (plus one per sender).
        for _ in 0..(BUFFER + 2) {
            s.send(&message());
        }
        let received = ids(&mut slow);
        assert!(received.len() <= BUFFER + 1, "{}", received.len());
        // It was ended: the receiver sees the end after what it got.
        assert!(futures::executor::block_on(slow.next()).is_none());
        let last = *received.last().unwrap();
        let (mut again, _) = primary(s.attach(Some(last)));
        let rest = ids(&mut again);
        assert_eq!(rest.first(), Some(&(last + 1)));
        assert_eq!(rest.last(), Some(&(BUFFER as u64 + 2)));
    }

    #[test]
    fn a_closed_stream_takes_nothing_more() {
        let s = Standalone::default();
        let (mut rx, _) = primary(s.attach(None));
        s.close();
        assert!(!s.send(&message()));
        assert!(matches!(s.attach(None), Attached::Closed));
        assert!(ids(&mut rx).is_empty());
        assert!(s.is_closed());
    }
}
