//! Serving one client request inline, in the task of the HTTP connection
//! that brought it, and the response it gets.
//!
//! The handler runs with a [`RequestStream`] in its context: what it sends
//! the client as part of the request (progress, log messages, and the
//! sampling, elicitation and roots requests the gateway relays) goes on
//! this request's response (MCP 2025-06-18 and 2025-11-25, *Transports*,
//! "Sending Messages to the Server": such messages SHOULD relate to the
//! originating request). The answer is one `application/json` body when
//! the handler sends nothing before its result, or else a
//! `text/event-stream` whose last event is the result (the client accepts
//! both). Streams of inline requests carry no event ids: they are not
//! resumable with `Last-Event-ID`.
//!
//! If the client goes away before the result, the request is cancelled
//! (its token, as for `notifications/cancelled`) and its handler runs to
//! its end in a task of its own, so that the gateway's bookkeeping and
//! the upstream's cancellation happen as they would otherwise.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt};
use rmcp::model::{
    ClientRequest, ClientResult, RequestId, ServerJsonRpcMessage, ServerNotification, ServerRequest,
};
use rmcp::service::{RequestContext, Service};
use rmcp::{ErrorData as McpError, RoleServer};
use tokio_util::sync::CancellationToken;

use super::registry::InlineSession;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the handler sends the client as part of an inline request.
#[derive(Clone)]
pub struct RequestStream {
    tx: mpsc::UnboundedSender<ServerJsonRpcMessage>,
    session: Arc<InlineSession>,
}

/// Removes a request to the client from the session when its caller stops
/// waiting (answered, timed out or cancelled).
struct Forget<'a> {
    session: &'a InlineSession,
    id: RequestId,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.session.forget_answer(&self.id);
    }
}

impl RequestStream {
    /// Sends a notification; `false` when the response is gone.
    pub fn notify(&self, notification: ServerNotification) -> bool {
        self.tx
            .unbounded_send(ServerJsonRpcMessage::notification(notification))
            .is_ok()
    }

    /// Sends a request to the client and waits for its answer, which the
    /// client POSTs to the session.
    pub async fn ask(&self, request: ServerRequest) -> Result<ClientResult, McpError> {
        let (id, answer) = self.session.expect_answer();
        let _forget = Forget {
            session: &self.session,
            id: id.clone(),
        };
        if self
            .tx
            .unbounded_send(ServerJsonRpcMessage::request(request, id))
            .is_err()
        {
            return Err(McpError::internal_error(
                "the client's request has ended; nothing can be asked as part of it",
                None,
            ));
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_) => Err(McpError::internal_error(
                "the session closed before the client answered",
                None,
            )),
        }
    }
}

type Work = Pin<Box<dyn Future<Output = ServerJsonRpcMessage> + Send>>;

/// The handler's future. Dropped unfinished (the client went away), it
/// cancels the request and finishes in a task of its own.
struct InFlight {
    work: Option<Work>,
    ct: CancellationToken,
}

impl Future for InFlight {
    type Output = ServerJsonRpcMessage;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(work) = self.work.as_mut() else {
            return Poll::Pending;
        };
        let out = work.poll_unpin(cx);
        if out.is_ready() {
            self.work = None;
        }
        out
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            self.ct.cancel();
            tokio::spawn(work);
        }
    }
}

/// Serves `request` (id `id`) of `session` with `context` (the caller in
/// its extensions) and answers it. `ct` cancels the request (a child of
/// the server's shutdown token).
pub async fn serve(
    session: Arc<InlineSession>,
    id: RequestId,
    request: ClientRequest,
    mut context: RequestContext<RoleServer>,
    ct: CancellationToken,
) -> Response {
    let (tx, rx) = mpsc::unbounded();
    context.ct = ct.clone();
    context.extensions.insert(RequestStream {
        tx,
        session: session.clone(),
    });
    session.begin(&id, ct.clone());
    let work: Work = Box::pin(async move {
        let result = session.handler.handle_request(request, context).await;
        session.end(&id);
        match result {
            Ok(result) => ServerJsonRpcMessage::response(result, id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
        }
    });
    respond(
        rx,
        InFlight {
            work: Some(work),
            ct,
        },
    )
    .await
}

/// The response to a request whose handler is `work` and whose messages
/// before its result come through `rx`.
async fn respond(
    mut rx: mpsc::UnboundedReceiver<ServerJsonRpcMessage>,
    mut work: InFlight,
) -> Response {
    let first = tokio::select! {
        biased;
        Some(m) = rx.next() => m,
        result = &mut work => {
            // Anything sent just before the result goes first.
            let messages = drained_then(&mut rx, result);
            if let [only] = messages.as_slice() {
                return json(only);
            }
            return events(futures::stream::iter(messages));
        }
    };
    let rest = futures::stream::unfold(Some((rx, work)), |state| async move {
        let (mut rx, mut work) = state?;
        tokio::select! {
            biased;
            Some(m) = rx.next() => Some((vec![m], Some((rx, work)))),
            result = &mut work => Some((drained_then(&mut rx, result), None)),
        }
    })
    .flat_map(futures::stream::iter);
    events(futures::stream::once(async move { first }).chain(rest))
}

/// What is left in `rx`, then `result`. The handler's notifications may be
/// sent from other tasks (the gateway relays an upstream's progress from
/// the upstream connection's task) between the moment the stream was found
/// empty and the moment the result was ready, in the same poll: they were
/// sent before the result and go before it, never lost.
fn drained_then(
    rx: &mut mpsc::UnboundedReceiver<ServerJsonRpcMessage>,
    result: ServerJsonRpcMessage,
) -> Vec<ServerJsonRpcMessage> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m);
    }
    out.push(result);
    out
}

/// One JSON-RPC message as an `application/json` body.
pub fn json(message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the response could not be serialized",
            )
                .into_response()
        }
    }
}

/// Messages as a `text/event-stream`, one event each.
fn events(messages: impl Stream<Item = ServerJsonRpcMessage> + Send + 'static) -> Response {
    let stream = messages.filter_map(|m| async move {
        match serde_json::to_string(&m) {
            Ok(data) => Some(Ok::<_, Infallible>(Event::default().data(data))),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a server message");
                None
            }
        }
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{
        NumberOrString, ProgressNotification, ProgressNotificationParam, ProgressToken,
        ServerResult,
    };

    fn progress(n: f64) -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::notification(ServerNotification::ProgressNotification(
            ProgressNotification::new(ProgressNotificationParam::new(
                ProgressToken(NumberOrString::Number(1)),
                n,
            )),
        ))
    }

    /// A handler that sends one notification per poll (as a notification
    /// relayed from another task may arrive between the polls of the
    /// response stream and of the handler) and sends its last one in the
    /// very poll in which it finishes.
    struct SendsAsItEnds {
        tx: mpsc::UnboundedSender<ServerJsonRpcMessage>,
        sent: u32,
        total: u32,
    }

    impl Future for SendsAsItEnds {
        type Output = ServerJsonRpcMessage;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.sent += 1;
            let n = f64::from(self.sent);
            let _ = self.tx.unbounded_send(progress(n));
            if self.sent == self.total {
                return Poll::Ready(ServerJsonRpcMessage::response(
                    ServerResult::empty(()),
                    RequestId::Number(7),
                ));
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    async fn events_of(total: u32) -> Vec<serde_json::Value> {
        let (tx, rx) = mpsc::unbounded();
        let work = InFlight {
            work: Some(Box::pin(SendsAsItEnds { tx, sent: 0, total })),
            ct: CancellationToken::new(),
        };
        let response = respond(rx, work).await;
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        if !text.starts_with("data:") {
            return vec![serde_json::from_str(&text).expect("json")];
        }
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).expect("event json"))
            .collect()
    }

    #[tokio::test]
    async fn a_notification_sent_as_the_handler_finishes_precedes_the_result() {
        for total in [1, 2, 3, 5] {
            let events = events_of(total).await;
            let progress: Vec<f64> = events
                .iter()
                .filter_map(|e| e["params"]["progress"].as_f64())
                .collect();
            let expected: Vec<f64> = (1..=total).map(f64::from).collect();
            assert_eq!(progress, expected, "{total} notifications: {events:?}");
            assert_eq!(
                events.last().map(|e| e["id"].clone()),
                Some(serde_json::json!(7)),
                "the result comes last: {events:?}"
            );
        }
    }
}
