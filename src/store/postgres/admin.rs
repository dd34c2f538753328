//! The admin role and the live grants (`crate::store::admin`).

use mcpgate_core::model::UnixTime;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{begin, col, count, db};
use crate::store::{GrantSummary, StoreResult};

pub(super) async fn set_user_admin(pool: &PgPool, user_id: &str, admin: bool) -> StoreResult<bool> {
    let n = sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2")
        .bind(admin)
        .bind(user_id)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn admin_user_ids(pool: &PgPool) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT id FROM users WHERE is_admin ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(db)
}

pub(super) async fn set_user_disabled(
    pool: &PgPool,
    user_id: &str,
    at: Option<UnixTime>,
) -> StoreResult<bool> {
    let mut tx = begin(pool).await?;
    let n = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
        .bind(at)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    if n == 0 {
        tx.rollback().await.map_err(db)?;
        return Ok(false);
    }
    if let Some(now) = at {
        sqlx::query("DELETE FROM login_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for sql in [
            "UPDATE auth_codes SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
            "UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        ] {
            sqlx::query(sql)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn disabled_user_ids(pool: &PgPool) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT id FROM users WHERE disabled_at IS NOT NULL ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(db)
}

fn grant_from_row(row: &PgRow) -> StoreResult<GrantSummary> {
    Ok(GrantSummary {
        grant_id: col(row, "grant_id")?,
        client_id: col(row, "client_id")?,
        user_id: col(row, "user_id")?,
        scope: col(row, "scope")?,
        created_at: col(row, "created_at")?,
        last_used_at: col(row, "last_used_at")?,
        live_tokens: count(col(row, "live_tokens")?)?,
    })
}

/// The grant's tokens of both kinds, grouped by grant; the scope is the
/// newest token's.
pub(super) async fn live_grants(
    pool: &PgPool,
    user_id: Option<&str>,
    client_id: Option<&str>,
    now: UnixTime,
) -> StoreResult<Vec<GrantSummary>> {
    sqlx::query(
        "SELECT grant_id, MIN(client_id) AS client_id, MIN(user_id) AS user_id, \
                (ARRAY_AGG(scope ORDER BY created_at DESC))[1] AS scope, \
                MIN(created_at) AS created_at, MAX(created_at) AS last_used_at, \
                COUNT(*) FILTER (WHERE revoked_at IS NULL AND expires_at > $1) AS live_tokens \
         FROM (SELECT grant_id, client_id, user_id, scope, created_at, expires_at, revoked_at \
                 FROM access_tokens \
               UNION ALL \
               SELECT grant_id, client_id, user_id, scope, created_at, expires_at, revoked_at \
                 FROM refresh_tokens) AS t \
         WHERE ($2::TEXT IS NULL OR user_id = $2) AND ($3::TEXT IS NULL OR client_id = $3) \
         GROUP BY grant_id \
         HAVING COUNT(*) FILTER (WHERE revoked_at IS NULL AND expires_at > $1) > 0 \
         ORDER BY last_used_at DESC, grant_id",
    )
    .bind(now)
    .bind(user_id)
    .bind(client_id)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(grant_from_row)
    .collect()
}
