//! A stored task as the SEP-2663 wire shapes: the `Task` of a
//! `CreateTaskResult` and the `DetailedTask` of `tasks/get`, and a tool's
//! outcome as the stored payload.

use mcpgate_core::mcp::tasks::{self, TaskStatus};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, DetailedTask, JsonObject, Task, TaskPayload};

use crate::store::{TaskRecord, TaskUpdate};

fn wire_status(s: TaskStatus) -> rmcp::model::TaskStatus {
    use rmcp::model::TaskStatus as W;
    match s {
        TaskStatus::Working => W::Working,
        TaskStatus::InputRequired => W::InputRequired,
        TaskStatus::Completed => W::Completed,
        TaskStatus::Failed => W::Failed,
        TaskStatus::Cancelled => W::Cancelled,
    }
}

/// The base `Task` (`ttlMs`, `pollIntervalMs` in integer milliseconds).
pub fn task(r: &TaskRecord) -> Task {
    let mut t = Task::new(
        r.task_id.clone(),
        wire_status(r.status),
        tasks::iso8601_millis(r.created_at_ms),
        tasks::iso8601_millis(r.updated_at_ms),
    )
    .with_ttl_ms(u64::try_from(r.ttl_ms).unwrap_or_default())
    .with_poll_interval_ms(tasks::POLL_INTERVAL_MS);
    if let Some(m) = &r.status_message {
        t = t.with_status_message(m.clone());
    }
    t
}

fn object(json: Option<&str>, what: &str) -> Result<JsonObject, McpError> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| {
            McpError::internal_error(format!("the stored task has no valid {what}"), None)
        })
}

/// The `DetailedTask`: the result inlined when completed, the error when
/// failed, the outstanding requests when input is required.
pub fn detailed(r: &TaskRecord) -> Result<DetailedTask, McpError> {
    let payload = match r.status {
        TaskStatus::Working => TaskPayload::Working,
        TaskStatus::Cancelled => TaskPayload::Cancelled,
        TaskStatus::Completed => TaskPayload::Completed {
            result: object(r.result.as_deref(), "result")?,
        },
        TaskStatus::Failed => TaskPayload::Failed {
            error: object(r.error.as_deref(), "error")?,
        },
        TaskStatus::InputRequired => TaskPayload::InputRequired {
            input_requests: r
                .input_requests
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .ok_or_else(|| {
                    McpError::internal_error("the stored task has no valid inputRequests", None)
                })?,
        },
    };
    Ok(DetailedTask::new(task(r), payload))
}

/// A JSON-RPC error as the `error` of a failed task.
pub fn error_json(e: &McpError) -> String {
    let mut o = serde_json::json!({ "code": e.code.0, "message": e.message });
    if let Some(d) = &e.data {
        o["data"] = d.clone();
    }
    o.to_string()
}

/// What a finished upstream call makes of the task: `completed` with the
/// tool's result (a tool error too: `isError` is part of the result), or
/// `failed` with the protocol error, or with [`tasks::RESULT_TOO_LARGE`]
/// when the result exceeds [`tasks::MAX_RESULT_BYTES`].
pub fn outcome(result: Result<CallToolResult, McpError>) -> TaskUpdate {
    let failed = |e: &McpError| TaskUpdate {
        error: Some(error_json(e)),
        ..TaskUpdate::status(TaskStatus::Failed)
    };
    match result {
        Ok(r) => match serde_json::to_string(&r) {
            Ok(json) if json.len() <= tasks::MAX_RESULT_BYTES => TaskUpdate {
                result: Some(json),
                ..TaskUpdate::status(TaskStatus::Completed)
            },
            Ok(json) => failed(&McpError::new(
                rmcp::model::ErrorCode(tasks::RESULT_TOO_LARGE),
                format!(
                    "the tool's result ({} bytes) is larger than the {} bytes a task keeps",
                    json.len(),
                    tasks::MAX_RESULT_BYTES
                ),
                None,
            )),
            Err(e) => failed(&McpError::internal_error(
                format!("the tool's result cannot be stored: {e}"),
                None,
            )),
        },
        Err(e) => failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock as Content;

    fn record(status: TaskStatus, update: &TaskUpdate) -> TaskRecord {
        TaskRecord {
            task_id: "t1".into(),
            owner: "u".into(),
            client_id: "c".into(),
            upstream: "up".into(),
            tool: "slow".into(),
            instance_id: "i".into(),
            status,
            status_message: None,
            result: update.result.clone(),
            error: update.error.clone(),
            input_requests: None,
            ttl_ms: 60_000,
            created_at_ms: 1_000,
            updated_at_ms: 2_500,
            expires_at: 61,
        }
    }

    #[test]
    fn a_tool_error_completes_the_task_with_is_error() {
        let u = outcome(Ok(CallToolResult::error(vec![Content::text("no")])));
        assert_eq!(u.status, TaskStatus::Completed);
        let v = serde_json::to_value(detailed(&record(u.status, &u)).unwrap()).unwrap();
        assert_eq!(v["status"], "completed");
        assert_eq!(v["result"]["isError"], true);
        assert_eq!(v["ttlMs"], 60_000);
        assert_eq!(v["createdAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["lastUpdatedAt"], "1970-01-01T00:00:02.500Z");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn a_protocol_error_fails_the_task_with_the_error_and_no_result() {
        let u = outcome(Err(McpError::internal_error("boom", None)));
        let v = serde_json::to_value(detailed(&record(u.status, &u)).unwrap()).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"]["code"], -32603);
        assert_eq!(v["error"]["message"], "boom");
        assert!(v.get("result").is_none());
    }

    #[test]
    fn a_result_too_large_to_keep_fails_the_task() {
        let big = "x".repeat(tasks::MAX_RESULT_BYTES);
        let u = outcome(Ok(CallToolResult::success(vec![Content::text(big)])));
        assert_eq!(u.status, TaskStatus::Failed);
        assert!(u.result.is_none());
        assert!(u.error.unwrap().contains("larger than"));
    }
}
