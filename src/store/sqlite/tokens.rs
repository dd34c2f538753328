//! Authorization codes, access tokens and refresh tokens.
//!
//! [`redeem_code`] and [`rotate_refresh_token`] are the two races of the
//! protocol. Each runs in one `BEGIN IMMEDIATE` transaction whose first
//! statement is the conditional `UPDATE` that claims the code or token;
//! only the request whose `UPDATE` changed a row goes on to store tokens.
//! The `*_in` forms run inside a transaction of the caller's, which the
//! store's group-commit writer ([`super::writer`]) shares among many.

use mcpgate_core::domain::{ClientId, CodeChallenge, RedirectUri, ResourceUri, Scope};
use mcpgate_core::model::{AccessToken, AuthCode, RefreshToken, UnixTime};
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

use super::writer::Job;
use super::{SqliteStore, begin_write, col, count, db, insert_error, parsed, parsed_opt};
use crate::store::StoreResult;

/// Inserts an access token if the statement before changed exactly one
/// row (see [`redeem_code_in`]); a macro so that `concat!` makes the
/// queries `'static` literals.
macro_rules! insert_access_if_changed {
    () => {
        "INSERT INTO access_tokens (token_hash, grant_id, client_id, user_id, scope, resource, \
         created_at, expires_at, revoked_at) \
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1;"
    };
}

/// Inserts a refresh token if the statement before changed exactly one
/// row.
macro_rules! insert_refresh_if_changed {
    () => {
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, resource, \
         created_at, expires_at, rotated_at, successor_hash, revoked_at) \
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1;"
    };
}

// ---- authorization codes ----

pub(super) async fn create_code(pool: &SqlitePool, code: &AuthCode) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri, \
         redirect_uri_explicit, scope, resource, code_challenge, created_at, expires_at, used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

pub(super) async fn code(pool: &SqlitePool, code_hash: &str) -> StoreResult<Option<AuthCode>> {
    let row = sqlx::query(
        "SELECT code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_explicit, \
         scope, resource, code_challenge, created_at, expires_at, used_at \
         FROM auth_codes WHERE code_hash = ?",
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
    store: &SqliteStore,
    code_hash: &str,
    now: UnixTime,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<bool> {
    if let Some(writer) = &store.writer {
        return writer
            .submit(Job::Redeem {
                code_hash: code_hash.to_string(),
                now,
                access: access.clone(),
                refresh: refresh.cloned(),
            })
            .await;
    }
    let mut tx = begin_write(&store.pool).await?;
    if !redeem_code_in(&mut tx, code_hash, now, access, refresh).await? {
        tx.rollback().await.map_err(db)?;
        return Ok(false);
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Claims the code and stores its tokens, inside the caller's write
/// transaction; `false` (and nothing written) if the code was used.
///
/// One command to the connection's thread: the claim and the inserts are
/// one multi-statement query, each insert guarded by `changes() = 1` (the
/// rows changed by the statement before it, SQLite's `changes()`), so that
/// nothing is inserted unless the claim changed the code's row.
pub(super) async fn redeem_code_in(
    conn: &mut SqliteConnection,
    code_hash: &str,
    now: UnixTime,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<bool> {
    macro_rules! claim {
        () => {
            "UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL;"
        };
    }
    let with_claim = |sql| bind_access(sqlx::query(sql).bind(now).bind(code_hash), access);
    // The query, and the rows it changes when the claim succeeds.
    let (query, all) = match refresh {
        Some(r) => {
            let sql = concat!(
                claim!(),
                insert_access_if_changed!(),
                insert_refresh_if_changed!()
            );
            (bind_refresh(with_claim(sql), r), 3)
        }
        None => (
            with_claim(concat!(claim!(), insert_access_if_changed!())),
            2,
        ),
    };
    let changed = query
        .execute(&mut *conn)
        .await
        .map_err(|e| insert_error(e, || "access or refresh token".to_string()))?
        .rows_affected();
    claimed_all(changed, all)
}

/// The rows a guarded claim-and-insert query changed: all of them (the
/// claim and every insert) or none.
fn claimed_all(changed: u64, all: u64) -> StoreResult<bool> {
    match changed {
        0 => Ok(false),
        n if n == all => Ok(true),
        n => Err(crate::store::StoreError::Database(format!(
            "a claim changed {n} rows instead of 0 or {all}"
        ))),
    }
}

pub(super) async fn mark_code_used(
    pool: &SqlitePool,
    code_hash: &str,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query("UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL")
        .bind(now)
        .bind(code_hash)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

// ---- tokens ----

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds the columns of `insert_access_if_changed!`, in order.
fn bind_access<'q>(q: Query<'q>, t: &'q AccessToken) -> Query<'q> {
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

/// Binds the columns of `insert_refresh_if_changed!`, in order.
fn bind_refresh<'q>(q: Query<'q>, t: &'q RefreshToken) -> Query<'q> {
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

fn access_token_from_row(row: &SqliteRow) -> StoreResult<AccessToken> {
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

fn refresh_token_from_row(row: &SqliteRow) -> StoreResult<RefreshToken> {
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
    pool: &SqlitePool,
    token_hash: &str,
) -> StoreResult<Option<AccessToken>> {
    sqlx::query(
        "SELECT token_hash, grant_id, client_id, user_id, scope, resource, created_at, \
         expires_at, revoked_at FROM access_tokens WHERE token_hash = ?",
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
    pool: &SqlitePool,
    token_hash: &str,
) -> StoreResult<Option<RefreshToken>> {
    sqlx::query(
        "SELECT token_hash, grant_id, client_id, user_id, scope, resource, created_at, \
         expires_at, rotated_at, successor_hash, revoked_at \
         FROM refresh_tokens WHERE token_hash = ?",
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
    store: &SqliteStore,
    old_hash: &str,
    now: UnixTime,
    access: &AccessToken,
    refresh: &RefreshToken,
) -> StoreResult<bool> {
    if let Some(writer) = &store.writer {
        return writer
            .submit(Job::Rotate {
                old_hash: old_hash.to_string(),
                now,
                access: access.clone(),
                refresh: refresh.clone(),
            })
            .await;
    }
    let mut tx = begin_write(&store.pool).await?;
    if !rotate_refresh_token_in(&mut tx, old_hash, now, access, refresh).await? {
        tx.rollback().await.map_err(db)?;
        return Ok(false);
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Claims the refresh token for its successor and stores the new tokens,
/// inside the caller's write transaction; `false` (and nothing written) if
/// the token was rotated or revoked. One command, as [`redeem_code_in`].
pub(super) async fn rotate_refresh_token_in(
    conn: &mut SqliteConnection,
    old_hash: &str,
    now: UnixTime,
    access: &AccessToken,
    refresh: &RefreshToken,
) -> StoreResult<bool> {
    let sql = concat!(
        "UPDATE refresh_tokens SET rotated_at = ?, successor_hash = ? \
         WHERE token_hash = ? AND rotated_at IS NULL AND revoked_at IS NULL;",
        insert_access_if_changed!(),
        insert_refresh_if_changed!()
    );
    let query = sqlx::query(sql)
        .bind(now)
        .bind(&refresh.token_hash)
        .bind(old_hash);
    let changed = bind_refresh(bind_access(query, access), refresh)
        .execute(&mut *conn)
        .await
        .map_err(|e| insert_error(e, || "access or refresh token".to_string()))?
        .rows_affected();
    claimed_all(changed, 3)
}

pub(super) async fn revoke_grant(
    pool: &SqlitePool,
    grant_id: &str,
    now: UnixTime,
) -> StoreResult<u64> {
    let mut tx = begin_write(pool).await?;
    let mut revoked = 0;
    for sql in [
        "UPDATE access_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
    ] {
        revoked += sqlx::query(sql)
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
    }
    sqlx::query("UPDATE auth_codes SET used_at = ? WHERE grant_id = ? AND used_at IS NULL")
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(revoked)
}

pub(super) async fn create_access_token(pool: &SqlitePool, t: &AccessToken) -> StoreResult<()> {
    bind_access(
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, grant_id, client_id, user_id, scope, resource, \
             created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        t,
    )
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || "access token".to_string()))?;
    Ok(())
}

pub(super) async fn revoke_access_token(
    pool: &SqlitePool,
    token_hash: &str,
    now: UnixTime,
) -> StoreResult<bool> {
    let revoked = sqlx::query(
        "UPDATE access_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
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
    pool: &SqlitePool,
    client_id: &ClientId,
    now: UnixTime,
) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens \
         WHERE client_id = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(client_id.as_str())
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(db)?;
    count(n)
}

/// Hashes per query of [`dead_access_tokens`], well below SQLite's limit
/// on bound parameters.
const HASHES_PER_QUERY: usize = 500;

/// The asked hashes as a table (`VALUES`), those without an active token
/// selected: live tokens, the usual answer, cost no row.
pub(super) async fn dead_access_tokens(
    pool: &SqlitePool,
    token_hashes: &[String],
    now: UnixTime,
) -> StoreResult<Vec<String>> {
    let mut dead = Vec::new();
    for chunk in token_hashes.chunks(HASHES_PER_QUERY) {
        let rows = vec!["(?)"; chunk.len()].join(", ");
        let sql = format!(
            "WITH asked(h) AS (VALUES {rows}) \
             SELECT h FROM asked WHERE NOT EXISTS (\
               SELECT 1 FROM access_tokens a \
               WHERE a.token_hash = asked.h AND a.revoked_at IS NULL AND a.expires_at > ?)"
        );
        let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for h in chunk {
            q = q.bind(h);
        }
        dead.extend(q.bind(now).fetch_all(pool).await.map_err(db)?);
    }
    Ok(dead)
}

/// The counter the triggers of migration 0018 move on every change or
/// deletion of an access token row.
pub(super) async fn access_token_changes(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT n FROM access_token_changes WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)
}
