//! Per-user OAuth to upstream MCP servers (`crate::store::upstream_oauth`).

use mcpgate_core::model::UnixTime;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{col, db, insert_error};
use crate::store::StoreResult;
use crate::store::upstream_oauth::{
    UpstreamClientRecord, UpstreamConnectRecord, UpstreamTokenRecord,
};

const TOKEN_COLUMNS: &str = "user_id, upstream, url, kid, sealed, expires_at, scope, account, \
     version, created_at, updated_at, last_used_at";

fn token_from_row(row: &PgRow) -> StoreResult<UpstreamTokenRecord> {
    Ok(UpstreamTokenRecord {
        user_id: col(row, "user_id")?,
        upstream: col(row, "upstream")?,
        url: col(row, "url")?,
        kid: col(row, "kid")?,
        sealed: col(row, "sealed")?,
        expires_at: col(row, "expires_at")?,
        scope: col(row, "scope")?,
        account: col(row, "account")?,
        version: col(row, "version")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        last_used_at: col(row, "last_used_at")?,
    })
}

pub(super) async fn vault_keys(pool: &PgPool) -> StoreResult<Vec<(String, UnixTime)>> {
    let rows = sqlx::query(
        "SELECT kid, created_at FROM upstream_vault_keys ORDER BY created_at DESC, kid DESC",
    )
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| Ok((col(r, "kid")?, col(r, "created_at")?)))
        .collect()
}

pub(super) async fn add_vault_key(pool: &PgPool, kid: &str, now: UnixTime) -> StoreResult<()> {
    sqlx::query("INSERT INTO upstream_vault_keys (kid, created_at) VALUES ($1, $2)")
        .bind(kid)
        .bind(now)
        .execute(pool)
        .await
        .map_err(|e| insert_error(e, || format!("vault key {kid}")))?;
    Ok(())
}

pub(super) async fn upstream_token(
    pool: &PgPool,
    user_id: &str,
    upstream: &str,
) -> StoreResult<Option<UpstreamTokenRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM upstream_tokens WHERE user_id = $1 AND upstream = $2"
    )))
    .bind(user_id)
    .bind(upstream)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(token_from_row)
    .transpose()
}

pub(super) async fn upstream_tokens_of_user(
    pool: &PgPool,
    user_id: &str,
) -> StoreResult<Vec<UpstreamTokenRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM upstream_tokens WHERE user_id = $1 ORDER BY upstream"
    )))
    .bind(user_id)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(token_from_row)
    .collect()
}

pub(super) async fn all_upstream_tokens(pool: &PgPool) -> StoreResult<Vec<UpstreamTokenRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM upstream_tokens ORDER BY user_id, upstream"
    )))
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(token_from_row)
    .collect()
}

pub(super) async fn put_upstream_token(
    pool: &PgPool,
    t: &UpstreamTokenRecord,
    expected_version: Option<i64>,
) -> StoreResult<bool> {
    let done = match expected_version {
        None => sqlx::query(
            "INSERT INTO upstream_tokens (user_id, upstream, url, kid, sealed, expires_at, scope, \
             account, version, created_at, updated_at, last_used_at, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL) \
             ON CONFLICT (user_id, upstream) DO UPDATE SET url = excluded.url, kid = excluded.kid, \
             sealed = excluded.sealed, expires_at = excluded.expires_at, scope = excluded.scope, \
             account = excluded.account, version = excluded.version, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, \
             last_used_at = excluded.last_used_at, lease_until = NULL",
        )
        .bind(&t.user_id)
        .bind(&t.upstream)
        .bind(&t.url)
        .bind(&t.kid)
        .bind(&t.sealed)
        .bind(t.expires_at)
        .bind(&t.scope)
        .bind(&t.account)
        .bind(t.version)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.last_used_at)
        .execute(pool)
        .await
        .map_err(|e| insert_error(e, || format!("upstream token of {}", t.upstream)))?,
        Some(v) => sqlx::query(
            "UPDATE upstream_tokens SET kid = $1, sealed = $2, expires_at = $3, scope = $4, \
             account = $5, version = $6, updated_at = $7, lease_until = NULL \
             WHERE user_id = $8 AND upstream = $9 AND version = $10",
        )
        .bind(&t.kid)
        .bind(&t.sealed)
        .bind(t.expires_at)
        .bind(&t.scope)
        .bind(&t.account)
        .bind(t.version)
        .bind(t.updated_at)
        .bind(&t.user_id)
        .bind(&t.upstream)
        .bind(v)
        .execute(pool)
        .await
        .map_err(db)?,
    };
    Ok(done.rows_affected() == 1)
}

pub(super) async fn lease_upstream_refresh(
    pool: &PgPool,
    user_id: &str,
    upstream: &str,
    version: i64,
    now: UnixTime,
    until: UnixTime,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE upstream_tokens SET lease_until = $1 WHERE user_id = $2 AND upstream = $3 \
         AND version = $4 AND (lease_until IS NULL OR lease_until <= $5)",
    )
    .bind(until)
    .bind(user_id)
    .bind(upstream)
    .bind(version)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn touch_upstream_token(
    pool: &PgPool,
    user_id: &str,
    upstream: &str,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE upstream_tokens SET last_used_at = $1 WHERE user_id = $2 AND upstream = $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(upstream)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn delete_upstream_token(
    pool: &PgPool,
    user_id: &str,
    upstream: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM upstream_tokens WHERE user_id = $1 AND upstream = $2")
        .bind(user_id)
        .bind(upstream)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn upstream_client(
    pool: &PgPool,
    issuer: &str,
    redirect_uri: &str,
) -> StoreResult<Option<UpstreamClientRecord>> {
    let row = sqlx::query(
        "SELECT issuer, redirect_uri, client_id, kid, sealed_secret, auth_method, created_at \
         FROM upstream_clients WHERE issuer = $1 AND redirect_uri = $2",
    )
    .bind(issuer)
    .bind(redirect_uri)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.map(|r| {
        Ok(UpstreamClientRecord {
            issuer: col(&r, "issuer")?,
            redirect_uri: col(&r, "redirect_uri")?,
            client_id: col(&r, "client_id")?,
            kid: col(&r, "kid")?,
            sealed_secret: col(&r, "sealed_secret")?,
            auth_method: col(&r, "auth_method")?,
            created_at: col(&r, "created_at")?,
        })
    })
    .transpose()
}

pub(super) async fn create_upstream_client(
    pool: &PgPool,
    c: &UpstreamClientRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO upstream_clients (issuer, redirect_uri, client_id, kid, sealed_secret, auth_method, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.issuer)
    .bind(&c.redirect_uri)
    .bind(&c.client_id)
    .bind(&c.kid)
    .bind(&c.sealed_secret)
    .bind(&c.auth_method)
    .bind(c.created_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || format!("upstream client at {}", c.issuer)))?;
    Ok(())
}

pub(super) async fn delete_upstream_client(
    pool: &PgPool,
    issuer: &str,
    redirect_uri: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM upstream_clients WHERE issuer = $1 AND redirect_uri = $2")
        .bind(issuer)
        .bind(redirect_uri)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn create_upstream_connect(
    pool: &PgPool,
    c: &UpstreamConnectRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO upstream_connects (key_hash, kind, user_id, upstream, browser_hash, details, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.key_hash)
    .bind(&c.kind)
    .bind(&c.user_id)
    .bind(&c.upstream)
    .bind(&c.browser_hash)
    .bind(&c.details)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || "connect flow".to_string()))?;
    Ok(())
}

pub(super) async fn take_upstream_connect(
    pool: &PgPool,
    key_hash: &str,
    kind: &str,
) -> StoreResult<Option<UpstreamConnectRecord>> {
    let row = sqlx::query(
        "DELETE FROM upstream_connects WHERE key_hash = $1 AND kind = $2 \
         RETURNING key_hash, kind, user_id, upstream, browser_hash, details, created_at, expires_at",
    )
    .bind(key_hash)
    .bind(kind)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.map(|r| {
        Ok(UpstreamConnectRecord {
            key_hash: col(&r, "key_hash")?,
            kind: col(&r, "kind")?,
            user_id: col(&r, "user_id")?,
            upstream: col(&r, "upstream")?,
            browser_hash: col(&r, "browser_hash")?,
            details: col(&r, "details")?,
            created_at: col(&r, "created_at")?,
            expires_at: col(&r, "expires_at")?,
        })
    })
    .transpose()
}
