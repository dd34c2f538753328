//! Tasks (SEP-2663, `crate::tasks`).

use mcpgate_core::mcp::tasks::TaskStatus;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{col, db, insert_error};
use crate::store::{StoreError, StoreResult, TaskRecord, TaskUpdate};

const COLUMNS: &str = "task_id, owner, client_id, upstream, tool, instance_id, status, \
     status_message, result, error, input_requests, ttl_ms, created_at_ms, updated_at_ms, expires_at";

fn task_from_row(row: &PgRow) -> StoreResult<TaskRecord> {
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

pub(super) async fn create_task(pool: &PgPool, t: &TaskRecord) -> StoreResult<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mcp_tasks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
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

pub(super) async fn task(pool: &PgPool, task_id: &str) -> StoreResult<Option<TaskRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mcp_tasks WHERE task_id = $1"
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
    pool: &PgPool,
    task_id: &str,
    u: &TaskUpdate,
    now_ms: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE mcp_tasks SET status = $1, status_message = $2, result = $3, error = $4, \
         input_requests = $5, updated_at_ms = GREATEST(updated_at_ms, $6) \
         WHERE task_id = $7 AND status IN ('working', 'input_required')",
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
