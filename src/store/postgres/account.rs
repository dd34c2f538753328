//! The grants of a user for the account page (`crate::store::account`):
//! the user's access and refresh tokens in one query, folded into grants
//! by [`grants_from_rows`]; and forgetting a user's consents to a client
//! when the user revokes its access.

use mcpgate_core::model::UnixTime;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{col, db};
use crate::store::StoreResult;
use crate::store::account::{TokenRow, UserGrant, grants_from_rows};

const TOKEN_ROWS: &str = "SELECT grant_id, client_id, scope, created_at, expires_at, revoked_at, \
     CAST(NULL AS BIGINT) AS rotated_at, 0 AS is_refresh \
     FROM access_tokens WHERE user_id = $1 \
     UNION ALL \
     SELECT grant_id, client_id, scope, created_at, expires_at, revoked_at, rotated_at, 1 AS is_refresh \
     FROM refresh_tokens WHERE user_id = $1";

fn token_row(r: &PgRow) -> StoreResult<TokenRow> {
    let is_refresh: i32 = col(r, "is_refresh")?;
    Ok(TokenRow {
        grant_id: col(r, "grant_id")?,
        client_id: col(r, "client_id")?,
        scope: col(r, "scope")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        revoked_at: col(r, "revoked_at")?,
        rotated_at: col(r, "rotated_at")?,
        is_refresh: is_refresh != 0,
    })
}

pub(super) async fn grants_of_user(
    pool: &PgPool,
    user_id: &str,
    now: UnixTime,
) -> StoreResult<Vec<UserGrant>> {
    let rows = sqlx::query(TOKEN_ROWS)
        .bind(user_id)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    let rows = rows
        .iter()
        .map(token_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(grants_from_rows(rows, now))
}

pub(super) async fn forget_consents(
    pool: &PgPool,
    user_id: &str,
    client_id: &str,
) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
        .bind(user_id)
        .bind(client_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected())
}
