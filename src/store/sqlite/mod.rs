//! The [`Store`] on SQLite.
//!
//! One database file, opened in WAL mode with foreign keys enforced, a
//! 10-second busy timeout and `synchronous = NORMAL`. Every write that spans
//! several statements runs in a `BEGIN IMMEDIATE` transaction, which takes
//! the database's write lock up front: two transactions can then never both
//! hold a read snapshot and wait on each other to write (which SQLite would
//! report as `SQLITE_BUSY` without waiting).
//!
//! Values with rules are stored as their strings (scopes in canonical form)
//! and parsed back on reading; a row that does not parse back is reported as
//! [`StoreError::Corrupt`].

mod clients;
mod cluster;
mod identities;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{
    AccessToken, AuthCode, Client, Consent, LoginSession, RefreshToken, UnixTime, User,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{
    McpSessionRecord, PendingLogin, SseMessageRecord, SseSessionRecord, Store, StoreError,
    StoreResult, UserIdentity,
};

/// How long a connection waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`] backed by a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database named by `url`:
    /// `sqlite://path.db`, `sqlite:path.db`, a plain file path, or
    /// `sqlite::memory:` for a private in-memory database. Does not migrate;
    /// call [`Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let base = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(|e| {
                StoreError::Database(format!("invalid SQLite database URL {url:?}: {e}"))
            })?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        let pool_options = if in_memory {
            // An in-memory database lives only as long as a connection to
            // it, and its shared cache locks whole tables (SQLITE_LOCKED,
            // which the busy timeout does not cover): keep exactly one
            // connection, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool = pool_options.connect_with(options).await.map_err(|e| {
            StoreError::Database(format!("cannot open SQLite database {url:?}: {e}"))
        })?;
        Ok(Self { pool })
    }

    /// The connection pool, for maintenance and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---- helpers shared by the submodules ----

/// A database failure.
fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A failed insert: `Conflict(what)` on a unique or primary key violation,
/// a database error otherwise.
fn insert_error(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => db(e),
    }
}

/// Column `col` of `row`; a value of the wrong type is corrupt data.
fn col<'r, T>(row: &'r SqliteRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

/// Column `col` of `row`, parsed with `parse`; a value that does not parse
/// is corrupt data.
fn parsed<T, E: std::fmt::Display>(
    row: &SqliteRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> StoreResult<T> {
    let raw: String = col(row, name)?;
    parse(&raw).map_err(|e| StoreError::Corrupt(format!("column {name} ({raw:?}): {e}")))
}

/// Nullable column `col` of `row`, parsed with `parse` unless NULL.
fn parsed_opt<T, E: std::fmt::Display>(
    row: &SqliteRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> StoreResult<Option<T>> {
    let raw: Option<String> = col(row, name)?;
    raw.map(|raw| {
        parse(&raw).map_err(|e| StoreError::Corrupt(format!("column {name} ({raw:?}): {e}")))
    })
    .transpose()
}

/// A count from the database as `u64`.
fn count(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

/// Starts a transaction that holds the write lock from its first statement.
async fn begin_write(pool: &SqlitePool) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))
    }

    // ---- users ----
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        users::create_user(&self.pool, user).await
    }
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        users::user_by_id(&self.pool, id).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        users::user_by_username(&self.pool, username).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        users::list_users(&self.pool).await
    }
    async fn count_users(&self) -> StoreResult<u64> {
        users::count_users(&self.pool).await
    }
    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool> {
        users::set_password(&self.pool, user_id, password_hash).await
    }
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        users::delete_user(&self.pool, user_id).await
    }

    // ---- clients ----
    async fn create_client(&self, client: &Client) -> StoreResult<()> {
        clients::create_client(&self.pool, client).await
    }
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        clients::client(&self.pool, id).await
    }
    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        clients::list_clients(&self.pool).await
    }
    async fn delete_client(&self, id: &ClientId) -> StoreResult<bool> {
        clients::delete_client(&self.pool, id).await
    }
    async fn touch_client(&self, id: &ClientId, now: UnixTime) -> StoreResult<()> {
        clients::touch_client(&self.pool, id, now).await
    }
    async fn delete_unused_clients(&self, issued_before: UnixTime) -> StoreResult<u64> {
        clients::delete_unused_clients(&self.pool, issued_before).await
    }

    // ---- consents ----
    async fn consent(&self, user_id: &str, client_id: &ClientId) -> StoreResult<Option<Consent>> {
        clients::consent(&self.pool, user_id, client_id).await
    }
    async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
        clients::save_consent(&self.pool, consent).await
    }

    // ---- login sessions ----
    async fn create_login_session(&self, session: &LoginSession) -> StoreResult<()> {
        users::create_login_session(&self.pool, session).await
    }
    async fn login_session(
        &self,
        session_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<LoginSession>> {
        users::login_session(&self.pool, session_hash, now).await
    }
    async fn delete_login_session(&self, session_hash: &str) -> StoreResult<()> {
        users::delete_login_session(&self.pool, session_hash).await
    }

    // ---- authorization codes ----
    async fn create_code(&self, code: &AuthCode) -> StoreResult<()> {
        tokens::create_code(&self.pool, code).await
    }
    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        tokens::code(&self.pool, code_hash).await
    }
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: UnixTime,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool> {
        tokens::redeem_code(&self.pool, code_hash, now, access, refresh).await
    }
    async fn mark_code_used(&self, code_hash: &str, now: UnixTime) -> StoreResult<()> {
        tokens::mark_code_used(&self.pool, code_hash, now).await
    }

    // ---- tokens ----
    async fn access_token(&self, token_hash: &str) -> StoreResult<Option<AccessToken>> {
        tokens::access_token(&self.pool, token_hash).await
    }
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        tokens::refresh_token(&self.pool, token_hash).await
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        now: UnixTime,
        access: &AccessToken,
        refresh: &RefreshToken,
    ) -> StoreResult<bool> {
        tokens::rotate_refresh_token(&self.pool, old_hash, now, access, refresh).await
    }
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
        tokens::revoke_grant(&self.pool, grant_id, now).await
    }
    async fn revoke_access_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<bool> {
        tokens::revoke_access_token(&self.pool, token_hash, now).await
    }
    async fn count_active_access_tokens(
        &self,
        client_id: &ClientId,
        now: UnixTime,
    ) -> StoreResult<u64> {
        tokens::count_active_access_tokens(&self.pool, client_id, now).await
    }

    // ---- maintenance ----
    async fn purge_expired(&self, before: UnixTime) -> StoreResult<u64> {
        let mut tx = begin_write(&self.pool).await?;
        let mut purged = 0;
        for sql in [
            "DELETE FROM auth_codes WHERE expires_at < ?",
            "DELETE FROM login_sessions WHERE expires_at < ?",
            "DELETE FROM federation_logins WHERE expires_at < ?",
            "DELETE FROM access_tokens WHERE expires_at < ?",
            "DELETE FROM refresh_tokens WHERE expires_at < ?",
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

    // ---- server keys ----
    async fn server_key(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_keys (name, key) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let row = sqlx::query("SELECT key FROM server_keys WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        col(&row, "key")
    }

    // ---- federated sign-in ----
    async fn create_pending_login(&self, login: &PendingLogin) -> StoreResult<()> {
        identities::create_pending_login(&self.pool, login).await
    }
    async fn take_pending_login(
        &self,
        state_hash: &str,
        browser_hash: &str,
    ) -> StoreResult<Option<PendingLogin>> {
        identities::take_pending_login(&self.pool, state_hash, browser_hash).await
    }
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<UserIdentity>> {
        identities::identity(&self.pool, provider, subject).await
    }
    async fn identities_of_user(&self, user_id: &str) -> StoreResult<Vec<UserIdentity>> {
        identities::identities_of_user(&self.pool, user_id).await
    }
    async fn link_identity(&self, identity: &UserIdentity) -> StoreResult<()> {
        identities::link_identity(&self.pool, identity).await
    }
    async fn unlink_identity(&self, provider: &str, subject: &str) -> StoreResult<bool> {
        identities::unlink_identity(&self.pool, provider, subject).await
    }
    async fn create_federated_user(&self, user: &User, id: &UserIdentity) -> StoreResult<()> {
        identities::create_federated_user(&self.pool, user, id).await
    }

    // ---- cluster ----
    async fn bind_mcp_session(&self, id: &str, user_id: &str, now: UnixTime) -> StoreResult<()> {
        cluster::bind_mcp_session(&self.pool, id, user_id, now).await
    }
    async fn save_mcp_session_state(
        &self,
        id: &str,
        state: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        cluster::save_mcp_session_state(&self.pool, id, state, now).await
    }
    async fn mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>> {
        cluster::mcp_session(&self.pool, id).await
    }
    async fn touch_mcp_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        cluster::touch_mcp_session(&self.pool, id, now).await
    }
    async fn delete_mcp_session(&self, id: &str) -> StoreResult<()> {
        cluster::delete_mcp_session(&self.pool, id).await
    }
    async fn create_sse_session(&self, session: &SseSessionRecord) -> StoreResult<()> {
        cluster::create_sse_session(&self.pool, session).await
    }
    async fn sse_session(&self, id: &str) -> StoreResult<Option<SseSessionRecord>> {
        cluster::sse_session(&self.pool, id).await
    }
    async fn delete_sse_session(&self, id: &str) -> StoreResult<()> {
        cluster::delete_sse_session(&self.pool, id).await
    }
    async fn heartbeat_sse_sessions(&self, instance: &str, now: UnixTime) -> StoreResult<u64> {
        cluster::heartbeat_sse_sessions(&self.pool, instance, now).await
    }
    async fn push_sse_message(
        &self,
        id: &str,
        caller: &str,
        message: &str,
        now: UnixTime,
    ) -> StoreResult<Option<i64>> {
        cluster::push_sse_message(&self.pool, id, caller, message, now).await
    }
    async fn take_sse_messages(&self, id: &str) -> StoreResult<Vec<SseMessageRecord>> {
        cluster::take_sse_messages(&self.pool, id).await
    }
    async fn purge_cluster_sessions(&self, mcp: UnixTime, sse: UnixTime) -> StoreResult<u64> {
        cluster::purge_cluster_sessions(&self.pool, mcp, sse).await
    }
}
