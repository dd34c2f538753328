//! The rmcp `Peer` in the handler contexts of sessions without an rmcp
//! service (Streamable HTTP, `super::inline`; legacy SSE, `super::sse`).
//!
//! rmcp's request dispatch (`Service::handle_request` of a `ServerHandler`)
//! reads what the client said at `initialize` from the context's peer:
//! whether the client declared tasks (SEP-2663: a task-augmented
//! `tools/call` and `tasks/*` need it, else `-32021`), which protocol
//! version was negotiated (results lose `resultType` for clients before
//! 2026-07-28, `ping` and `resources/subscribe` exist only in the session
//! revisions). A peer is made only by a running rmcp service, and a
//! service per session is what costs memory (docs/benchmarks.md,
//! "Workload 5 at scale"). So a session's contexts get the peer of a
//! service that has already ended, carrying the session's negotiated
//! `initialize` as its peer information, shared with every session whose
//! client sent exactly the same `initialize` (in practice one per client
//! program and version).
//!
//! **Isolation.** Such a peer reaches nobody (its service has ended: a send
//! fails at once), and nothing is recorded on it after it is made: what a
//! session needs of its own (its link to the client, its requests) is in
//! the session. Sessions sharing a peer share only identical information
//! their clients sent.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::{sink, stream};
use rmcp::model::{ClientJsonRpcMessage, InitializeRequestParams, InitializeResult};
use rmcp::{Peer, RoleServer};

use super::McpState;
use super::client_link::ClientLink;
use super::handler::McpHandler;

/// At most this many distinct `initialize`s keep a peer; past that a
/// session gets a peer of its own (a client sending a different
/// `initialize` each time cannot grow the cache without bound).
const MAX_PEERS: usize = 256;

/// Ended peers by the `initialize` they carry (its JSON).
#[derive(Default)]
pub struct ClientPeers {
    map: Mutex<HashMap<String, Peer<RoleServer>>>,
}

impl ClientPeers {
    /// The ended peer carrying `info` (a client's `initialize`, with the
    /// negotiated protocol version); `handler` serves the peer's service,
    /// which ends at once.
    fn for_client(
        &self,
        info: &InitializeRequestParams,
        handler: impl FnOnce() -> McpHandler,
    ) -> Peer<RoleServer> {
        let Ok(key) = serde_json::to_string(info) else {
            return with_info(handler(), info);
        };
        let Ok(mut map) = self.map.lock() else {
            return with_info(handler(), info);
        };
        if let Some(peer) = map.get(&key) {
            return peer.clone();
        }
        let peer = with_info(handler(), info);
        if map.len() < MAX_PEERS {
            map.insert(key, peer.clone());
        }
        peer
    }
}

/// After a session's `initialize` was answered with `result`: the
/// negotiated version goes on the session's `link` with the rest of what
/// the client sent (as rmcp records it on a session's peer), and the ended
/// peer carrying it is returned, for the session's later handler contexts.
/// `None` when the link holds no `initialize` (the handler records it
/// there).
pub fn after_initialize(
    mcp: &McpState,
    link: &ClientLink,
    result: &InitializeResult,
) -> Option<Peer<RoleServer>> {
    let mut info = (*link.client_info()?).clone();
    info.protocol_version = result.protocol_version.clone();
    link.set_client_info(info.clone());
    Some(mcp.peers.for_client(&info, || mcp.stateless.handler(mcp)))
}

fn with_info(handler: McpHandler, info: &InitializeRequestParams) -> Peer<RoleServer> {
    let peer = ended_peer(handler);
    peer.set_peer_info(info.clone());
    peer
}

/// The peer of a service whose transport ends before it begins: dropping
/// the `RunningService` cancels it, and its loop ends at once.
pub fn ended_peer(handler: McpHandler) -> Peer<RoleServer> {
    let transport = (
        sink::drain::<rmcp::model::ServerJsonRpcMessage>(),
        stream::empty::<ClientJsonRpcMessage>(),
    );
    let running = rmcp::service::serve_directly(handler, transport, None);
    running.peer().clone()
}
