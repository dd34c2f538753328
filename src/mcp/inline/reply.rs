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
//! A stateless (2026-07-28) request is served the same way
//! ([`serve_stateless`], from `super::stateless`), with two differences:
//! an error that revision gives an HTTP status of its own gets it
//! ([`stateless_status`]), and nothing can be asked on its stream (there is
//! no session to POST the answer to; that revision asks with an
//! `InputRequiredResult`).
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
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt};
use rmcp::model::{
    ClientRequest, ClientResult, ErrorCode, RequestId, ServerJsonRpcMessage, ServerNotification,
    ServerRequest, ServerResult,
};
use rmcp::service::{RequestContext, Service};
use rmcp::{ErrorData as McpError, RoleServer};
use tokio_util::sync::CancellationToken;

use super::registry::InlineSession;
use crate::mcp::handler::McpHandler;

/// What the handler sends the client as part of an inline request.
#[derive(Clone)]
pub struct RequestStream {
    tx: mpsc::UnboundedSender<ServerJsonRpcMessage>,
    /// The session whose client answers requests sent on this stream;
    /// `None` for a stateless (2026-07-28) request, which cannot be asked
    /// anything (it gets an `InputRequiredResult` instead, `crate::mcp::mrtr`).
    session: Option<Arc<InlineSession>>,
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
        let Some(session) = &self.session else {
            return Err(McpError::invalid_request(
                "a stateless (2026-07-28) request cannot be sent requests on its response; \
                 its tool must ask through an InputRequiredResult",
                None,
            ));
        };
        let (id, answer) = session.stream_link().answers.expect();
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
        match answer.answer().await {
            Some(answer) => answer,
            None => Err(McpError::internal_error(
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

impl InFlight {
    fn new(work: Work, ct: CancellationToken) -> Self {
        Self {
            work: Some(work),
            ct,
        }
    }
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
/// the server's shutdown token); an event-stream answer carries a
/// keep-alive comment every `keep_alive` it has nothing else to send.
pub async fn serve(
    session: Arc<InlineSession>,
    id: RequestId,
    request: ClientRequest,
    mut context: RequestContext<RoleServer>,
    ct: CancellationToken,
    keep_alive: Duration,
) -> Response {
    let rx = open_stream(&mut context, &ct, Some(session.clone()));
    session.in_flight.begin(&id, ct.clone());
    let work: Work = Box::pin(async move {
        let result = session.handler.handle_request(request, context).await;
        session.in_flight.end(&id);
        message_of(result, id)
    });
    respond(rx, InFlight::new(work, ct), |_| StatusCode::OK, keep_alive).await
}

/// Serves a stateless (2026-07-28) `request` with `handler`, as [`serve`]
/// does a session's, and answers it as rmcp answers such a request: an
/// error the revision gives an HTTP status of its own gets it when it is
/// the whole answer ([`stateless_status`]). The client cancels it by
/// going away (there is no session to send `notifications/cancelled` to).
pub async fn serve_stateless(
    handler: McpHandler,
    id: RequestId,
    request: ClientRequest,
    mut context: RequestContext<RoleServer>,
    ct: CancellationToken,
    keep_alive: Duration,
) -> Response {
    let rx = open_stream(&mut context, &ct, None);
    let work: Work =
        Box::pin(async move { message_of(handler.handle_request(request, context).await, id) });
    respond(rx, InFlight::new(work, ct), stateless_status, keep_alive).await
}

/// Gives `context` the request's cancellation token `ct` and its response
/// stream (whose client answers through `session`, if any); returns the
/// stream's receiving end.
fn open_stream(
    context: &mut RequestContext<RoleServer>,
    ct: &CancellationToken,
    session: Option<Arc<InlineSession>>,
) -> mpsc::UnboundedReceiver<ServerJsonRpcMessage> {
    let (tx, rx) = mpsc::unbounded();
    context.ct = ct.clone();
    context.extensions.insert(RequestStream { tx, session });
    rx
}

fn message_of(result: Result<ServerResult, McpError>, id: RequestId) -> ServerJsonRpcMessage {
    match result {
        Ok(result) => ServerJsonRpcMessage::response(result, id),
        Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
    }
}

/// The HTTP status of a stateless request's answer when one message is the
/// whole of it (MCP 2026-07-28, *Transports*: protocol-level failures of a
/// request are HTTP errors; as rmcp's Streamable HTTP server maps them):
/// `400` for an unsupported version, a missing client capability or
/// headers that contradict the body, `404` for an unknown method, `200`
/// for a result and for any other error (in band).
pub fn stateless_status(message: &ServerJsonRpcMessage) -> StatusCode {
    let ServerJsonRpcMessage::Error(e) = message else {
        return StatusCode::OK;
    };
    match e.error.code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The response to a request whose handler is `work` and whose messages
/// before its result come through `rx`.
async fn respond(
    mut rx: mpsc::UnboundedReceiver<ServerJsonRpcMessage>,
    mut work: InFlight,
    status: fn(&ServerJsonRpcMessage) -> StatusCode,
    keep_alive: Duration,
) -> Response {
    let first = tokio::select! {
        biased;
        Some(m) = rx.next() => m,
        result = &mut work => {
            // Anything sent just before the result goes first.
            let messages = drained_then(&mut rx, result);
            if let [only] = messages.as_slice() {
                let mut r = json(only);
                if r.status() == StatusCode::OK {
                    *r.status_mut() = status(only);
                }
                return r;
            }
            return events(futures::stream::iter(messages), keep_alive);
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
    events(
        futures::stream::once(async move { first }).chain(rest),
        keep_alive,
    )
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
fn events(
    messages: impl Stream<Item = ServerJsonRpcMessage> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let stream = messages.filter_map(|m| async move {
        match serde_json::to_string(&m) {
            Ok(data) => Some(Ok::<_, Infallible>(Event::default().data(data))),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a server message");
                None
            }
        }
    });
    crate::mcp::sse::sse_response(stream, keep_alive)
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
        let response = respond(rx, work, |_| StatusCode::OK, Duration::from_secs(15)).await;
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
    async fn a_stateless_requests_stream_carries_notifications_and_refuses_requests() {
        let (tx, mut rx) = mpsc::unbounded();
        let stream = RequestStream { tx, session: None };
        assert!(stream.notify(ServerNotification::ProgressNotification(
            ProgressNotification::new(ProgressNotificationParam::new(
                ProgressToken(NumberOrString::Number(1)),
                1.0,
            ))
        )));
        assert!(rx.try_recv().is_ok(), "the notification is on the response");
        let asked = stream
            .ask(ServerRequest::PingRequest(Default::default()))
            .await;
        let e = asked.expect_err("nothing can be asked without a session");
        assert_eq!(e.code, ErrorCode::INVALID_REQUEST);
        assert!(e.message.contains("InputRequiredResult"), "{}", e.message);
        assert!(rx.try_recv().is_err(), "and nothing was sent");
    }

    #[test]
    fn stateless_errors_of_the_protocol_get_their_http_status() {
        let error = |code| {
            ServerJsonRpcMessage::error(McpError::new(code, "x", None), Some(RequestId::Number(1)))
        };
        let ok = ServerJsonRpcMessage::response(ServerResult::empty(()), RequestId::Number(1));
        assert_eq!(stateless_status(&ok), StatusCode::OK);
        for (code, status) in [
            (
                ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
                StatusCode::BAD_REQUEST,
            ),
            (
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                StatusCode::BAD_REQUEST,
            ),
            (ErrorCode::HEADER_MISMATCH, StatusCode::BAD_REQUEST),
            (ErrorCode::METHOD_NOT_FOUND, StatusCode::NOT_FOUND),
            (ErrorCode::INVALID_PARAMS, StatusCode::OK),
            (ErrorCode::INTERNAL_ERROR, StatusCode::OK),
        ] {
            assert_eq!(stateless_status(&error(code)), status, "{code:?}");
        }
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
