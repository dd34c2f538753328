//! SQLite's group-commit writer (`src/store/sqlite/writer.rs`): the token
//! endpoint's writes queued while the writer is busy share one transaction,
//! each gets its own answer, and a job that fails in such a batch fails
//! alone.
//!
//! The batches are made deterministic by holding the database's write lock
//! from another connection: the writer's first job waits on it (within the
//! busy timeout) while the other jobs queue up, and those then run in one
//! transaction.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mcpgate::store::sqlite::SqliteStore;
use mcpgate::store::{Store, StoreResult};
use sqlx::{Connection, SqliteConnection};

use crate::store_contract::{NOW, access, code, issue, refresh, seed};

/// Jobs per test: the first runs alone behind the lock, the rest together.
const JOBS: usize = 24;

async fn store(dir: &tempfile::TempDir) -> (Arc<SqliteStore>, String) {
    let url = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
    let store = SqliteStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    seed(&store).await;
    (Arc::new(store), url)
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `job(store, i)` for `i` in `0..n` while another connection holds
/// the write lock: job 0 is taken by the writer (and waits on the lock),
/// jobs `1..n` queue up behind it in that order, then the lock is
/// released. Returns each job's result, in order.
async fn behind_the_lock<F, Fut>(
    store: &Arc<SqliteStore>,
    url: &str,
    n: usize,
    job: F,
) -> Vec<StoreResult<bool>>
where
    F: Fn(Arc<SqliteStore>, usize) -> Fut,
    Fut: Future<Output = StoreResult<bool>> + Send + 'static,
{
    let stats = store.writer_stats().expect("a file database has a writer");
    let taken = stats.jobs.load(Ordering::Relaxed);
    let mut lock = SqliteConnection::connect(url).await.expect("connect");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .expect("take the write lock");
    let mut tasks = vec![tokio::spawn(job(store.clone(), 0))];
    wait_for("the writer takes the first job", || {
        stats.jobs.load(Ordering::Relaxed) == taken + 1
    })
    .await;
    // One at a time, so that the queue's order is the jobs' order (tasks
    // spawned together reach the queue in any order).
    for i in 1..n {
        tasks.push(tokio::spawn(job(store.clone(), i)));
        wait_for("the job queues up", || store.writer_queued() == i).await;
    }
    sqlx::query("COMMIT")
        .execute(&mut lock)
        .await
        .expect("release the write lock");
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("job task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_rotations_share_one_commit_and_each_gets_its_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = store(&dir).await;
    for i in 0..JOBS {
        let g = format!("g{i}");
        issue(
            &*store,
            &access(&format!("a{i}"), &g, "c1", "u1"),
            Some(&refresh(&format!("r{i}"), &g, "c1", "u1")),
        )
        .await;
    }
    // Job i rotates r{i}, except the last, which rotates r1 again: in the
    // same transaction as job 1, it must see job 1's rotation and lose.
    let last = JOBS - 1;
    let before = store.writer_stats().unwrap().jobs.load(Ordering::Relaxed);
    let target = move |i: usize| if i == last { 1 } else { i };
    let results = behind_the_lock(&store, &url, JOBS, move |store, i| async move {
        let g = format!("g{}", target(i));
        store
            .rotate_refresh_token(
                &format!("r{}", target(i)),
                NOW + 1,
                &access(&format!("a{i}-new"), &g, "c1", "u1"),
                &refresh(&format!("r{i}-new"), &g, "c1", "u1"),
            )
            .await
    })
    .await;

    for (i, r) in results.iter().enumerate() {
        let won = *r.as_ref().expect("no database error");
        assert_eq!(won, i != last, "job {i}");
        let stored = store.refresh_token(&format!("r{i}-new")).await.unwrap();
        assert_eq!(stored.is_some(), i != last, "job {i}'s new refresh token");
        let stored = store.access_token(&format!("a{i}-new")).await.unwrap();
        assert_eq!(stored.is_some(), i != last, "job {i}'s new access token");
    }
    for i in 0..last {
        let old = store
            .refresh_token(&format!("r{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.rotated_at, Some(NOW + 1), "r{i}");
        assert_eq!(old.successor_hash, Some(format!("r{i}-new")), "r{i}");
    }
    let stats = store.writer_stats().unwrap();
    assert_eq!(stats.jobs.load(Ordering::Relaxed) - before, JOBS as u64);
    assert_eq!(
        stats.batches.load(Ordering::Relaxed),
        1,
        "one shared commit"
    );
    assert_eq!(stats.split.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_in_a_shared_commit_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = store(&dir).await;
    for i in 0..JOBS {
        let g = format!("g{i}");
        store
            .create_code(&code(&format!("k{i}"), &g, "c1", "u1"))
            .await
            .unwrap();
    }
    issue(
        &*store,
        &access("taken-a", "g-other", "c1", "u1"),
        Some(&refresh("taken-r", "g-other", "c1", "u1")),
    )
    .await;
    // Jobs 5 and 9 claim their code and then fail to store a token whose
    // hash is taken (after the code's UPDATE, in the shared transaction).
    let results = behind_the_lock(&store, &url, JOBS, |store, i| async move {
        let g = format!("g{i}");
        let a = if i == 5 {
            "taken-a".to_string()
        } else {
            format!("a{i}")
        };
        let r = if i == 9 {
            "taken-r".to_string()
        } else {
            format!("r{i}")
        };
        store
            .redeem_code(
                &format!("k{i}"),
                NOW,
                &access(&a, &g, "c1", "u1"),
                Some(&refresh(&r, &g, "c1", "u1")),
            )
            .await
    })
    .await;

    for (i, r) in results.iter().enumerate() {
        let used = store.code(&format!("k{i}")).await.unwrap().unwrap().used_at;
        if i == 5 || i == 9 {
            assert!(r.is_err(), "job {i}: {r:?}");
            assert_eq!(used, None, "job {i}'s code stays unused");
        } else {
            assert!(*r.as_ref().expect("no database error"), "job {i}");
            assert_eq!(used, Some(NOW), "job {i}'s code");
            assert!(
                store
                    .access_token(&format!("a{i}"))
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                store
                    .refresh_token(&format!("r{i}"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
    assert_eq!(store.refresh_token("r5").await.unwrap(), None);
    assert_eq!(store.access_token("a9").await.unwrap(), None);
    // The tokens that were in the way are untouched.
    assert_eq!(
        store.access_token("taken-a").await.unwrap(),
        Some(access("taken-a", "g-other", "c1", "u1"))
    );
    let stats = store.writer_stats().unwrap();
    assert_eq!(stats.batches.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.split.load(Ordering::Relaxed),
        1,
        "rolled back and rerun"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_answers_queued_writes_and_refuses_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = store(&dir).await;
    for i in 0..6 {
        store
            .create_code(&code(&format!("k{i}"), &format!("g{i}"), "c1", "u1"))
            .await
            .unwrap();
    }
    let closer = store.clone();
    let results = behind_the_lock(&store, &url, 6, move |store, i| {
        let closer = closer.clone();
        async move {
            if i == 5 {
                // Close while jobs 0..5 are queued or waiting on the lock.
                tokio::spawn(async move { closer.close().await });
            }
            let g = format!("g{i}");
            store
                .redeem_code(
                    &format!("k{i}"),
                    NOW,
                    &access(&format!("a{i}"), &g, "c1", "u1"),
                    None,
                )
                .await
        }
    })
    .await;
    for (i, r) in results.iter().enumerate() {
        assert!(*r.as_ref().expect("answered before closing"), "job {i}");
    }
    tokio::time::timeout(Duration::from_secs(5), store.close())
        .await
        .expect("close returns");
    let later = tokio::time::timeout(
        Duration::from_secs(5),
        store.redeem_code("k0", NOW, &access("late", "g0", "c1", "u1"), None),
    )
    .await
    .expect("a write after close is refused at once");
    let err = later.expect_err("the store is closed");
    assert!(err.to_string().contains("closed"), "{err}");
}

#[tokio::test]
async fn an_in_memory_database_writes_without_a_writer() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    seed(&store).await;
    assert!(store.writer_stats().is_none());
    store
        .create_code(&code("k", "g", "c1", "u1"))
        .await
        .unwrap();
    assert!(
        store
            .redeem_code("k", NOW, &access("a", "g", "c1", "u1"), None)
            .await
            .unwrap()
    );
    assert!(store.access_token("a").await.unwrap().is_some());
}
