//! The [`Store`](crate::store::Store) on PostgreSQL.
//!
//! One connection pool (16 connections) per instance; several instances may
//! share the database. Migrations (`migrations/postgres`) run under sqlx's
//! advisory lock, so instances starting together apply them once.
//!
//! Every write that spans several statements runs in one transaction at
//! READ COMMITTED. The races between instances (a code redeemed twice, a
//! refresh token rotated twice) are settled by conditional `UPDATE`s that
//! lock the row they claim (see `tokens`); the server key by
//! `INSERT ... ON CONFLICT DO NOTHING` followed by a read.
//!
//! Values with rules are stored as their strings (scopes in canonical form)
//! and parsed back on reading; a row that does not parse back is reported as
//! [`StoreError::Corrupt`]. Times are `BIGINT` Unix seconds.
//!
//! Layout, as in `sqlite`: this file connects; each area's SQL is in its
//! own file (`users`, `clients`, `tokens`, `identities`, `cluster`,
//! `maintenance`), and `store::delegate` writes the `Store` impl that calls
//! them.

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

use std::str::FromStr;
use std::time::Duration;

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{
    AccessToken, AuthCode, Client, Consent, LoginSession, RefreshToken, UnixTime, User,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::{
    MailRecord, McpSessionRecord, PendingLogin, SseMessageRecord, SseSessionRecord, StoreError,
    StoreResult, UserIdentity,
};

/// Connections per instance.
const MAX_CONNECTIONS: u32 = 16;

/// How long a query waits for a connection (a free one, or a new one while
/// the server is down or restarting) before it fails as
/// [`StoreError::Unavailable`]. sqlx's default is 30 s: a client would hang
/// that long during an outage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a database URL names PostgreSQL (`postgres://`, `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Where a PostgreSQL URL points, for messages: `host:port/database`, with
/// no user name or password.
pub fn display_url(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => match o.get_socket() {
            Some(dir) => format!("{}/{}", dir.display(), o.get_database().unwrap_or("")),
            None => format!(
                "{}:{}/{}",
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap_or(o.get_username())
            ),
        },
        Err(_) => "an invalid PostgreSQL URL".to_string(),
    }
}

/// A [`Store`](crate::store::Store) backed by a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://user:password@
    /// host:port/database?options`). Does not migrate; call
    /// [`Store::migrate`](crate::store::Store::migrate). Errors name the server and database, never the
    /// password.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL database URL: {e}")))?
            // No NOTICEs in the log (such as the migrator's "relation
            // already exists, skipping" at every start).
            .options([("client_min_messages", "warning")]);
        // One connection first: a pool that cannot connect reports only a
        // timeout, this reports why (refused, unknown database, ...).
        let probe = PgConnection::connect_with(&options).await.map_err(|e| {
            StoreError::Database(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                display_url(url)
            ))
        })?;
        probe.close().await.map_err(db)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// The connection pool, for maintenance and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---- helpers shared by the submodules ----

/// A database failure: [`StoreError::Unavailable`] when the connection
/// failed (see [`connection_lost`]), [`StoreError::Database`] otherwise.
fn db(e: sqlx::Error) -> StoreError {
    if connection_lost(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Database(e.to_string())
    }
}

/// Whether `e` means the server could not be reached or the connection was
/// lost, rather than a failed statement: I/O and TLS errors, no connection
/// in time, and the SQLSTATEs of class 08 (connection exception), 57P01..03
/// (admin or crash shutdown, cannot connect now: a restart) and 53300 (too
/// many connections). PostgreSQL manual, appendix A "Error Codes".
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
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
fn col<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

/// Column `col` of `row`, parsed with `parse`; a value that does not parse
/// is corrupt data.
fn parsed<T, E: std::fmt::Display>(
    row: &PgRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> StoreResult<T> {
    let raw: String = col(row, name)?;
    parse(&raw).map_err(|e| StoreError::Corrupt(format!("column {name} ({raw:?}): {e}")))
}

/// Nullable column `col` of `row`, parsed with `parse` unless NULL.
fn parsed_opt<T, E: std::fmt::Display>(
    row: &PgRow,
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

/// Starts a transaction.
async fn begin(pool: &PgPool) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    pool.begin().await.map_err(db)
}

use crate::store::delegate::timed;
crate::store::delegate::store_impl!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_or_lost_connection_is_unavailable_not_a_database_error() {
        for e in [
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
            sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            assert!(matches!(db(e), StoreError::Unavailable(_)));
        }
    }

    #[test]
    fn a_failed_statement_stays_a_database_error() {
        assert!(matches!(
            db(sqlx::Error::RowNotFound),
            StoreError::Database(_)
        ));
        assert!(matches!(
            db(sqlx::Error::Protocol("unexpected message".into())),
            StoreError::Database(_)
        ));
    }
}
