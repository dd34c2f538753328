//! Group commit for the token endpoint's writes on SQLite.
//!
//! SQLite has one writer at a time, and each commit pays for the write
//! lock, its WAL frames (a page per b-tree touched: a token row and its five
//! indexes) and a thread hand-off per statement. Redeeming a code and
//! rotating a refresh token (the hot path of the token endpoint) therefore
//! go to one task that owns a dedicated connection: it takes whatever is
//! queued (up to [`MAX_BATCH`] jobs) and runs it in one `BEGIN IMMEDIATE`
//! transaction with one commit, so that under load many grants share a
//! commit and the index pages they touch. A caller is answered only after
//! the commit that holds its writes.
//!
//! Each job starts with the conditional `UPDATE` that claims its code or
//! token (see [`super::tokens`]); a job that claims nothing writes nothing.
//! Jobs in one transaction see each other's writes, so two rotations of the
//! same token in one batch have one winner, exactly as in sequence.
//!
//! A job that fails (a client or user removed meanwhile breaks a foreign
//! key) must not undo the others: the batch is rolled back and its jobs run
//! again, each in its own transaction, so that only the failing one fails.
//!
//! Other processes (the CLI, other instances on the same file) keep working:
//! `BEGIN IMMEDIATE` waits for their write lock within the busy timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpgate_core::model::{AccessToken, RefreshToken, UnixTime};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{audit, db, tokens};
use crate::store::audit::AuditRecord;
use crate::store::{StoreError, StoreResult};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 128;

/// Jobs waiting for the writer; callers wait when it is full.
const QUEUE: usize = 1024;

/// A write of the token endpoint.
pub(super) enum Job {
    /// [`tokens::redeem_code_in`].
    Redeem {
        code_hash: String,
        now: UnixTime,
        access: AccessToken,
        refresh: Option<RefreshToken>,
    },
    /// [`tokens::rotate_refresh_token_in`].
    Rotate {
        old_hash: String,
        now: UnixTime,
        access: AccessToken,
        refresh: RefreshToken,
    },
    /// [`audit::append_in`]: a batch of audit records (`crate::audit`).
    Audit { records: Vec<AuditRecord> },
}

impl Job {
    /// Runs the job inside the caller's transaction: `Ok(true)` if it
    /// claimed its code or token and stored the new tokens, `Ok(false)` if
    /// it claimed nothing (and wrote nothing).
    async fn run(&self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        match self {
            Job::Redeem {
                code_hash,
                now,
                access,
                refresh,
            } => tokens::redeem_code_in(conn, code_hash, *now, access, refresh.as_ref()).await,
            Job::Rotate {
                old_hash,
                now,
                access,
                refresh,
            } => tokens::rotate_refresh_token_in(conn, old_hash, *now, access, refresh).await,
            Job::Audit { records } => audit::append_in(conn, records).await.map(|()| true),
        }
    }
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<StoreResult<bool>>,
}

/// How much the writer has done, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions tried for more than one job.
    pub batches: AtomicU64,
    /// Jobs taken from the queue.
    pub jobs: AtomicU64,
    /// Batches rolled back and rerun job by job.
    pub split: AtomicU64,
}

/// The handle to the writer task; cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Queued>,
    stop: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer task; its connection (with `options`) is opened
    /// on the first job.
    pub(super) fn start(options: SqliteConnectOptions) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let stats = Arc::new(WriterStats::default());
        let task = tokio::spawn(run(options, jobs, stop.clone(), stats.clone()));
        Self {
            queue,
            stop,
            task: Arc::new(Mutex::new(Some(task))),
            stats,
        }
    }

    /// Runs `job` in the writer's next transaction and returns its result
    /// once that transaction has committed.
    pub(super) async fn submit(&self, job: Job) -> StoreResult<bool> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued { job, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Jobs waiting for the writer (not counting the batch it is running).
    pub(super) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Stops the writer once the jobs already queued are done, and closes
    /// its connection.
    pub(super) async fn close(&self) {
        self.stop.cancel();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Database("the database is closed".to_string())
}

async fn run(
    options: SqliteConnectOptions,
    mut jobs: mpsc::Receiver<Queued>,
    stop: CancellationToken,
    stats: Arc<WriterStats>,
) {
    let mut conn: Option<SqliteConnection> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            n = jobs.recv_many(&mut batch, MAX_BATCH) => n,
            () = stop.cancelled() => {
                // Answer what is already queued, then refuse the rest.
                jobs.close();
                jobs.recv_many(&mut batch, QUEUE).await
            }
        };
        if received == 0 {
            break;
        }
        stats.jobs.fetch_add(received as u64, Ordering::Relaxed);
        match connection(&mut conn, &options).await {
            Ok(c) => run_batch(c, &mut batch, &stats).await,
            Err(e) => {
                for q in batch.drain(..) {
                    let _ = q.reply.send(Err(e.clone()));
                }
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

/// The writer's connection, opened on first use.
async fn connection<'c>(
    conn: &'c mut Option<SqliteConnection>,
    options: &SqliteConnectOptions,
) -> StoreResult<&'c mut SqliteConnection> {
    if conn.is_none() {
        let c = SqliteConnection::connect_with(options).await.map_err(|e| {
            StoreError::Database(format!("cannot open the SQLite writer connection: {e}"))
        })?;
        *conn = Some(c);
    }
    conn.as_mut()
        .ok_or_else(|| StoreError::Database("no SQLite writer connection".to_string()))
}

/// Runs and answers every job of `batch`, emptying it.
async fn run_batch(conn: &mut SqliteConnection, batch: &mut Vec<Queued>, stats: &WriterStats) {
    if batch.len() > 1 {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        match together(conn, batch).await {
            Ok(results) => {
                for (q, r) in batch.drain(..).zip(results) {
                    let _ = q.reply.send(Ok(r));
                }
                return;
            }
            Err(e) => {
                stats.split.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, jobs = batch.len(), "group commit failed; running its jobs one by one");
            }
        }
    }
    for q in batch.drain(..) {
        let r = alone(conn, &q.job).await;
        let _ = q.reply.send(r);
    }
}

/// All jobs in one transaction; an error in any rolls back all.
async fn together(conn: &mut SqliteConnection, batch: &[Queued]) -> StoreResult<Vec<bool>> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let mut results = Vec::with_capacity(batch.len());
    for q in batch {
        match q.job.run(conn).await {
            Ok(r) => results.push(r),
            Err(e) => {
                rollback(conn).await;
                return Err(e);
            }
        }
    }
    if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
        rollback(conn).await;
        return Err(db(e));
    }
    Ok(results)
}

/// One job in its own transaction.
async fn alone(conn: &mut SqliteConnection, job: &Job) -> StoreResult<bool> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    match job.run(conn).await {
        Ok(true) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(true),
            Err(e) => {
                rollback(conn).await;
                Err(db(e))
            }
        },
        other => {
            rollback(conn).await;
            other
        }
    }
}

/// Rolls back the open transaction, if any (SQLite may already have).
async fn rollback(conn: &mut SqliteConnection) {
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::debug!(error = %e, "rollback after a failed write");
    }
}
