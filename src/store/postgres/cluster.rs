//! Shared state of several instances (`crate::cluster`): Streamable HTTP
//! sessions, legacy SSE sessions and their queued messages.

use mcpgate_core::model::UnixTime;
use sqlx::PgPool;
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::store::{McpSessionRecord, SseMessageRecord, SseSessionRecord, StoreError, StoreResult};

fn db(e: sqlx::Error) -> StoreError {
    super::db(e)
}

fn insert_error(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => db(e),
    }
}

fn col<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn mcp_session_from_row(row: &PgRow) -> StoreResult<McpSessionRecord> {
    Ok(McpSessionRecord {
        session_id: col(row, "session_id")?,
        user_id: col(row, "user_id")?,
        state: col(row, "state")?,
        created_at: col(row, "created_at")?,
        seen_at: col(row, "seen_at")?,
    })
}

fn sse_session_from_row(row: &PgRow) -> StoreResult<SseSessionRecord> {
    Ok(SseSessionRecord {
        session_id: col(row, "session_id")?,
        user_id: col(row, "user_id")?,
        instance_id: col(row, "instance_id")?,
        created_at: col(row, "created_at")?,
        seen_at: col(row, "seen_at")?,
    })
}

pub(super) async fn bind_mcp_session(
    pool: &PgPool,
    session_id: &str,
    user_id: &str,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cluster_mcp_sessions (session_id, user_id, created_at, seen_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET \
         user_id = COALESCE(cluster_mcp_sessions.user_id, excluded.user_id), seen_at = excluded.seen_at",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn save_mcp_session_state(
    pool: &PgPool,
    session_id: &str,
    state: &str,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cluster_mcp_sessions (session_id, state, created_at, seen_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET state = excluded.state",
    )
    .bind(session_id)
    .bind(state)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn mcp_session(
    pool: &PgPool,
    session_id: &str,
) -> StoreResult<Option<McpSessionRecord>> {
    sqlx::query(
        "SELECT session_id, user_id, state, created_at, seen_at \
         FROM cluster_mcp_sessions WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(mcp_session_from_row)
    .transpose()
}

pub(super) async fn touch_mcp_session(
    pool: &PgPool,
    session_id: &str,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE cluster_mcp_sessions SET seen_at = $1 WHERE session_id = $2 AND seen_at < $3",
    )
    .bind(now)
    .bind(session_id)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn delete_mcp_session(pool: &PgPool, session_id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM cluster_mcp_sessions WHERE session_id = $1")
        .bind(session_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn create_sse_session(pool: &PgPool, s: &SseSessionRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cluster_sse_sessions (session_id, user_id, instance_id, created_at, seen_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&s.session_id)
    .bind(&s.user_id)
    .bind(&s.instance_id)
    .bind(s.created_at)
    .bind(s.seen_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || format!("SSE session {:?}", s.session_id)))?;
    Ok(())
}

pub(super) async fn sse_session(
    pool: &PgPool,
    session_id: &str,
) -> StoreResult<Option<SseSessionRecord>> {
    sqlx::query(
        "SELECT session_id, user_id, instance_id, created_at, seen_at \
         FROM cluster_sse_sessions WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(sse_session_from_row)
    .transpose()
}

pub(super) async fn delete_sse_session(pool: &PgPool, session_id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM cluster_sse_sessions WHERE session_id = $1")
        .bind(session_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn heartbeat_sse_sessions(
    pool: &PgPool,
    instance_id: &str,
    now: UnixTime,
) -> StoreResult<u64> {
    let n = sqlx::query("UPDATE cluster_sse_sessions SET seen_at = $1 WHERE instance_id = $2")
        .bind(now)
        .bind(instance_id)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n)
}

pub(super) async fn push_sse_message(
    pool: &PgPool,
    session_id: &str,
    caller: &str,
    message: &str,
    now: UnixTime,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "INSERT INTO cluster_sse_messages (session_id, caller, message, created_at) \
         SELECT session_id, $1, $2, $3 FROM cluster_sse_sessions WHERE session_id = $4 RETURNING id",
    )
    .bind(caller)
    .bind(message)
    .bind(now)
    .bind(session_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(|r| col(r, "id")).transpose()
}

pub(super) async fn take_sse_messages(
    pool: &PgPool,
    session_id: &str,
) -> StoreResult<Vec<SseMessageRecord>> {
    let rows = sqlx::query(
        "DELETE FROM cluster_sse_messages WHERE session_id = $1 \
         RETURNING id, caller, message, created_at",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out = rows
        .iter()
        .map(|row| {
            Ok(SseMessageRecord {
                id: col(row, "id")?,
                caller: col(row, "caller")?,
                message: col(row, "message")?,
                created_at: col(row, "created_at")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING gives no order.
    out.sort_by_key(|m| m.id);
    Ok(out)
}

pub(super) async fn purge_cluster_sessions(
    pool: &PgPool,
    mcp_seen_before: UnixTime,
    sse_seen_before: UnixTime,
) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db)?;
    let mcp = sqlx::query("DELETE FROM cluster_mcp_sessions WHERE seen_at < $1")
        .bind(mcp_seen_before)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    let sse = sqlx::query("DELETE FROM cluster_sse_sessions WHERE seen_at < $1")
        .bind(sse_seen_before)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    tx.commit().await.map_err(db)?;
    Ok(mcp + sse)
}
