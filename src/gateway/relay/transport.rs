//! The transport of an upstream connection, wrapped ([`Counted`]): it counts
//! the progress and log notifications that arrive (for
//! [`RelayState::settle`]) and records every request sent until it is
//! answered or cancelled (for [`RelayState::origin`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rmcp::RoleClient;
use rmcp::model::{ClientNotification, JsonRpcMessage, ServerNotification};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::{IntoTransport, Transport};

use super::RelayState;

/// An upstream connection's transport that counts, as they arrive, the
/// notifications [`RelayState::settle`] waits for.
pub struct Counted<T> {
    inner: T,
    state: Arc<RelayState>,
}

/// Wraps an upstream transport in [`Counted`].
pub fn counted<T, E, A>(
    transport: T,
    state: Arc<RelayState>,
) -> Counted<impl Transport<RoleClient, Error = E>>
where
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    Counted {
        inner: transport.into_transport(),
        state,
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Counted<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        match &item {
            JsonRpcMessage::Request(r) => self.state.sending(&r.id),
            JsonRpcMessage::Notification(n) => {
                if let ClientNotification::CancelledNotification(c) = &n.notification
                    && let Some(id) = &c.params.request_id
                {
                    self.state.answered(id);
                }
            }
            _ => {}
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        match &message {
            Some(JsonRpcMessage::Notification(n))
                if matches!(
                    n.notification,
                    ServerNotification::ProgressNotification(_)
                        | ServerNotification::LoggingMessageNotification(_)
                ) =>
            {
                self.state.received.fetch_add(1, Ordering::SeqCst);
            }
            Some(JsonRpcMessage::Response(r)) => self.state.answered(&r.id),
            Some(JsonRpcMessage::Error(e)) => {
                if let Some(id) = &e.id {
                    self.state.answered(id);
                }
            }
            _ => {}
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
