//! [`Sent`]: a request the gateway sent upstream, by rmcp's peer or on a
//! stdio upstream's lane (`super::stdio::lane`), awaited and cancelled the
//! same way whichever carried it.

use rmcp::RoleClient;
use rmcp::model::{CancelledNotificationParam, ProgressToken, RequestId, ServerResult};
use rmcp::service::{RequestHandle, ServiceError};

use super::stdio;

/// A request sent upstream: by rmcp's peer, or on a stdio upstream's lane
/// (`stdio::lane`).
pub(super) enum Sent {
    Rmcp(RequestHandle<RoleClient>),
    Lane(stdio::lane::Call),
}

/// What cancels a [`Sent`] request.
pub(super) enum Canceller {
    Rmcp(rmcp::Peer<RoleClient>),
    Lane(std::sync::Arc<stdio::lane::Lane>),
}

impl Sent {
    /// The request's id and progress token.
    pub(super) fn ids(&self) -> (RequestId, ProgressToken) {
        match self {
            Sent::Rmcp(h) => (h.id.clone(), h.progress_token.clone()),
            Sent::Lane(c) => (c.id.clone(), c.progress_token.clone()),
        }
    }

    pub(super) fn canceller(&self) -> Canceller {
        match self {
            Sent::Rmcp(h) => Canceller::Rmcp(h.peer.clone()),
            Sent::Lane(c) => Canceller::Lane(c.lane()),
        }
    }

    /// The answer, or the request's timeout.
    pub(super) async fn answer(self) -> Result<ServerResult, ServiceError> {
        match self {
            Sent::Rmcp(h) => h.await_response().await,
            Sent::Lane(c) => c.answer().await,
        }
    }
}

impl Canceller {
    pub(super) async fn cancel(&self, id: RequestId, reason: &str) {
        match self {
            Canceller::Rmcp(peer) => {
                let _ = peer
                    .notify_cancelled(CancelledNotificationParam::new(
                        Some(id),
                        Some(reason.into()),
                    ))
                    .await;
            }
            Canceller::Lane(lane) => lane.cancel(&id, reason).await,
        }
    }
}
