//! One legacy SSE session, and how it serves its client's messages without
//! an rmcp service.
//!
//! rmcp would run a service per session: a loop task with its channels and
//! a `Peer`, which made an idle session cost 39.5 KB over HTTP/2 where it
//! now costs 5.6 KB (docs/benchmarks.md, "Legacy SSE sessions without an
//! rmcp service"). A legacy session needs none of it: every message arrives in a POST
//! and every answer goes on the one event stream. So the session calls its
//! handler itself, as rmcp's service loop does (`Service::handle_request`,
//! a context with the request's `_meta` and extensions, a cancellation
//! token per request), and what the handler sends the client goes through
//! the session's [`StreamLink`]:
//!
//! - `initialize` is served before the POST that carried it is answered,
//!   so a client's next message finds the session initialized; a second
//!   `initialize` is refused (MCP 2024-11-05, *Lifecycle*: initialization
//!   is the first interaction, once). Before it, only `ping` is served
//!   (*Lifecycle*: "The client SHOULD NOT send requests other than pings
//!   before the server has responded to the initialize request").
//! - Every other request runs in a task of its own, and its result or
//!   error goes on the stream; `notifications/cancelled` cancels it
//!   (*Cancellation*).
//! - The client's answers to requests mcpgate sent on the stream (sampling,
//!   elicitation and roots requests relayed from upstreams) are delivered
//!   by id ([`crate::mcp::answers`]).
//!
//! **Isolation.** The handler contexts get the peer of a service that has
//! already ended: until `initialize`, one without client information (as
//! stateless requests do, `crate::mcp::inline::stateless`); from then on
//! one carrying the client's `initialize` (`crate::mcp::peers`), shared
//! with sessions whose clients sent the same. Nothing sent through it
//! reaches anyone, and nothing is recorded on it. What the client sent at `initialize` is
//! kept on the session's own link (`ClientLink::set_client_info`), which
//! the handler finds in each request's extensions
//! (`crate::mcp::client_link::of_request`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use futures::channel::mpsc;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorData, Extensions, GetExtensions,
    GetMeta, InitializeResult, JsonRpcMessage, JsonRpcRequest, RequestId, RequestMetaObject,
    ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{RequestContext, Service};
use rmcp::{Peer, RoleServer};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::mcp::client_link::{ClientLink, StreamLink};
use crate::mcp::handler::McpHandler;
use crate::mcp::in_flight::InFlightRequests;

/// After `initialize`: the ended peer carrying what the client sent, given
/// the session's link and the result (`crate::mcp::peers::after_initialize`);
/// `None` when the server is shutting down.
pub type PeerFor =
    Box<dyn Fn(&ClientLink, &InitializeResult) -> Option<Peer<RoleServer>> + Send + Sync>;

const NEW: u8 = 0;
const INITIALIZING: u8 = 1;
const INITIALIZED: u8 = 2;

/// One open legacy SSE session of this instance.
pub struct Session {
    /// The user whose token opened it.
    pub user_id: String,
    handler: McpHandler,
    link: Arc<StreamLink>,
    /// The ended peer every handler context gets (module documentation).
    peer: RwLock<Peer<RoleServer>>,
    /// The peer carrying a client's `initialize`, once it is answered.
    peer_for: PeerFor,
    /// [`NEW`], [`INITIALIZING`] or [`INITIALIZED`].
    state: AtomicU8,
    in_flight: InFlightRequests,
    /// Wakes the session's pump (shared mode).
    pub wake: Arc<Notify>,
    /// Cancelled when the session ends: so are its requests.
    ct: CancellationToken,
}

impl Session {
    /// A session whose messages to the client go on `tx` (the event
    /// stream), served by `handler` with `peer` in its contexts, and after
    /// `initialize` with the one `peer_for` gives.
    pub fn new(
        user_id: String,
        handler: McpHandler,
        peer: Peer<RoleServer>,
        peer_for: PeerFor,
        tx: mpsc::Sender<ServerJsonRpcMessage>,
        ct: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            user_id,
            handler,
            link: Arc::new(StreamLink::new(tx)),
            peer: RwLock::new(peer),
            peer_for,
            state: AtomicU8::new(NEW),
            in_flight: InFlightRequests::default(),
            wake: Arc::new(Notify::new()),
            ct,
        })
    }

    /// The session's link to its client.
    pub fn link(&self) -> ClientLink {
        self.link.clone().into()
    }

    /// Ends the session: its requests are cancelled, nothing more goes on
    /// its stream, and requests awaiting the client's answer end without.
    pub fn close(&self) {
        self.ct.cancel();
        self.link.close();
    }

    /// Completes when the session has ended.
    pub fn closed(&self) -> WaitForCancellationFuture<'_> {
        self.ct.cancelled()
    }

    pub fn is_closed(&self) -> bool {
        self.ct.is_cancelled()
    }

    /// Serves one message of the client's (its extensions carry the
    /// caller). Returns once the message is taken: after `initialize` and
    /// notifications are served, as soon as another request is started.
    pub async fn take(self: &Arc<Self>, message: ClientJsonRpcMessage) {
        match message {
            JsonRpcMessage::Request(r) => self.request(r).await,
            JsonRpcMessage::Notification(n) => self.notification(n.notification).await,
            JsonRpcMessage::Response(r) => {
                if !self.link.answers.deliver(&r.id, Ok(r.result)) {
                    tracing::debug!(id = %r.id, "an answer to no pending request; dropped");
                }
            }
            JsonRpcMessage::Error(e) => {
                let delivered = match &e.id {
                    Some(id) => self.link.answers.deliver(id, Err(e.error)),
                    None => false,
                };
                if !delivered {
                    tracing::debug!("an error answering no pending request; dropped");
                }
            }
        }
    }

    async fn request(self: &Arc<Self>, r: JsonRpcRequest<ClientRequest>) {
        let JsonRpcRequest {
            id, mut request, ..
        } = r;
        let initialized = self.state.load(Ordering::Acquire) == INITIALIZED;
        match &request {
            ClientRequest::InitializeRequest(_)
                if self
                    .state
                    .compare_exchange(NEW, INITIALIZING, Ordering::AcqRel, Ordering::Acquire)
                    .is_err() =>
            {
                return self
                    .refuse(id, crate::mcp::message::ALREADY_INITIALIZED)
                    .await;
            }
            ClientRequest::InitializeRequest(_) => {
                let context = self.context(id.clone(), &mut request, self.ct.child_token());
                // A failed initialize may be sent again.
                let (state, answer) = match self.handler.handle_request(request, context).await {
                    Ok(ServerResult::InitializeResult(result)) => {
                        self.adopt_peer(&result);
                        let result = ServerResult::InitializeResult(result);
                        (INITIALIZED, ServerJsonRpcMessage::response(result, id))
                    }
                    Ok(_) => (
                        NEW,
                        ServerJsonRpcMessage::error(
                            ErrorData::internal_error("initialize gave no InitializeResult", None),
                            Some(id),
                        ),
                    ),
                    Err(error) => (NEW, ServerJsonRpcMessage::error(error, Some(id))),
                };
                self.state.store(state, Ordering::Release);
                return self.send(answer).await;
            }
            ClientRequest::PingRequest(_) => {}
            _ if !initialized => {
                return self
                    .refuse(id, "the session is not initialized: send initialize first")
                    .await;
            }
            _ => {}
        }
        let request_ct = self.ct.child_token();
        self.in_flight.begin(&id, request_ct.clone());
        let context = self.context(id.clone(), &mut request, request_ct.child_token());
        let session = self.clone();
        tokio::spawn(async move {
            let result = session.handler.handle_request(request, context).await;
            session.in_flight.end(&id);
            let answer = match result {
                Ok(result) => ServerJsonRpcMessage::response(result, id),
                Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
            };
            session.send(answer).await;
        });
    }

    /// After `initialize`: the contexts get the peer carrying what the
    /// client sent, with the negotiated version (as rmcp records it).
    fn adopt_peer(&self, result: &InitializeResult) {
        let Some(peer) = (self.peer_for)(&self.link(), result) else {
            return;
        };
        if let Ok(mut p) = self.peer.write() {
            *p = peer;
        }
    }

    /// A context as rmcp's service loop builds it, with the session's link.
    fn context(
        &self,
        id: RequestId,
        request: &mut ClientRequest,
        ct: CancellationToken,
    ) -> RequestContext<RoleServer> {
        let peer = match self.peer.read() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut context = RequestContext::new(id, peer);
        context.ct = ct;
        context.meta = std::mem::replace(request.get_meta_mut(), RequestMetaObject::new());
        context.extensions = std::mem::take(request.extensions_mut());
        context.extensions.insert(self.link());
        context
    }

    /// As the handler takes them from rmcp: `notifications/cancelled`
    /// cancels its request, and those the handler implements get their
    /// span; the others (progress, custom ones) change nothing.
    async fn notification(&self, mut notification: ClientNotification) {
        let extensions: Extensions = std::mem::take(notification.extensions_mut());
        let method = match &notification {
            ClientNotification::CancelledNotification(c) => {
                if let Some(id) = &c.params.request_id {
                    self.in_flight.cancel(id);
                }
                "notifications/cancelled"
            }
            ClientNotification::InitializedNotification(_) => "notifications/initialized",
            ClientNotification::RootsListChangedNotification(_) => {
                "notifications/roots/list_changed"
            }
            _ => return,
        };
        self.handler.observe_notification(method, &extensions).await;
    }

    /// Answers request `id` with `-32600` (invalid request) and `message`.
    async fn refuse(&self, id: RequestId, message: &'static str) {
        let error = ErrorData::invalid_request(message, None);
        self.send(ServerJsonRpcMessage::error(error, Some(id)))
            .await
    }

    async fn send(&self, message: ServerJsonRpcMessage) {
        if self.link.send(message).await.is_err() {
            tracing::debug!("a legacy SSE session's stream closed before its answer");
        }
    }
}
