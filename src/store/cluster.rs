//! Records of the state several instances share (see `crate::cluster`):
//! Streamable HTTP sessions, legacy SSE sessions and the messages queued for
//! them. The MCP transports read and write them through [`super::Store`].

use mcpgate_core::model::UnixTime;

/// A Streamable HTTP session as every instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSessionRecord {
    pub session_id: String,
    /// The user whose token created the session; `None` only between rmcp
    /// storing the state and the gate recording the owner.
    pub user_id: Option<String>,
    /// rmcp's `SessionState` as JSON; `None` until the handshake completed.
    pub state: Option<String>,
    pub created_at: UnixTime,
    /// Last request seen for the session (updated at most once a minute).
    pub seen_at: UnixTime,
}

/// A legacy SSE session: who opened it and which instance holds its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseSessionRecord {
    pub session_id: String,
    pub user_id: String,
    pub instance_id: String,
    pub created_at: UnixTime,
    /// Refreshed by the holding instance's heartbeat.
    pub seen_at: UnixTime,
}

/// A message posted for a legacy SSE session held by another instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessageRecord {
    pub id: i64,
    /// The authenticated caller, as JSON (a token hash, never a token).
    pub caller: String,
    /// The JSON-RPC message.
    pub message: String,
    pub created_at: UnixTime,
}

/// A message from one instance to another (`crate::cluster::mail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    pub id: String,
    /// `instance:<instance id>` or `answer:<id of the message answered>`.
    pub recipient: String,
    /// The authenticated caller, as JSON (a token hash, never a token).
    pub caller: String,
    pub body: String,
    pub created_at: UnixTime,
}
