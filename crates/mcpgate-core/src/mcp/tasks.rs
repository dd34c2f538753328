//! Rules of the tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`)
//! as mcpgate runs it on top of upstream tool calls.
//!
//! mcpgate is the task *receiver*: a `tools/call` of a task-supporting
//! tool from a client that declared the extension (in the session's
//! `initialize` or in the request's `_meta`, SEP-2575) becomes a task that
//! mcpgate creates, runs in the background and keeps in its store; the
//! client polls `tasks/get` for the `DetailedTask`. This module holds the
//! decisions that need no I/O:
//!
//! - [`TaskSupport`]: what a tool declares (`forbidden`, `optional`,
//!   `required`), read from the tool's `execution.taskSupport` (2025-11-25)
//!   or from its `_meta["io.modelcontextprotocol/tasks"].taskSupport`;
//! - [`dispatch`]: synchronous call, task, or the `-32021` Missing Required
//!   Client Capability error (SEP-2663 §Required Capabilities);
//! - [`TaskStatus`]: the lifecycle, whose terminal states never change
//!   (a late result does not overwrite `cancelled`);
//! - [`visible_to`]: a task is seen only by the user *and* client that
//!   created it; to anyone else it does not exist (answered as an unknown
//!   id, `-32602`, SEP-2663 §Security);
//! - [`Ttl`]: the lifetime mcpgate grants (`ttlMs`), and when a stored task
//!   is no longer served;
//! - [`iso8601_millis`]: the `createdAt`/`lastUpdatedAt` timestamps.

use serde_json::Value;

use crate::model::UnixTime;

/// The extension's identifier (SEP-2663).
pub const EXTENSION_ID: &str = "io.modelcontextprotocol/tasks";

/// Largest tool result (as JSON) a task stores; a larger one makes the task
/// `failed` with [`RESULT_TOO_LARGE`], so that one upstream cannot fill the
/// database. A quarter of the largest MCP request body.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// JSON-RPC code of the error a task fails with when its result is larger
/// than [`MAX_RESULT_BYTES`] (internal error).
pub const RESULT_TOO_LARGE: i32 = -32603;

/// At most this many tasks of one owner run at once on an instance; one
/// more is refused, so that one user cannot hold every upstream call.
pub const MAX_RUNNING_PER_OWNER: usize = 32;

/// A call of a task-supporting tool from a 2026-07-28 client that ends, or
/// asks the client (a multi-round-trip `InputRequiredResult`), within this
/// many milliseconds is answered as an ordinary call; one still running
/// then becomes a task (SEP-2663: the server decides; the immediate-result
/// shortcut; input gathered before the task is created). More than the
/// input broker's quiet time (60 ms) after a first question.
pub const ESCALATE_AFTER_MS: u64 = 250;

/// How often a client should poll `tasks/get` (`pollIntervalMs`).
pub const POLL_INTERVAL_MS: u64 = 500;

/// A tool's declared task support (2025-11-25 `ToolExecution.taskSupport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSupport {
    /// The tool is always called synchronously (the default).
    #[default]
    Forbidden,
    /// A task when the client supports tasks, else a synchronous call.
    Optional,
    /// Only as a task: a client without the extension gets `-32021`.
    Required,
}

impl TaskSupport {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "forbidden" => Some(Self::Forbidden),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    /// The support a tool declares, from its JSON (as listed by its
    /// server): `execution.taskSupport`, else
    /// `_meta["io.modelcontextprotocol/tasks"].taskSupport`; an absent or
    /// unknown value is [`TaskSupport::Forbidden`].
    pub fn of_tool(tool: &Value) -> Self {
        let declared = tool
            .pointer("/execution/taskSupport")
            .or_else(|| {
                tool.get("_meta")
                    .and_then(|m| m.get(EXTENSION_ID))
                    .and_then(|t| t.get("taskSupport"))
            })
            .and_then(Value::as_str);
        declared.and_then(Self::parse).unwrap_or_default()
    }
}

/// How a `tools/call` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// An ordinary call, answered with the tool's result.
    Sync,
    /// mcpgate creates a task and answers `CreateTaskResult`.
    Task,
    /// The tool requires tasks and the client did not declare them:
    /// `-32021` with `requiredCapabilities.extensions[EXTENSION_ID]`.
    MissingCapability,
}

/// The server-directed decision (SEP-2663 §Task Creation: the server alone
/// decides; a legacy `task` hint in the request is ignored).
pub fn dispatch(support: TaskSupport, client_declared_tasks: bool) -> Dispatch {
    match (support, client_declared_tasks) {
        (TaskSupport::Forbidden, _) => Dispatch::Sync,
        (_, true) => Dispatch::Task,
        (TaskSupport::Optional, false) => Dispatch::Sync,
        (TaskSupport::Required, false) => Dispatch::MissingCapability,
    }
}

/// A task's status (SEP-2663 §Task Status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        Self::Working,
        Self::InputRequired,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// `completed`, `failed` and `cancelled` are final: nothing changes a
    /// task in one of them.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// Whether a task owned by (`task_owner`, `task_client`) is visible to a
/// caller (`owner`, `client`): only to the same user through the same
/// client. Owners are `Caller::owner()` values (a user id, or
/// `client:<id>` for a service).
pub fn visible_to(task_owner: &str, task_client: &str, owner: &str, client: &str) -> bool {
    crate::crypto::constant_time_eq(task_owner.as_bytes(), owner.as_bytes())
        & crate::crypto::constant_time_eq(task_client.as_bytes(), client.as_bytes())
}

/// The lifetime of tasks mcpgate creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    /// `ttlMs` of a new task.
    pub ms: u64,
}

impl Ttl {
    /// One hour: long enough for a client to come back after a reconnect.
    pub const DEFAULT: Ttl = Ttl { ms: 3_600_000 };

    /// When a task created at `created_at_ms` (Unix milliseconds) expires,
    /// in Unix seconds, rounded up: it is served until then, never less
    /// than `ttlMs` (SEP-2663: a task MUST remain available for its TTL).
    pub fn expires_at(self, created_at_ms: i64) -> UnixTime {
        let end = created_at_ms.saturating_add(i64::try_from(self.ms).unwrap_or(i64::MAX));
        end.div_euclid(1000) + i64::from(end.rem_euclid(1000) != 0)
    }
}

/// Whether a stored task that expires at `expires_at` is still served at
/// `now` (Unix seconds). An expired task reads as unknown until the
/// housekeeping purges it.
pub fn is_live(expires_at: UnixTime, now: UnixTime) -> bool {
    now < expires_at
}

/// Unix milliseconds as an ISO 8601 / RFC 3339 UTC timestamp with
/// milliseconds, e.g. `2026-07-28T09:05:03.042Z`.
pub fn iso8601_millis(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_support_is_read_from_execution_or_meta_and_defaults_to_forbidden() {
        let of = |v: Value| TaskSupport::of_tool(&v);
        assert_eq!(
            of(json!({"name": "a", "execution": {"taskSupport": "required"}})),
            TaskSupport::Required
        );
        assert_eq!(
            of(json!({"name": "a", "_meta": {EXTENSION_ID: {"taskSupport": "optional"}}})),
            TaskSupport::Optional
        );
        assert_eq!(of(json!({"name": "a"})), TaskSupport::Forbidden);
        assert_eq!(
            of(json!({"name": "a", "execution": {"taskSupport": "always"}})),
            TaskSupport::Forbidden
        );
        assert_eq!(
            of(json!({"name": "a", "execution": {"taskSupport": 1}})),
            TaskSupport::Forbidden
        );
    }

    #[test]
    fn the_server_decides_between_sync_task_and_the_missing_capability_error() {
        use Dispatch::*;
        use TaskSupport::*;
        assert_eq!(dispatch(Forbidden, true), Sync);
        assert_eq!(dispatch(Forbidden, false), Sync);
        assert_eq!(dispatch(Optional, true), Task);
        assert_eq!(dispatch(Optional, false), Sync);
        assert_eq!(dispatch(Required, true), Task);
        assert_eq!(dispatch(Required, false), MissingCapability);
    }

    #[test]
    fn statuses_round_trip_and_only_the_last_three_are_terminal() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("done"), None);
        let terminal: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                TaskStatus::Completed,
                TaskStatus::Failed,
                TaskStatus::Cancelled
            ]
        );
    }

    #[test]
    fn a_task_is_visible_only_to_its_own_user_and_client() {
        assert!(visible_to("u1", "c1", "u1", "c1"));
        assert!(!visible_to("u1", "c1", "u2", "c1"), "another user");
        assert!(!visible_to("u1", "c1", "u1", "c2"), "another client");
        assert!(!visible_to("client:c1", "c1", "u1", "c1"), "a service");
    }

    #[test]
    fn a_task_lives_at_least_its_ttl() {
        let ttl = Ttl { ms: 1500 };
        // Created at 10.2 s: ends at 11.7 s, served until 12 s.
        assert_eq!(ttl.expires_at(10_200), 12);
        assert_eq!(Ttl { ms: 1000 }.expires_at(10_000), 11);
        assert!(is_live(12, 11));
        assert!(!is_live(12, 12));
        assert_eq!(Ttl { ms: u64::MAX }.expires_at(1), i64::MAX / 1000 + 1);
    }

    #[test]
    fn timestamps_are_iso8601_utc_with_milliseconds() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            iso8601_millis(1_785_229_503_042),
            "2026-07-28T09:05:03.042Z"
        );
        assert_eq!(iso8601_millis(-1), "1969-12-31T23:59:59.999Z");
    }
}
