//! Records of tasks (SEP-2663, `crate::tasks`): what any instance needs to
//! answer `tasks/get` and `tasks/cancel` for a task, whichever instance
//! runs it.

use mcpgate_core::mcp::tasks::TaskStatus;
use mcpgate_core::model::UnixTime;

/// A task as stored. `result`, `error` and `input_requests` are JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub task_id: String,
    /// `Caller::owner()` of the creator: a user id, or `client:<id>`.
    pub owner: String,
    /// The client the creator used.
    pub client_id: String,
    /// The upstream running the call, and the tool's exposed name.
    pub upstream: String,
    pub tool: String,
    /// The instance running the call.
    pub instance_id: String,
    pub status: TaskStatus,
    pub status_message: Option<String>,
    /// The tool's result (`completed`).
    pub result: Option<String>,
    /// The JSON-RPC error (`failed`).
    pub error: Option<String>,
    /// Outstanding requests to the client (`input_required`).
    pub input_requests: Option<String>,
    pub ttl_ms: i64,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Unix seconds; purged by `Store::purge_expired` after this.
    pub expires_at: UnixTime,
}

/// A change of a task's state: its new status and payload (the fields not
/// given are cleared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUpdate {
    pub status: TaskStatus,
    pub status_message: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub input_requests: Option<String>,
}

impl TaskUpdate {
    /// A status with no payload (`working`, `cancelled`).
    pub fn status(status: TaskStatus) -> Self {
        Self {
            status,
            status_message: None,
            result: None,
            error: None,
            input_requests: None,
        }
    }
}
