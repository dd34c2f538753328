//! Users and their login sessions.

use mcpgate_core::domain::Username;
use mcpgate_core::model::{LoginSession, UnixTime, User};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteRow;

use super::{begin_write, col, count, db, insert_error};
use crate::store::StoreResult;

/// `SELECT` of every user column, followed by the rest of the query.
macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, username, password_hash, created_at FROM users ",
            $rest
        )
    };
}

fn user_from_row(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: col(row, "id")?,
        username: Username::from_stored(col(row, "username")?),
        password_hash: col(row, "password_hash")?,
        created_at: col(row, "created_at")?,
    })
}

pub(super) async fn create_user(pool: &SqlitePool, user: &User) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at, is_admin) \
         VALUES (?, ?, ?, ?, NOT EXISTS (SELECT 1 FROM users))",
    )
    .bind(&user.id)
    .bind(user.username.as_str())
    .bind(&user.password_hash)
    .bind(user.created_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || format!("user {:?}", user.username.as_str())))?;
    Ok(())
}

pub(super) async fn user_by_id(pool: &SqlitePool, id: &str) -> StoreResult<Option<User>> {
    sqlx::query(select_users!("WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

pub(super) async fn user_by_username(
    pool: &SqlitePool,
    username: &str,
) -> StoreResult<Option<User>> {
    sqlx::query(select_users!("WHERE username = ?"))
        .bind(Username::normalized(username).as_str())
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

pub(super) async fn list_users(pool: &SqlitePool) -> StoreResult<Vec<User>> {
    sqlx::query(select_users!("ORDER BY username"))
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(user_from_row)
        .collect()
}

pub(super) async fn count_users(pool: &SqlitePool) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    count(n)
}

pub(super) async fn set_password(
    pool: &SqlitePool,
    user_id: &str,
    password_hash: &str,
) -> StoreResult<bool> {
    let mut tx = begin_write(pool).await?;
    let updated = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
        .bind(password_hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    if updated == 0 {
        tx.rollback().await.map_err(db)?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM login_sessions WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn delete_user(pool: &SqlitePool, user_id: &str) -> StoreResult<bool> {
    // Sessions, consents, codes and tokens go with the user (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(user_id)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(deleted > 0)
}

pub(super) async fn create_login_session(
    pool: &SqlitePool,
    session: &LoginSession,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_sessions (session_hash, user_id, created_at, expires_at) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(&session.session_hash)
    .bind(&session.user_id)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || "login session".to_string()))?;
    Ok(())
}

pub(super) async fn login_session(
    pool: &SqlitePool,
    session_hash: &str,
    now: UnixTime,
) -> StoreResult<Option<LoginSession>> {
    let row = sqlx::query(
        "SELECT session_hash, user_id, created_at, expires_at FROM login_sessions \
         WHERE session_hash = ? AND expires_at > ?",
    )
    .bind(session_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(LoginSession {
        session_hash: col(&row, "session_hash")?,
        user_id: col(&row, "user_id")?,
        created_at: col(&row, "created_at")?,
        expires_at: col(&row, "expires_at")?,
    }))
}

pub(super) async fn delete_login_session(pool: &SqlitePool, session_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM login_sessions WHERE session_hash = ?")
        .bind(session_hash)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn rename_user(
    pool: &SqlitePool,
    user_id: &str,
    username: &Username,
) -> StoreResult<bool> {
    let updated = sqlx::query("UPDATE users SET username = ? WHERE id = ?")
        .bind(username.as_str())
        .bind(user_id)
        .execute(pool)
        .await
        .map_err(|e| insert_error(e, || format!("user {:?}", username.as_str())))?
        .rows_affected();
    Ok(updated > 0)
}

/// Rewrites stored usernames to their normalised form, or refuses if some
/// would collide (`crate::store::usernames`); run by `migrate`.
pub(super) async fn normalize_usernames(pool: &SqlitePool) -> StoreResult<()> {
    let mut tx = begin_write(pool).await?;
    let rows = sqlx::query("SELECT id, username FROM users")
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .iter()
        .map(|r| Ok((col(r, "id")?, col(r, "username")?)))
        .collect::<StoreResult<Vec<(String, String)>>>()?;
    // On collisions the transaction is dropped: nothing changes.
    let rewrites = crate::store::usernames::plan(rows)?;
    for (id, name) in &rewrites {
        sqlx::query("UPDATE users SET username = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    if !rewrites.is_empty() {
        tracing::info!(
            count = rewrites.len(),
            "stored usernames rewritten to their normalised form (NFKC, lowercase)"
        );
    }
    Ok(())
}
