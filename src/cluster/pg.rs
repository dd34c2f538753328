//! The [`Bus`] on PostgreSQL: `NOTIFY` on one channel to publish, one
//! `LISTEN`ing connection per instance to receive.
//!
//! Notifications are not stored: those sent while the listening connection
//! is down are lost. So while it is down, [`Bus::connected`] is false (the
//! token cache is bypassed), the listener reconnects with a backoff of
//! 0.2 s doubling to 5 s, and after reconnecting it delivers
//! [`Event::Resync`] (caches are cleared, queued SSE messages looked for).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::bus::{Bus, CAPACITY, Event};

/// The `LISTEN`/`NOTIFY` channel.
pub const CHANNEL: &str = "mcpgate_cluster";
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct PgBus {
    pool: PgPool,
    tx: broadcast::Sender<Event>,
    connected: Arc<AtomicBool>,
}

impl PgBus {
    /// Connects, starts listening (so no event published after this returns
    /// is missed), and keeps listening until `cancel`.
    pub async fn connect(url: &str, cancel: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL for notifications")?;
        let listener = listen(url)
            .await
            .context("cannot LISTEN for notifications")?;
        let bus = Arc::new(Self {
            pool,
            tx: broadcast::channel(CAPACITY).0,
            connected: Arc::new(AtomicBool::new(true)),
        });
        tokio::spawn(run(
            url.to_string(),
            listener,
            bus.tx.clone(),
            bus.connected.clone(),
            cancel,
        ));
        Ok(bus)
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

async fn run(
    url: String,
    mut listener: PgListener,
    tx: broadcast::Sender<Event>,
    connected: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.try_recv() => r,
        };
        match received {
            Ok(Some(n)) => match Event::parse(n.payload()) {
                Some(e) => {
                    let _ = tx.send(e);
                }
                None => tracing::warn!(payload = n.payload(), "unknown cluster notification"),
            },
            Ok(None) | Err(_) => {
                connected.store(false, Ordering::SeqCst);
                tracing::warn!(
                    event = "cluster.listener_lost",
                    "lost the PostgreSQL notification connection; reconnecting (token cache off meanwhile)"
                );
                let mut backoff = Duration::from_millis(200);
                listener = loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    match listen(&url).await {
                        Ok(l) => break l,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot reconnect the notification listener");
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                };
                connected.store(true, Ordering::SeqCst);
                tracing::info!(
                    event = "cluster.listener_restored",
                    "notification listener reconnected"
                );
                let _ = tx.send(Event::Resync);
            }
        }
    }
}

async fn notify(pool_or_conn: impl sqlx::PgExecutor<'_>, event: &Event) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(event.to_payload())
        .execute(pool_or_conn)
        .await
        .context("cannot send a cluster notification")?;
    Ok(())
}

/// Publishes one event from a process that does not listen (the CLI).
pub async fn notify_once(url: &str, event: &Event) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("cannot connect to PostgreSQL to notify the instances")?;
    notify(&mut conn, event).await?;
    let _ = conn.close().await;
    Ok(())
}

#[async_trait]
impl Bus for PgBus {
    async fn publish(&self, event: Event) -> anyhow::Result<()> {
        notify(&self.pool, &event).await
    }
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
    fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
    fn shared(&self) -> bool {
        true
    }
}
