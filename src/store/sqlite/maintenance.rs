//! Migrations, the purge of expired rows, and server keys on SQLite.

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::UnixTime;
use sqlx::SqlitePool;

use super::{begin_write, col, db};
use crate::store::{StoreError, StoreResult};

pub(super) async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::migrate!("./migrations/sqlite")
        .run(pool)
        .await
        .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
    super::users::normalize_usernames(pool).await
}

pub(super) async fn purge_expired(pool: &SqlitePool, before: UnixTime) -> StoreResult<u64> {
    let mut tx = begin_write(pool).await?;
    let mut purged = 0;
    for sql in [
        "DELETE FROM auth_codes WHERE expires_at < ?",
        "DELETE FROM login_sessions WHERE expires_at < ?",
        "DELETE FROM federation_logins WHERE expires_at < ?",
        "DELETE FROM upstream_connects WHERE expires_at < ?",
        "DELETE FROM access_tokens WHERE expires_at < ?",
        "DELETE FROM refresh_tokens WHERE expires_at < ?",
        "DELETE FROM client_assertion_jtis WHERE expires_at < ?",
        "DELETE FROM mcp_tasks WHERE expires_at < ?",
        "DELETE FROM mcp_task_inputs WHERE created_at < ?",
    ] {
        purged += sqlx::query(sql)
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
    }
    tx.commit().await.map_err(db)?;
    Ok(purged)
}

/// One statement, so concurrent uses serialise on the primary key: the
/// insert (or the update of an expired row) succeeds for exactly one.
pub(super) async fn use_assertion_jti(
    pool: &SqlitePool,
    client_id: &ClientId,
    jti_hash: &str,
    expires_at: UnixTime,
    now: UnixTime,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (client_id, jti_hash) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE client_assertion_jtis.expires_at < ?4",
    )
    .bind(client_id.as_str())
    .bind(jti_hash)
    .bind(expires_at)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn server_key(
    pool: &SqlitePool,
    name: &str,
    candidate: &[u8],
) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO server_keys (name, key) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(candidate)
        .execute(pool)
        .await
        .map_err(db)?;
    let row = sqlx::query("SELECT key FROM server_keys WHERE name = ?")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    col(&row, "key")
}
