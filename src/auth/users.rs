//! User accounts. Usernames are parsed into `Username` (normalised: NFKC,
//! then lowercase) as they come in, so `Carol`, `CAROL` and `ＣＡＲＯＬ`
//! name one user, stored as `carol`.

use mcpgate_core::crypto::random_uuid;
use mcpgate_core::domain::Username;
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

/// A username as typed (see `Username::parse` for the rules).
pub fn parse_username(name: &str) -> Result<Username, UserError> {
    Username::parse(name).map_err(|e| UserError::InvalidUsername(e.0))
}

pub async fn add(
    store: &dyn Store,
    username: &str,
    password_plain: String,
    now: i64,
) -> Result<User, UserError> {
    let username = parse_username(username)?;
    let hash = password::hash_async(password_plain).await?;
    let user = User {
        id: random_uuid(),
        username,
        password_hash: Some(hash),
        created_at: now,
    };
    match store.create_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict(_)) => Err(UserError::Exists(user.username.into_string())),
        Err(e) => Err(e.into()),
    }
}

/// The user an administrator names: the name exactly as stored first (so
/// that names left from before normalisation, which collide and keep the
/// server from starting, can still be renamed or removed), else the
/// normalised name.
pub async fn find(store: &dyn Store, username: &str) -> Result<User, UserError> {
    if let Some(u) = store
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.username.as_str() == username)
    {
        return Ok(u);
    }
    let Some(name) = Username::for_lookup(username) else {
        return Err(UserError::NotFound(username.to_string()));
    };
    store
        .user_by_username(name.as_str())
        .await?
        .ok_or_else(|| UserError::NotFound(name.into_string()))
}

pub async fn set_password(
    store: &dyn Store,
    username: &str,
    password_plain: String,
) -> Result<(), UserError> {
    let user = find(store, username).await?;
    let hash = password::hash_async(password_plain).await?;
    store.set_password(&user.id, &hash).await?;
    Ok(())
}

pub async fn remove(store: &dyn Store, username: &str) -> Result<User, UserError> {
    let user = find(store, username).await?;
    store.delete_user(&user.id).await?;
    Ok(user)
}

/// `mcpgate user rename OLD NEW`; returns the new (normalised) name.
pub async fn rename(store: &dyn Store, old: &str, new: &str) -> Result<Username, UserError> {
    let user = find(store, old).await?;
    let new = parse_username(new)?;
    match store.rename_user(&user.id, &new).await {
        Ok(true) => Ok(new),
        Ok(false) => Err(UserError::NotFound(old.to_string())),
        Err(StoreError::Conflict(_)) => Err(UserError::Exists(new.into_string())),
        Err(e) => Err(e.into()),
    }
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
