//! rmcp's `SessionStore` on the [`Store`](crate::store::Store): after a Streamable HTTP
//! `initialize`, rmcp stores the client's initialize parameters here; a
//! request for the session that reaches an instance without it in memory
//! makes rmcp load them and replay the handshake, so the session goes on
//! there. The owner check happens before (`mcp::sessions::bind_to_user`).
//!
//! A session is restorable only once its owner is recorded, and until it
//! has been idle (no request on any instance) for the idle timeout.

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use super::Cluster;
use crate::config::secs;

pub struct DbSessionStore {
    cluster: Arc<Cluster>,
    idle: i64,
}

impl DbSessionStore {
    pub fn new(cluster: Arc<Cluster>, idle: Duration) -> Self {
        Self {
            cluster,
            idle: secs(idle),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(rec) = self.cluster.store.mcp_session(session_id).await? else {
            return Ok(None);
        };
        let now = self.cluster.clock.now();
        let (Some(_owner), Some(state)) = (rec.user_id, rec.state) else {
            return Ok(None);
        };
        if rec.seen_at < now - self.idle {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&state)?))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let json = serde_json::to_string(state)?;
        let now = self.cluster.clock.now();
        self.cluster
            .store
            .save_mcp_session_state(session_id, &json, now)
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.cluster.store.delete_mcp_session(session_id).await?;
        Ok(())
    }
}
