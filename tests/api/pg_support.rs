//! A fresh PostgreSQL database per test.
//!
//! ```ignore
//! let db = PgTestDb::create().await; // CREATE DATABASE mcpgate_t_<time>_<random>
//! let store = PgStore::connect(db.url()).await?; // or Settings { database_url: db.url().into(), .. }
//! // ... dropping `db` drops the database (WITH (FORCE): open pools are cut).
//! ```
//!
//! The server is the one of `MCPGATE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, trust authentication); that
//! URL's database is only used to create and drop the test databases. If it
//! cannot be reached the test fails, saying how to start PostgreSQL.
//! Databases left behind by killed test runs (named `mcpgate_t_<unix
//! seconds>_...`) are dropped once they are an hour old, the first time a
//! test process creates a database.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The environment variable naming the administration URL.
pub const ADMIN_URL_VAR: &str = "MCPGATE_TEST_POSTGRES_URL";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Prefix of every test database's name.
const PREFIX: &str = "mcpgate_t_";
/// Age after which a left-behind test database is dropped.
const STALE_AFTER: Duration = Duration::from_secs(3600);

static SWEPT: AtomicBool = AtomicBool::new(false);

/// The administration URL (`MCPGATE_TEST_POSTGRES_URL` or the default).
pub fn admin_url() -> String {
    std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

/// A test's own PostgreSQL database, dropped when this is dropped.
pub struct PgTestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl PgTestDb {
    /// Creates an empty database with a unique name (not migrated: the
    /// store or server opened on it migrates it).
    pub async fn create() -> PgTestDb {
        let admin_url = admin_url();
        let mut admin = admin_connection(&admin_url).await;
        if !SWEPT.swap(true, Ordering::SeqCst) {
            drop_stale_databases(&mut admin).await;
        }
        let name = format!(
            "{PREFIX}{}_{}",
            unix_now(),
            mcpgate_core::crypto::random_hex::<6>()
        );
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0"
            )))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("{ADMIN_URL_VAR} is not a URL ({admin_url}): {e}"));
        url.set_path(&format!("/{name}"));
        PgTestDb {
            name,
            url: url.to_string(),
            admin_url,
        }
    }

    /// The database's URL, for `database_url` or `PgStore::connect`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        // Drop may run inside a runtime (which cannot block on another
        // future): drop the database from a thread with its own runtime.
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await?;
                // `name` is ours: PREFIX, digits, `_` and hex.
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                admin.execute(AssertSqlSafe(sql)).await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("cannot drop the test database {}: {e}", self.name);
        }
    }
}

/// A connection to the administration database, or a failed test that says
/// how to start PostgreSQL.
async fn admin_connection(admin_url: &str) -> PgConnection {
    match PgConnection::connect(admin_url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {admin_url} ({e}). These tests need a PostgreSQL \
             server with trust authentication: start the local one with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
             (./scripts/test does this), or point {ADMIN_URL_VAR} at another one."
        ),
    }
}

/// Drops the test databases created more than [`STALE_AFTER`] ago (by a run
/// that was killed before its guards ran).
async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mcpgate\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let cutoff = unix_now().saturating_sub(STALE_AFTER.as_secs());
    for name in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            let _ = admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
