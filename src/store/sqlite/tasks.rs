//! Tasks (SEP-2663, `crate::tasks`).

use mcpgate_core::mcp::tasks::TaskStatus;
use mcpgate_core::model::UnixTime;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteRow;

use super::{col, db, insert_error};
use crate::store::{StoreError, StoreResult, TaskRecord, TaskUpdate};

const COLUMNS: &str = "task_id, owner, client_id, upstream, tool, instance_id, status, \
     status_message, result, error, input_requests, ttl_ms, created_at_ms, updated_at_ms, expires_at";

fn task_from_row(row: &SqliteRow) -> StoreResult<TaskRecord> {
    let status: String = col(row, "status")?;
    Ok(TaskRecord {
        task_id: col(row, "task_id")?,
        owner: col(row, "owner")?,
        client_id: col(row, "client_id")?,
        upstream: col(row, "upstream")?,
        tool: col(row, "tool")?,
        instance_id: col(row, "instance_id")?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("task status {status:?}")))?,
        status_message: col(row, "status_message")?,
        result: col(row, "result")?,
        error: col(row, "error")?,
        input_requests: col(row, "input_requests")?,
        ttl_ms: col(row, "ttl_ms")?,
        created_at_ms: col(row, "created_at_ms")?,
        updated_at_ms: col(row, "updated_at_ms")?,
        expires_at: col(row, "expires_at")?,
    })
}

pub(super) async fn create_task(pool: &SqlitePool, t: &TaskRecord) -> StoreResult<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mcp_tasks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )))
    .bind(&t.task_id)
    .bind(&t.owner)
    .bind(&t.client_id)
    .bind(&t.upstream)
    .bind(&t.tool)
    .bind(&t.instance_id)
    .bind(t.status.as_str())
    .bind(&t.status_message)
    .bind(&t.result)
    .bind(&t.error)
    .bind(&t.input_requests)
    .bind(t.ttl_ms)
    .bind(t.created_at_ms)
    .bind(t.updated_at_ms)
    .bind(t.expires_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || format!("task {}", t.task_id)))?;
    Ok(())
}

pub(super) async fn task(pool: &SqlitePool, task_id: &str) -> StoreResult<Option<TaskRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mcp_tasks WHERE task_id = ?"
    )))
    .bind(task_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(task_from_row)
    .transpose()
}

pub(super) async fn update_task(
    pool: &SqlitePool,
    task_id: &str,
    u: &TaskUpdate,
    now_ms: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE mcp_tasks SET status = ?, status_message = ?, result = ?, error = ?, \
         input_requests = ?, updated_at_ms = MAX(updated_at_ms, ?) \
         WHERE task_id = ? AND status IN ('working', 'input_required')",
    )
    .bind(u.status.as_str())
    .bind(&u.status_message)
    .bind(&u.result)
    .bind(&u.error)
    .bind(&u.input_requests)
    .bind(now_ms)
    .bind(task_id)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn push_task_input(
    pool: &SqlitePool,
    task_id: &str,
    responses: &str,
    now: UnixTime,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO mcp_task_inputs (task_id, responses, created_at) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(task_id)
    .bind(responses)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(db)?;
    col(&row, "id")
}

pub(super) async fn take_task_inputs(
    pool: &SqlitePool,
    task_id: &str,
) -> StoreResult<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "UPDATE mcp_task_inputs SET taken = 1 WHERE task_id = ? AND taken = 0 \
         RETURNING id, responses",
    )
    .bind(task_id)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out = rows
        .iter()
        .map(|r| Ok((col(r, "id")?, col(r, "responses")?)))
        .collect::<StoreResult<Vec<(i64, String)>>>()?;
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

pub(super) async fn settle_task_input(
    pool: &SqlitePool,
    id: i64,
    outcome: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE mcp_task_inputs SET outcome = ? WHERE id = ?")
        .bind(outcome)
        .bind(id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn take_task_input_outcome(
    pool: &SqlitePool,
    id: i64,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "DELETE FROM mcp_task_inputs WHERE id = ? AND outcome IS NOT NULL RETURNING outcome",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(|r| col(r, "outcome")).transpose()
}
