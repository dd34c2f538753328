//! Requests mcpgate sends a client itself (outside an rmcp service), and
//! the answers it awaits: each request gets an id of mcpgate's own
//! (`mcpgate-1`, `mcpgate-2`, ...: strings, apart from rmcp's numbers), and
//! the client's answer, which arrives later in a POST of its own, is
//! delivered by that id (JSON-RPC 2.0, §5: a response carries the id of the
//! request it answers).
//!
//! Used by the inline requests of a Streamable HTTP session (a request
//! relayed on the request's own response stream, `super::inline::reply`)
//! and by the legacy SSE sessions (`super::sse`), which have no rmcp
//! service.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rmcp::model::{ClientResult, ErrorData, RequestId};
use tokio::sync::oneshot;

/// The client's answer: its result, or the JSON-RPC error it sent.
pub type Answer = Result<ClientResult, ErrorData>;

/// The requests to one client that await an answer.
#[derive(Default)]
pub struct Answers {
    pending: Mutex<HashMap<RequestId, oneshot::Sender<Answer>>>,
    next: AtomicU64,
    closed: AtomicBool,
}

/// A request awaiting its answer; dropped (answered, timed out or
/// cancelled), it is forgotten.
pub struct Pending<'a> {
    answers: &'a Answers,
    id: RequestId,
    rx: Option<oneshot::Receiver<Answer>>,
}

impl Pending<'_> {
    /// The answer; `None` when the client can no longer send one (its
    /// session ended).
    pub async fn answer(mut self) -> Option<Answer> {
        let rx = self.rx.take()?;
        rx.await.ok()
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.answers.forget(&self.id);
    }
}

impl Answers {
    /// A new id for a request to the client, and its pending answer.
    pub fn expect(&self) -> (RequestId, Pending<'_>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let id = RequestId::String(format!("mcpgate-{n}").into());
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.pending.lock()
            && !self.closed.load(Ordering::Acquire)
        {
            m.insert(id.clone(), tx);
        }
        let pending = Pending {
            answers: self,
            id: id.clone(),
            rx: Some(rx),
        };
        (id, pending)
    }

    fn forget(&self, id: &RequestId) {
        if let Ok(mut m) = self.pending.lock() {
            m.remove(id);
        }
    }

    /// Delivers the client's answer; `false` when no request awaits one
    /// with that id.
    pub fn deliver(&self, id: &RequestId, answer: Answer) -> bool {
        let tx = self.pending.lock().ok().and_then(|mut m| m.remove(id));
        match tx {
            Some(tx) => {
                let _ = tx.send(answer);
                true
            }
            None => false,
        }
    }

    /// The client is gone: every pending request ends without an answer,
    /// and so does every later one.
    pub fn close(&self) {
        if let Ok(mut m) = self.pending.lock() {
            self.closed.store(true, Ordering::Release);
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::EmptyResult;

    fn ok() -> Answer {
        Ok(ClientResult::EmptyResult(EmptyResult {}))
    }

    #[tokio::test]
    async fn an_answer_reaches_the_request_with_its_id_only() {
        let answers = Answers::default();
        let (first, one) = answers.expect();
        let (second, two) = answers.expect();
        assert_ne!(first, second);
        assert_eq!(first, RequestId::String("mcpgate-1".into()));
        assert!(answers.deliver(&second, Err(ErrorData::invalid_request("no", None))));
        assert!(!answers.deliver(&second, ok()), "answered once");
        assert!(
            !answers.deliver(&RequestId::Number(1), ok()),
            "an id never sent"
        );
        assert!(matches!(two.answer().await, Some(Err(e)) if e.message == "no"));
        assert!(answers.deliver(&first, ok()));
        assert!(matches!(one.answer().await, Some(Ok(_))));
    }

    #[tokio::test]
    async fn a_request_given_up_is_forgotten() {
        let answers = Answers::default();
        let (id, pending) = answers.expect();
        drop(pending);
        assert!(!answers.deliver(&id, ok()));
    }

    #[tokio::test]
    async fn closing_ends_pending_and_later_requests_without_an_answer() {
        let answers = Answers::default();
        let (id, pending) = answers.expect();
        answers.close();
        assert!(pending.answer().await.is_none());
        assert!(!answers.deliver(&id, ok()));
        let (later, pending) = answers.expect();
        assert!(!answers.deliver(&later, ok()));
        assert!(pending.answer().await.is_none());
    }
}
