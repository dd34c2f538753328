//! The [`Store`](crate::store::Store) on SQLite.
//!
//! One database file, opened in WAL mode with foreign keys enforced, a
//! 10-second busy timeout and `synchronous = NORMAL`. Every write that spans
//! several statements runs in a `BEGIN IMMEDIATE` transaction, which takes
//! the database's write lock up front: two transactions can then never both
//! hold a read snapshot and wait on each other to write (which SQLite would
//! report as `SQLITE_BUSY` without waiting).
//!
//! The token endpoint's writes (code redemption, refresh rotation) go
//! through a group-commit writer on its own connection ([`writer`]), except
//! on an in-memory database, which exists only on the pool's one connection.
//!
//! Values with rules are stored as their strings (scopes in canonical form)
//! and parsed back on reading; a row that does not parse back is reported as
//! [`StoreError::Corrupt`].

mod account;
mod admin;
mod audit;
mod clients;
mod cluster;
mod groups;
mod identities;
mod mail;
mod maintenance;
mod tasks;
mod tokens;
mod upstream_oauth;
mod users;
mod writer;

pub use writer::WriterStats;

use std::str::FromStr;
use std::time::Duration;

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{
    AccessToken, AuthCode, Client, Consent, LoginSession, RefreshToken, UnixTime, User,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{
    MailRecord, McpSessionRecord, PendingLogin, SseMessageRecord, SseSessionRecord, StoreError,
    StoreResult, UserIdentity,
};

/// How long a connection waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`](crate::store::Store) backed by a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The group-commit writer; `None` on an in-memory database.
    writer: Option<writer::Writer>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database named by `url`:
    /// `sqlite://path.db`, `sqlite:path.db`, a plain file path, or
    /// `sqlite::memory:` for a private in-memory database. Does not migrate;
    /// call [`Store::migrate`](crate::store::Store::migrate).
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
            SqlitePoolOptions::new()
                .max_connections(8)
                // A connection to a local file does not go stale; testing
                // it costs a round trip to its thread on every acquire.
                .test_before_acquire(false)
        };
        let pool = pool_options
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                StoreError::Database(format!("cannot open SQLite database {url:?}: {e}"))
            })?;
        let writer = (!in_memory).then(|| writer::Writer::start(options));
        Ok(Self { pool, writer })
    }

    /// The connection pool, for maintenance and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// What the group-commit writer has done (`None` on an in-memory
    /// database, which has none).
    pub fn writer_stats(&self) -> Option<&WriterStats> {
        self.writer.as_ref().map(writer::Writer::stats)
    }

    /// Jobs waiting for the group-commit writer, not counting the batch
    /// it is running.
    pub fn writer_queued(&self) -> usize {
        self.writer.as_ref().map_or(0, writer::Writer::queued)
    }

    /// Closes every connection, waiting for those in use to be returned
    /// and for the writes already queued.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
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

use crate::store::delegate::timed;
crate::store::delegate::store_impl!(SqliteStore);
