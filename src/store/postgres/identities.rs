//! Federated sign-in: pending sign-ins and linked provider identities.

use mcpgate_core::federation::{PendingLogin, UserIdentity};
use mcpgate_core::model::User;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{begin, col, db, insert_error};
use crate::store::StoreResult;

fn pending_from_row(row: &PgRow) -> StoreResult<PendingLogin> {
    Ok(PendingLogin {
        state_hash: col(row, "state_hash")?,
        provider_id: col(row, "provider_id")?,
        browser_hash: col(row, "browser_hash")?,
        return_to: col(row, "return_to")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

fn identity_from_row(row: &PgRow) -> StoreResult<UserIdentity> {
    Ok(UserIdentity {
        provider_id: col(row, "provider_id")?,
        subject: col(row, "subject")?,
        user_id: col(row, "user_id")?,
        email: col(row, "email")?,
        created_at: col(row, "created_at")?,
    })
}

pub(super) async fn create_pending_login(pool: &PgPool, p: &PendingLogin) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO federation_logins (state_hash, provider_id, browser_hash, return_to, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&p.state_hash)
    .bind(&p.provider_id)
    .bind(&p.browser_hash)
    .bind(&p.return_to)
    .bind(p.created_at)
    .bind(p.expires_at)
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || "pending sign-in".into()))?;
    Ok(())
}

pub(super) async fn take_pending_login(
    pool: &PgPool,
    state_hash: &str,
    browser_hash: &str,
) -> StoreResult<Option<PendingLogin>> {
    // One statement: two callbacks racing on the same state cannot both get it.
    sqlx::query(
        "DELETE FROM federation_logins WHERE state_hash = $1 AND browser_hash = $2 \
         RETURNING state_hash, provider_id, browser_hash, return_to, created_at, expires_at",
    )
    .bind(state_hash)
    .bind(browser_hash)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(pending_from_row)
    .transpose()
}

pub(super) async fn identity(
    pool: &PgPool,
    provider_id: &str,
    subject: &str,
) -> StoreResult<Option<UserIdentity>> {
    sqlx::query(
        "SELECT provider_id, subject, user_id, email, created_at FROM user_identities WHERE provider_id = $1 AND subject = $2",
    )
    .bind(provider_id)
    .bind(subject)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(identity_from_row)
    .transpose()
}

pub(super) async fn identities_of_user(
    pool: &PgPool,
    user_id: &str,
) -> StoreResult<Vec<UserIdentity>> {
    sqlx::query(
        "SELECT provider_id, subject, user_id, email, created_at FROM user_identities WHERE user_id = $1 ORDER BY provider_id, subject",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(identity_from_row)
    .collect()
}

async fn insert_identity<'e, E: sqlx::PgExecutor<'e>>(ex: E, i: &UserIdentity) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO user_identities (provider_id, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&i.provider_id)
    .bind(&i.subject)
    .bind(&i.user_id)
    .bind(&i.email)
    .bind(i.created_at)
    .execute(ex)
    .await
    .map_err(|e| {
        insert_error(e, || {
            format!("identity {:?} of provider {:?}", i.subject, i.provider_id)
        })
    })?;
    Ok(())
}

pub(super) async fn link_identity(pool: &PgPool, i: &UserIdentity) -> StoreResult<()> {
    insert_identity(pool, i).await
}

pub(super) async fn unlink_identity(
    pool: &PgPool,
    provider_id: &str,
    subject: &str,
) -> StoreResult<bool> {
    let n = sqlx::query("DELETE FROM user_identities WHERE provider_id = $1 AND subject = $2")
        .bind(provider_id)
        .bind(subject)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn create_federated_user(
    pool: &PgPool,
    user: &User,
    i: &UserIdentity,
) -> StoreResult<()> {
    let mut tx = begin(pool).await?;
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at, is_admin) \
         VALUES ($1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM users))",
    )
    .bind(&user.id)
    .bind(user.username.as_str())
    .bind(&user.password_hash)
    .bind(user.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| insert_error(e, || format!("user {:?}", user.username.as_str())))?;
    insert_identity(&mut *tx, i).await?;
    tx.commit().await.map_err(db)?;
    Ok(())
}
