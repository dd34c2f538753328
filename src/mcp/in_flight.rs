//! The client's requests being served, by id, so that
//! `notifications/cancelled` naming one cancels it (MCP *Utilities:
//! Cancellation*). Used by the inline requests of a Streamable HTTP session
//! (`super::inline`) and by the legacy SSE sessions (`super::sse`), neither
//! of which has an rmcp service to do it.

use std::collections::HashMap;
use std::sync::Mutex;

use rmcp::model::RequestId;
use tokio_util::sync::CancellationToken;

/// See the module documentation.
#[derive(Default)]
pub struct InFlightRequests {
    map: Mutex<HashMap<RequestId, CancellationToken>>,
}

impl InFlightRequests {
    /// A client request being served; `notifications/cancelled` naming it
    /// cancels `ct`.
    pub fn begin(&self, id: &RequestId, ct: CancellationToken) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(id.clone(), ct);
        }
    }

    pub fn end(&self, id: &RequestId) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    /// Cancels a request; `false` when none has that id.
    pub fn cancel(&self, id: &RequestId) -> bool {
        let ct = self.map.lock().ok().and_then(|mut m| m.remove(id));
        match ct {
            Some(ct) => {
                ct.cancel();
                true
            }
            None => false,
        }
    }
}
