//! The request body's deadline (`body_read_timeout`), and what a handler
//! answers when a body cannot be read ([`BodyError`]): `413` past the size
//! limit (also for a chunked body, which announces no length), `408` past
//! the deadline, `400` when the client cut it off.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// The request body, failing with [`BodyTimeout`] once its deadline has
/// passed. The timer is only set when the body is not already there.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + timeout,
            sleep: None,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = self.deadline;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Past the size limit (`http_body_util::LengthLimitError`): `413`.
    TooLarge,
    /// Past `body_read_timeout`: `408`.
    TimedOut,
    /// Cut off or malformed (e.g. bad chunked encoding): `400`.
    Unreadable,
}

impl BodyError {
    /// Classifies the error of reading a body (`axum::body::to_bytes`).
    pub fn of(e: &axum::Error) -> Self {
        let mut chain = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        });
        let mut found = Self::Unreadable;
        for e in &mut chain {
            if e.is::<http_body_util::LengthLimitError>() {
                return Self::TooLarge;
            }
            if e.is::<BodyTimeout>() {
                found = Self::TimedOut;
            }
        }
        found
    }

    pub fn status(self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable => StatusCode::BAD_REQUEST,
        }
    }

    /// A sentence for the error body.
    pub fn description(self, limit: usize) -> String {
        match self {
            Self::TooLarge => format!("the request body is larger than {limit} bytes"),
            Self::TimedOut => "the request body did not arrive in time".into(),
            Self::Unreadable => "the request body could not be read".into(),
        }
    }
}
