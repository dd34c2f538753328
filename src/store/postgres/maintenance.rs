//! Migrations, the purge of expired rows, and server keys on PostgreSQL.

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::UnixTime;
use sqlx::PgPool;

use super::{begin, col, db};
use crate::store::{StoreError, StoreResult};

pub(super) async fn migrate(pool: &PgPool) -> StoreResult<()> {
    sqlx::migrate!("./migrations/postgres")
        .run(pool)
        .await
        .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
    super::users::normalize_usernames(pool).await
}

pub(super) async fn purge_expired(pool: &PgPool, before: UnixTime) -> StoreResult<u64> {
    let mut tx = begin(pool).await?;
    let mut purged = 0;
    for sql in [
        "DELETE FROM auth_codes WHERE expires_at < $1",
        "DELETE FROM login_sessions WHERE expires_at < $1",
        "DELETE FROM federation_logins WHERE expires_at < $1",
        "DELETE FROM upstream_connects WHERE expires_at < $1",
        "DELETE FROM access_tokens WHERE expires_at < $1",
        "DELETE FROM refresh_tokens WHERE expires_at < $1",
        "DELETE FROM client_assertion_jtis WHERE expires_at < $1",
        "DELETE FROM mcp_tasks WHERE expires_at < $1",
        "DELETE FROM mcp_task_inputs WHERE created_at < $1",
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
    pool: &PgPool,
    client_id: &ClientId,
    jti_hash: &str,
    expires_at: UnixTime,
    now: UnixTime,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (client_id, jti_hash) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE client_assertion_jtis.expires_at < $4",
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
    pool: &PgPool,
    name: &str,
    candidate: &[u8],
) -> StoreResult<Vec<u8>> {
    // A concurrent insert of the same name makes this one wait for it to
    // commit, then do nothing: the read below sees the winner's key.
    sqlx::query(
        "INSERT INTO server_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .execute(pool)
    .await
    .map_err(db)?;
    let row = sqlx::query("SELECT key FROM server_keys WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    col(&row, "key")
}
