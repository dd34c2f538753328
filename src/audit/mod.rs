//! The audit log (docs/audit.md): one record per security-relevant event
//! (sign-ins, consent, tokens, clients, and every tool call, prompt and
//! resource read through the gateway), in the database (`audit_log`, see
//! `crate::store::audit`) and/or as JSON lines on stdout or in a file.
//!
//! - [`event`]: the kinds of events and the [`Event`] builder.
//! - [`sink`]: the JSON-lines stream and its line format.
//!
//! [`Audit::record`] never waits: it stamps the event with the time and the
//! instance and puts it on a bounded queue. One background task takes what
//! is queued (up to [`MAX_BATCH`] records) and writes it as one batch: one
//! `INSERT` (on SQLite through the group-commit writer, sharing a commit
//! with the token endpoint's writes) and one write to the stream; it
//! lingers [`LINGER`] after the first record so that batches grow under load. A tool
//! call therefore never waits for the database. A full queue drops the
//! record, counts it ([`Audit::dropped`]) and logs a warning at most once a
//! minute; [`Audit::close`] (graceful shutdown) writes what is queued.

pub mod event;
pub mod sink;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::{AuditRecord, Store};

pub use event::{Event, Kind, Outcome};

/// Records waiting to be written; [`Audit::record`] drops beyond this.
pub const QUEUE: usize = 8192;

/// Most records written in one batch.
pub const MAX_BATCH: usize = 512;

/// Longest `detail.arguments` kept (bytes of JSON); longer arguments are
/// replaced by `"arguments_truncated": true`.
pub const MAX_ARGUMENTS_BYTES: usize = 4096;

/// How long the writer waits for more records after the first of a batch
/// (never for a flush or at shutdown): under load, batches grow and their
/// fixed cost (a transaction, a statement) is shared by more records.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// The least time between two "records dropped" warnings.
const WARN_EVERY_MS: i64 = 60_000;

/// Where the JSON-lines stream goes (`audit_jsonl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlTarget {
    Off,
    Stdout,
    /// A file, created if missing and appended to.
    File(PathBuf),
}

impl JsonlTarget {
    /// `off` (or empty), `stdout`, or a file path (`file:` prefix allowed).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Ok(match s {
            "" | "off" => Self::Off,
            "stdout" | "-" => Self::Stdout,
            path => {
                let path = path.strip_prefix("file:").unwrap_or(path);
                if path.is_empty() {
                    return Err("audit_jsonl: use off, stdout, or a file path".into());
                }
                Self::File(PathBuf::from(path))
            }
        })
    }
}

/// The audit settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Write records to the database (`audit_store`).
    pub store: bool,
    pub jsonl: JsonlTarget,
    /// Keep tool and prompt arguments (`audit_tool_arguments`).
    pub tool_arguments: bool,
    /// Delete records older than this many days; 0 keeps them forever.
    pub retention_days: u32,
}

impl AuditSettings {
    pub fn from_settings(s: &crate::config::Settings) -> Result<Self, String> {
        Ok(Self {
            store: s.audit_store,
            jsonl: JsonlTarget::parse(&s.audit_jsonl)?,
            tool_arguments: s.audit_tool_arguments,
            retention_days: s.audit_retention_days,
        })
    }
}

// A record is moved into the queue's preallocated slots as it is: boxing it
// would cost an allocation per record for the rare `Flush`'s sake.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(AuditRecord),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

struct Inner {
    queue: mpsc::Sender<Msg>,
    clock: Arc<dyn Clock>,
    instance: String,
    tool_arguments: bool,
    dropped: AtomicU64,
    /// When the last "dropped" warning was logged (Unix ms; 0: never).
    warned_at_ms: AtomicI64,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The audit log's handle; cheap to clone. [`Audit::disabled`] records
/// nothing.
#[derive(Clone, Default)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
    /// `audit_retention_days` in milliseconds (`None`: keep forever).
    retention_ms: Option<i64>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("enabled", &self.inner.is_some())
            .field("retention_ms", &self.retention_ms)
            .finish_non_exhaustive()
    }
}

fn retention_ms(days: u32) -> Option<i64> {
    (days > 0).then(|| i64::from(days) * 86_400_000)
}

impl Audit {
    /// Records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Starts the writer task. With neither the store nor a stream, the
    /// handle records nothing (but still knows the retention). Fails if the
    /// stream's file cannot be opened.
    pub async fn start(
        settings: &AuditSettings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        instance: &str,
    ) -> Result<Self, String> {
        Self::start_with_queue(settings, store, clock, instance, QUEUE).await
    }

    async fn start_with_queue(
        settings: &AuditSettings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        instance: &str,
        queue_len: usize,
    ) -> Result<Self, String> {
        let retention_ms = retention_ms(settings.retention_days);
        let stream = sink::Stream::open(&settings.jsonl).await?;
        if !settings.store && stream.is_none() {
            return Ok(Self {
                inner: None,
                retention_ms,
            });
        }
        let (queue, rx) = mpsc::channel(queue_len);
        let stop = CancellationToken::new();
        let writer = Writer {
            store: settings.store.then_some(store),
            stream,
        };
        let task = tokio::spawn(run(rx, writer, stop.clone()));
        Ok(Self {
            inner: Some(Arc::new(Inner {
                queue,
                clock,
                instance: instance.to_string(),
                tool_arguments: settings.tool_arguments,
                dropped: AtomicU64::new(0),
                warned_at_ms: AtomicI64::new(0),
                stop,
                task: Mutex::new(Some(task)),
            })),
            retention_ms,
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether tool and prompt arguments are recorded (so that callers
    /// copy them only then).
    pub fn wants_arguments(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.tool_arguments)
    }

    /// The retention in milliseconds (`None`: records are kept forever).
    pub fn retention_ms(&self) -> Option<i64> {
        self.retention_ms
    }

    /// Queues the event; never waits. A full queue drops it (counted, and
    /// warned about at most once a minute).
    pub fn record(&self, event: Event) {
        let Some(inner) = &self.inner else { return };
        let now_ms = inner.clock.now_ms();
        let record = stamp(event, now_ms, &inner.instance, inner.tool_arguments);
        if inner.queue.try_send(Msg::Record(record)).is_err() {
            let dropped = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let last = inner.warned_at_ms.load(Ordering::Relaxed);
            if (last == 0 || now_ms.saturating_sub(last) >= WARN_EVERY_MS)
                && inner
                    .warned_at_ms
                    .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    event = "audit.dropped",
                    dropped_total = dropped,
                    "audit queue full (or closed): records dropped"
                );
            }
        }
    }

    /// A request refused by policy: the decision point (`[[policy]]`)
    /// calls this once per refused call, list filtering excepted. `kind`:
    /// [`Kind::ToolCall`], [`Kind::PromptGet`] or [`Kind::ResourceRead`];
    /// `target`: the tool, prompt or URI; `rule`: which rule refused it (a
    /// name or line, never request data). If the refusal makes the gateway
    /// answer as for an unknown name *inside* `Gateway::call_tool`, this is
    /// not needed: `gateway::audited` records that call as `denied`.
    pub fn policy_denied(
        &self,
        kind: Kind,
        caller: &mcpgate_core::mcp::bearer::Caller,
        target: &str,
        upstream: Option<&str>,
        rule: &str,
    ) {
        let mut event = Event::new(kind, Outcome::Denied)
            .caller(caller)
            .target(target)
            .detail("reason", "policy")
            .detail_text("rule", rule);
        if let Some(u) = upstream {
            event = event.upstream(u);
        }
        self.record(event);
    }

    /// Records dropped so far because the queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// Waits until every record queued before this call is written.
    pub async fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (tx, rx) = oneshot::channel();
        if inner.queue.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Writes what is queued and stops the writer (graceful shutdown);
    /// later records are counted as dropped.
    pub async fn close(&self) {
        let Some(inner) = &self.inner else { return };
        inner.stop.cancel();
        if let Some(task) = inner.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Writes one event at once, without the queue: for the command line
/// (`mcpgate client add`), a process too short-lived for the writer task.
/// Goes to the store (`audit_store`) and to a JSON-lines file
/// (`audit_jsonl` naming a file; stdout is the command's own output).
pub async fn record_direct(
    settings: &crate::config::Settings,
    store: &dyn Store,
    event: Event,
) -> Result<(), String> {
    let audit = AuditSettings::from_settings(settings)?;
    let record = stamp(
        event,
        crate::clock::SystemClock.now_ms(),
        CLI_INSTANCE,
        false,
    );
    if audit.store {
        store
            .append_audit(std::slice::from_ref(&record))
            .await
            .map_err(|e| format!("cannot write the audit record: {e}"))?;
    }
    if let JsonlTarget::File(_) = &audit.jsonl
        && let Some(mut stream) = sink::Stream::open(&audit.jsonl).await?
    {
        stream.write(std::slice::from_ref(&record)).await;
        stream.finish().await;
    }
    Ok(())
}

/// The `instance` of records written by the command line.
pub const CLI_INSTANCE: &str = "cli";

/// The record of `event` at `now_ms`, written by `instance`.
pub fn stamp(event: Event, now_ms: i64, instance: &str, tool_arguments: bool) -> AuditRecord {
    let mut detail = event.detail;
    if tool_arguments && let Some(args) = event.arguments {
        let size = serde_json::to_string(&args).map_or(usize::MAX, |s| s.len());
        if size <= MAX_ARGUMENTS_BYTES {
            detail.insert("arguments".into(), args);
        } else {
            detail.insert("arguments_truncated".into(), Value::Bool(true));
        }
    }
    AuditRecord {
        id: 0,
        at_ms: now_ms,
        kind: event.kind.as_str().to_string(),
        outcome: event.outcome.as_str().to_string(),
        user_id: event.user_id,
        username: event.username,
        client_id: event.client_id,
        upstream: event.upstream,
        target: event.target,
        duration_ms: event.duration_ms,
        client_addr: event.client_addr.map(|a| a.to_string()),
        instance: instance.to_string(),
        detail: (!detail.is_empty()).then(|| Value::Object(detail).to_string()),
    }
}

/// Where the writer task puts a batch.
struct Writer {
    store: Option<Arc<dyn Store>>,
    stream: Option<sink::Stream>,
}

impl Writer {
    async fn write(&mut self, batch: &[AuditRecord]) {
        if batch.is_empty() {
            return;
        }
        if let Some(stream) = &mut self.stream {
            stream.write(batch).await;
        }
        if let Some(store) = &self.store
            && let Err(e) = store.append_audit(batch).await
        {
            tracing::error!(
                event = "audit.write_failed",
                records = batch.len(),
                error = %e,
                "audit records could not be stored"
            );
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Msg>, mut writer: Writer, stop: CancellationToken) {
    let mut msgs = Vec::with_capacity(MAX_BATCH);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut msgs, MAX_BATCH) => n,
            () = stop.cancelled() => {
                // Write what is already queued, then refuse the rest.
                rx.close();
                rx.recv_many(&mut msgs, QUEUE).await
            }
        };
        if received == 0 {
            break;
        }
        if msgs.len() < MAX_BATCH
            && !stop.is_cancelled()
            && !msgs.iter().any(|m| matches!(m, Msg::Flush(_)))
        {
            tokio::select! {
                biased;
                () = stop.cancelled() => {}
                () = tokio::time::sleep(LINGER) => {}
            }
            while msgs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
        }
        let mut flushes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Record(r) => batch.push(r),
                Msg::Flush(tx) => {
                    // Records queued before the flush are written first.
                    writer.write(&batch).await;
                    batch.clear();
                    flushes.push(tx);
                }
            }
        }
        writer.write(&batch).await;
        batch.clear();
        for f in flushes {
            let _ = f.send(());
        }
    }
    if let Some(stream) = &mut writer.stream {
        stream.finish().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::AuditQuery;
    use crate::store::sqlite::SqliteStore;

    async fn store() -> Arc<dyn Store> {
        let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
        s.migrate().await.unwrap();
        Arc::new(s)
    }

    fn settings() -> AuditSettings {
        AuditSettings {
            store: true,
            jsonl: JsonlTarget::Off,
            tool_arguments: false,
            retention_days: 90,
        }
    }

    async fn stored(store: &Arc<dyn Store>) -> usize {
        store
            .search_audit(&AuditQuery {
                limit: 10_000,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .len()
    }

    fn event(i: usize) -> Event {
        Event::new(Kind::ToolCall, Outcome::Ok).target(&format!("tool{i}"))
    }

    // A current-thread runtime: the writer task runs only when the test
    // awaits, so `record` (which never awaits) fills the queue.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts_and_never_blocks() {
        let store = store().await;
        let clock = Arc::new(ManualClock::starting_now());
        let audit = Audit::start_with_queue(&settings(), store.clone(), clock, "i1", 4)
            .await
            .unwrap();
        for i in 0..10 {
            audit.record(event(i));
        }
        assert_eq!(audit.dropped(), 6);
        audit.flush().await;
        assert_eq!(stored(&store).await, 4);
        // Room again once written.
        audit.record(event(11));
        audit.flush().await;
        assert_eq!(stored(&store).await, 5);
        assert_eq!(audit.dropped(), 6);
    }

    #[tokio::test]
    async fn closing_writes_what_is_queued_and_later_records_count_as_dropped() {
        let store = store().await;
        let clock = Arc::new(ManualClock::starting_now());
        let audit = Audit::start(&settings(), store.clone(), clock, "i1")
            .await
            .unwrap();
        for i in 0..100 {
            audit.record(event(i));
        }
        // No await before closing: the writer task has not run yet.
        audit.close().await;
        assert_eq!(stored(&store).await, 100);
        audit.record(event(100));
        assert_eq!(audit.dropped(), 1);
    }

    #[tokio::test]
    async fn a_batch_is_stamped_with_the_time_and_instance() {
        let store = store().await;
        let clock = Arc::new(ManualClock::starting_now());
        let audit = Audit::start(&settings(), store.clone(), clock.clone(), "host-7")
            .await
            .unwrap();
        audit.record(event(1));
        audit.flush().await;
        let r = &store.search_audit(&AuditQuery::default()).await.unwrap()[0];
        assert_eq!(r.instance, "host-7");
        assert_eq!(r.at_ms, clock.now_ms());
        assert_eq!(r.kind, "tool.call");
    }

    #[tokio::test]
    async fn arguments_are_kept_only_when_asked_and_only_when_small() {
        let args: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"path":"/tmp/x"}"#).unwrap();
        let e = || event(1).arguments(Some(&args));
        let off = stamp(e(), 1, "i", false);
        assert_eq!(off.detail, None);
        let on = stamp(e(), 1, "i", true);
        assert_eq!(
            on.detail.as_deref(),
            Some(r#"{"arguments":{"path":"/tmp/x"}}"#)
        );
        let big: serde_json::Map<String, Value> = [(
            "x".to_string(),
            Value::String("y".repeat(MAX_ARGUMENTS_BYTES)),
        )]
        .into_iter()
        .collect();
        let cut = stamp(event(1).arguments(Some(&big)), 1, "i", true);
        assert_eq!(
            cut.detail.as_deref(),
            Some(r#"{"arguments_truncated":true}"#)
        );
    }

    #[tokio::test]
    async fn with_no_destination_nothing_is_recorded_but_the_retention_is_known() {
        let audit = Audit::start(
            &AuditSettings {
                store: false,
                ..settings()
            },
            store().await,
            Arc::new(ManualClock::starting_now()),
            "i",
        )
        .await
        .unwrap();
        assert!(!audit.is_enabled());
        assert_eq!(audit.retention_ms(), Some(90 * 86_400_000));
    }

    #[test]
    fn jsonl_targets_parse() {
        assert_eq!(JsonlTarget::parse("off"), Ok(JsonlTarget::Off));
        assert_eq!(JsonlTarget::parse(""), Ok(JsonlTarget::Off));
        assert_eq!(JsonlTarget::parse("stdout"), Ok(JsonlTarget::Stdout));
        assert_eq!(
            JsonlTarget::parse("file:/var/log/a.jsonl"),
            Ok(JsonlTarget::File("/var/log/a.jsonl".into()))
        );
        assert_eq!(
            JsonlTarget::parse("/var/log/a.jsonl"),
            Ok(JsonlTarget::File("/var/log/a.jsonl".into()))
        );
        assert!(JsonlTarget::parse("file:").is_err());
    }
}
