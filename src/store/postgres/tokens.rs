//! Authorization codes, access tokens and refresh tokens.
//!
//! [`redeem_code`] and [`rotate_refresh_token`] are the two races of the
//! protocol, which instances sharing the database can run at the same
//! moment. Each runs in one transaction whose first statement is the
//! conditional `UPDATE` that claims the code or token (`... AND used_at IS
//! NULL`, `... AND rotated_at IS NULL AND revoked_at IS NULL`). The `UPDATE`
//! locks the row: a concurrent claim waits for the first transaction to end
//! and, under READ COMMITTED, re-checks its condition against the committed
//! row, so it changes nothing. Only the request whose `UPDATE` changed a
//! row goes on to store tokens; the other rolls back, storing nothing.

use mcpgate_core::domain::{ClientId, CodeChallenge, RedirectUri, ResourceUri, Scope};
use mcpgate_core::model::{AccessToken, AuthCode, RefreshToken, UnixTime};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};

use super::{PgStore, begin, col, count, db, insert_error, parsed, parsed_opt};
use crate::store::StoreResult;

// ---- authorization codes ----

pub(super) async fn create_code(pool: &PgPool, code: &AuthCode) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri, \
         redirect_uri_explicit, scope, resource, code_challenge, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&code.code_hash)
    .bind(&code.grant_id)
    .bind(code.client_id.as_str())
    .bind(&code.user_id)
    .bind(code.redirect_uri.as_str())
    .bind(code.redirect_uri_explicit)
    .bind(code.scope.to_string())
    .bind(code.resource.as_str())
    .bind(code.code_challenge.as_ref().map(CodeChallenge::as_str))
    .bind(code.created_at)
    .bind(code.expires_at)
    .bind(code.used_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || "authorization code".to_string()))?;
    Ok(())
}

pub(super) async fn code(pool: &PgPool, code_hash: &str) -> StoreResult<Option<AuthCode>> {
    let row = sqlx::query(
        "SELECT code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_explicit, \
         scope, resource, code_challenge, created_at, expires_at, used_at \
         FROM auth_codes WHERE code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(AuthCode {
        code_hash: col(&row, "code_hash")?,
        grant_id: col(&row, "grant_id")?,
        client_id: parsed(&row, "client_id", ClientId::parse)?,
        user_id: col(&row, "user_id")?,
        redirect_uri: parsed(&row, "redirect_uri", RedirectUri::parse)?,
        redirect_uri_explicit: col(&row, "redirect_uri_explicit")?,
        scope: parsed(&row, "scope", Scope::parse)?,
        resource: parsed(&row, "resource", ResourceUri::parse)?,
        code_challenge: parsed_opt(&row, "code_challenge", |s| {
            CodeChallenge::parse(s, Some("S256"))
        })?,
        created_at: col(&row, "created_at")?,
        expires_at: col(&row, "expires_at")?,
        used_at: col(&row, "used_at")?,
    }))
}

pub(super) async fn redeem_code(
    store: &PgStore,
    code_hash: &str,
    now: UnixTime,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<bool> {
    let sql = if refresh.is_some() {
        REDEEM_WITH_REFRESH
    } else {
        REDEEM
    };
    let query = sqlx::query_scalar::<_, i64>(sql).bind(now).bind(code_hash);
    let query = bind_access(query, access);
    let query = match refresh {
        Some(r) => bind_refresh(query, r),
        None => query,
    };
    let claimed = query
        .fetch_one(&store.pool)
        .await
        .map_err(token_insert_error)?;
    Ok(claimed == 1)
}

// ---- one statement per claim ----
//
// A redemption or rotation is one statement: the claim in a data-modifying
// `WITH`, then the inserts, each `SELECT ... FROM claimed`, so they store
// nothing unless the claim changed a row. One statement is one transaction
// (and one round trip) instead of five (BEGIN, UPDATE, INSERT, INSERT,
// COMMIT) holding a pooled connection across them. The claim behaves as
// the module docs say: a concurrent claim waits on the row lock, re-checks
// against the committed row and claims nothing. A failing insert (a
// duplicate hash) fails the whole statement, so nothing is stored.

/// `$1` now, `$2` the code's hash; the access token `$3`..`$11`.
const REDEEM: &str = "WITH claimed AS (\
    UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING 1), \
    access AS (INSERT INTO access_tokens (token_hash, grant_id, client_id, user_id, scope, \
    resource, created_at, expires_at, revoked_at) \
    SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM claimed) \
    SELECT COUNT(*) FROM claimed";

/// As [`REDEEM`], and the refresh token `$12`..`$22`.
const REDEEM_WITH_REFRESH: &str = "WITH claimed AS (\
    UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING 1), \
    access AS (INSERT INTO access_tokens (token_hash, grant_id, client_id, user_id, scope, \
    resource, created_at, expires_at, revoked_at) \
    SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM claimed), \
    refresh AS (INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, \
    resource, created_at, expires_at, rotated_at, successor_hash, revoked_at) \
    SELECT $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22 FROM claimed) \
    SELECT COUNT(*) FROM claimed";

/// `$1` now, `$2` the successor's hash, `$3` the rotated token's hash; the
/// access token `$4`..`$12`, the refresh token `$13`..`$23`.
const ROTATE: &str = "WITH claimed AS (\
    UPDATE refresh_tokens SET rotated_at = $1, successor_hash = $2 \
    WHERE token_hash = $3 AND rotated_at IS NULL AND revoked_at IS NULL RETURNING 1), \
    access AS (INSERT INTO access_tokens (token_hash, grant_id, client_id, user_id, scope, \
    resource, created_at, expires_at, revoked_at) \
    SELECT $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM claimed), \
    refresh AS (INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, \
    resource, created_at, expires_at, rotated_at, successor_hash, revoked_at) \
    SELECT $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23 FROM claimed) \
    SELECT COUNT(*) FROM claimed";

type Claim<'q> = sqlx::query::QueryScalar<
    'q,
    sqlx::Postgres,
    i64,
    <sqlx::Postgres as sqlx::Database>::Arguments,
>;

/// Binds an access token's nine columns, in the order of the statements above.
fn bind_access<'q>(q: Claim<'q>, t: &'q AccessToken) -> Claim<'q> {
    q.bind(&t.token_hash)
        .bind(&t.grant_id)
        .bind(t.client_id.as_str())
        .bind(&t.user_id)
        .bind(t.scope.to_string())
        .bind(t.resource.as_str())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
}

/// Binds a refresh token's eleven columns, in the order of the statements above.
fn bind_refresh<'q>(q: Claim<'q>, t: &'q RefreshToken) -> Claim<'q> {
    q.bind(&t.token_hash)
        .bind(&t.grant_id)
        .bind(t.client_id.as_str())
        .bind(&t.user_id)
        .bind(t.scope.to_string())
        .bind(t.resource.as_str())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.rotated_at)
        .bind(&t.successor_hash)
        .bind(t.revoked_at)
}

/// A claim's failure; a duplicate hash is a conflict naming the table.
fn token_insert_error(e: sqlx::Error) -> crate::store::StoreError {
    let what = match e.as_database_error().and_then(|d| d.table()) {
        Some("refresh_tokens") => "refresh token",
        _ => "access token",
    };
    insert_error(e, || what.to_string())
}

pub(super) async fn mark_code_used(
    pool: &PgPool,
    code_hash: &str,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
        .bind(now)
        .bind(code_hash)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

// ---- tokens ----

async fn insert_access_token(conn: &mut PgConnection, t: &AccessToken) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, grant_id, client_id, user_id, scope, resource, \
         created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.token_hash)
    .bind(&t.grant_id)
    .bind(t.client_id.as_str())
    .bind(&t.user_id)
    .bind(t.scope.to_string())
    .bind(t.resource.as_str())
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.revoked_at)
    .execute(conn)
    .await
    .map_err(|e| insert_error(e, || "access token".to_string()))?;
    Ok(())
}

fn access_token_from_row(row: &PgRow) -> StoreResult<AccessToken> {
    Ok(AccessToken {
        token_hash: col(row, "token_hash")?,
        grant_id: col(row, "grant_id")?,
        client_id: parsed(row, "client_id", ClientId::parse)?,
        user_id: col(row, "user_id")?,
        scope: parsed(row, "scope", Scope::parse)?,
        resource: parsed(row, "resource", ResourceUri::parse)?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

fn refresh_token_from_row(row: &PgRow) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        token_hash: col(row, "token_hash")?,
        grant_id: col(row, "grant_id")?,
        client_id: parsed(row, "client_id", ClientId::parse)?,
        user_id: col(row, "user_id")?,
        scope: parsed(row, "scope", Scope::parse)?,
        resource: parsed(row, "resource", ResourceUri::parse)?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
        rotated_at: col(row, "rotated_at")?,
        successor_hash: col(row, "successor_hash")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

pub(super) async fn access_token(
    pool: &PgPool,
    token_hash: &str,
) -> StoreResult<Option<AccessToken>> {
    sqlx::query(
        "SELECT token_hash, grant_id, client_id, user_id, scope, resource, created_at, \
         expires_at, revoked_at FROM access_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(access_token_from_row)
    .transpose()
}

pub(super) async fn refresh_token(
    pool: &PgPool,
    token_hash: &str,
) -> StoreResult<Option<RefreshToken>> {
    sqlx::query(
        "SELECT token_hash, grant_id, client_id, user_id, scope, resource, created_at, \
         expires_at, rotated_at, successor_hash, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(refresh_token_from_row)
    .transpose()
}

pub(super) async fn rotate_refresh_token(
    store: &PgStore,
    old_hash: &str,
    now: UnixTime,
    access: &AccessToken,
    refresh: &RefreshToken,
) -> StoreResult<bool> {
    let query = sqlx::query_scalar::<_, i64>(ROTATE)
        .bind(now)
        .bind(&refresh.token_hash)
        .bind(old_hash);
    let claimed = bind_refresh(bind_access(query, access), refresh)
        .fetch_one(&store.pool)
        .await
        .map_err(token_insert_error)?;
    Ok(claimed == 1)
}

pub(super) async fn revoke_grant(pool: &PgPool, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
    let mut tx = begin(pool).await?;
    let mut revoked = 0;
    for sql in [
        "UPDATE access_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
    ] {
        revoked += sqlx::query(sql)
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
    }
    sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE grant_id = $2 AND used_at IS NULL")
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(revoked)
}

pub(super) async fn create_access_token(pool: &PgPool, t: &AccessToken) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(db)?;
    insert_access_token(&mut conn, t).await
}

pub(super) async fn revoke_access_token(
    pool: &PgPool,
    token_hash: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let revoked = sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(pool)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(revoked > 0)
}

pub(super) async fn count_active_access_tokens(
    pool: &PgPool,
    client_id: &ClientId,
    now: UnixTime,
) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens \
         WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(client_id.as_str())
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(db)?;
    count(n)
}

/// The asked hashes without an active token: live tokens, the usual
/// answer, cost no row.
pub(super) async fn dead_access_tokens(
    pool: &PgPool,
    token_hashes: &[String],
    now: UnixTime,
) -> StoreResult<Vec<String>> {
    if token_hashes.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "SELECT asked.h FROM unnest($1::text[]) AS asked(h) WHERE NOT EXISTS (\
           SELECT 1 FROM access_tokens a \
           WHERE a.token_hash = asked.h AND a.revoked_at IS NULL AND a.expires_at > $2)",
    )
    .bind(token_hashes)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db)
}

/// The counter the triggers of migration 0018 move on every change or
/// deletion of an access token row.
pub(super) async fn access_token_changes(pool: &PgPool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT n FROM access_token_changes WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)
}
