//! Several mcpgate instances on one database, behind any load balancer
//! (docs/scaling.md).
//!
//! Everything the OAuth flow needs already lives in the database. What this
//! module adds is what the MCP transports and the token cache need when a
//! client's consecutive requests land on different instances:
//!
//! - [`bus`]: the [`Bus`] that tells every instance about an [`Event`]
//!   (tokens revoked, a Streamable HTTP session deleted, a legacy SSE
//!   message queued), with [`bus::LocalBus`] for a single instance.
//! - [`pg`]: [`pg::PgBus`], the bus on PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! A Streamable HTTP session is a row of the [`Store`] too (its owner and
//! the client's `initialize`), from which any instance restores it
//! (`crate::mcp::inline::lifecycle::find`).
//! - [`caller`]: the authenticated caller of a queued SSE message, as JSON.
//!
//! An instance is in *shared* mode when its database is PostgreSQL; with
//! SQLite it behaves as a single instance and keeps session state in memory.

pub mod bus;
pub mod caller;
pub mod pg;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::Store;
pub use bus::{Bus, Event};

/// What an instance knows about the others.
pub struct Cluster {
    /// This instance's name in logs and in the database.
    pub instance_id: String,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

impl Cluster {
    /// Whether other instances may share the database (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.bus.shared()
    }
}

/// Whether a database URL names PostgreSQL.
pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// The bus for a database: `LISTEN`/`NOTIFY` on PostgreSQL, in-process
/// otherwise. The PostgreSQL listener stops when `cancel` is cancelled.
pub async fn open_bus(
    database_url: &str,
    cancel: CancellationToken,
) -> anyhow::Result<Arc<dyn Bus>> {
    if is_postgres(database_url) {
        Ok(pg::PgBus::connect(database_url, cancel).await?)
    } else {
        Ok(Arc::new(bus::LocalBus::default()))
    }
}

/// Tells the running instances that tokens were revoked, from a process
/// that is not one of them (the `mcpgate` CLI). Nothing to do on SQLite:
/// a single instance sees the change within its cache lifetime, and ends
/// the streams of the tokens within a second (`mcp::streams` re-checks
/// them every 500 ms).
pub async fn announce_revocation(database_url: &str) -> anyhow::Result<()> {
    if is_postgres(database_url) {
        pg::notify_once(database_url, &Event::TokensRevoked).await?;
    }
    Ok(())
}

/// A default instance id: the host name, the process id and a few random
/// characters (two servers in one process, in tests, still differ).
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mcpgate".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        mcpgate_core::crypto::random_hex::<2>()
    )
}
