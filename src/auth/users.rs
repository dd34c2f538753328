//! User accounts.

use mcpgate_core::crypto::random_uuid;
use mcpgate_core::model::User;

use super::password;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("no user named {0:?}")]
    NotFound(String),
    #[error("{0}")]
    InvalidUsername(String),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Usernames: 1 to 64 characters, letters, digits and `. _ - @`.
pub fn check_username(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidUsername(format!(
            "invalid username {name:?}: use 1 to 64 letters, digits and . _ - @"
        )))
    }
}

pub async fn add(
    store: &dyn Store,
    username: &str,
    password_plain: String,
    now: i64,
) -> Result<User, UserError> {
    check_username(username)?;
    let hash = password::hash_async(password_plain).await?;
    let user = User {
        id: random_uuid(),
        username: username.to_string(),
        password_hash: Some(hash),
        created_at: now,
    };
    match store.create_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict(_)) => Err(UserError::Exists(username.to_string())),
        Err(e) => Err(e.into()),
    }
}

pub async fn set_password(
    store: &dyn Store,
    username: &str,
    password_plain: String,
) -> Result<(), UserError> {
    let user = store
        .user_by_username(username)
        .await?
        .ok_or_else(|| UserError::NotFound(username.to_string()))?;
    let hash = password::hash_async(password_plain).await?;
    store.set_password(&user.id, &hash).await?;
    Ok(())
}

pub async fn remove(store: &dyn Store, username: &str) -> Result<(), UserError> {
    let user = store
        .user_by_username(username)
        .await?
        .ok_or_else(|| UserError::NotFound(username.to_string()))?;
    store.delete_user(&user.id).await?;
    Ok(())
}

/// On first start: creates `admin` with a random password when there are
/// no users, and returns the password (to be shown once).
pub async fn ensure_first_user(store: &dyn Store, now: i64) -> Result<Option<String>, UserError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let pw = password::generate();
    add(store, "admin", pw.clone(), now).await?;
    Ok(Some(pw))
}
