//! The store's two races with real concurrency between instances: two
//! independent stores (two connection pools, as two mcpgate instances have)
//! on one database, several tasks on each, all released at once by a
//! barrier, many rounds.
//!
//! - redeeming one code: exactly one redeem wins; the losers store nothing
//!   (`Store::redeem_code`);
//! - rotating one refresh token: exactly one rotation wins, and the old
//!   token names the winner's token as its successor
//!   (`Store::rotate_refresh_token`).
//!
//! On PostgreSQL (the shared database of several instances) and on SQLite
//! (two pools on one file). The HTTP-level races between two servers are in
//! `pg_flow`.

use std::sync::Arc;

use mcpgate::store::Store;
use mcpgate::store::postgres::PgStore;
use mcpgate::store::sqlite::SqliteStore;
use tokio::sync::Barrier;

use crate::pg_support::PgTestDb;
use crate::store_contract::{NOW, access, cid, code, issue, refresh, seed};

const ROUNDS: usize = 16;
/// Racing tasks per store (instance) in each round.
const TASKS_PER_STORE: usize = 4;

/// Two stores on one fresh PostgreSQL database, migrated.
async fn two_pg_stores() -> (PgTestDb, [Arc<dyn Store>; 2]) {
    let db = PgTestDb::create().await;
    let a = PgStore::connect(db.url()).await.expect("connect a");
    a.migrate().await.expect("migrate");
    let b = PgStore::connect(db.url()).await.expect("connect b");
    (db, [Arc::new(a), Arc::new(b)])
}

/// Two stores on one fresh SQLite file, migrated.
async fn two_sqlite_stores() -> (tempfile::TempDir, [Arc<dyn Store>; 2]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("race.db").display());
    let a = SqliteStore::connect(&url).await.expect("connect a");
    a.migrate().await.expect("migrate");
    let b = SqliteStore::connect(&url).await.expect("connect b");
    (dir, [Arc::new(a), Arc::new(b)])
}

/// Runs `race(store, task)` for every task at once, the tasks spread over
/// both stores; returns each task's result (a database error fails the
/// test: contention must not surface as an error).
async fn race<F, Fut>(stores: &[Arc<dyn Store>; 2], race: F) -> Vec<bool>
where
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = mcpgate::store::StoreResult<bool>> + Send + 'static,
{
    let n = 2 * TASKS_PER_STORE;
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let fut = race(stores[i % 2].clone(), i);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.push(
            t.await
                .unwrap()
                .expect("no database error under contention"),
        );
    }
    won
}

async fn one_code_redeemed_from_two_instances_is_redeemed_once(stores: [Arc<dyn Store>; 2]) {
    let [a, b] = &stores;
    seed(&**a).await;
    for round in 0..ROUNDS {
        let (k, g) = (format!("k{round}"), format!("g{round}"));
        a.create_code(&code(&k, &g, "c1", "u1")).await.unwrap();
        let won = race(&stores, |store, i| {
            let (k, g) = (k.clone(), g.clone());
            let at = access(&format!("a{round}-{i}"), &g, "c1", "u1");
            let rt = refresh(&format!("r{round}-{i}"), &g, "c1", "u1");
            async move { store.redeem_code(&k, NOW, &at, Some(&rt)).await }
        })
        .await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        // Read back through the other instance: the winner stored its
        // tokens, the losers nothing.
        for (i, w) in won.iter().enumerate() {
            let reader = &stores[(i + 1) % 2];
            let at = reader.access_token(&format!("a{round}-{i}")).await.unwrap();
            let rt = reader
                .refresh_token(&format!("r{round}-{i}"))
                .await
                .unwrap();
            assert_eq!(at.is_some(), *w, "round {round}, access token of task {i}");
            assert_eq!(rt.is_some(), *w, "round {round}, refresh token of task {i}");
        }
        assert_eq!(b.code(&k).await.unwrap().unwrap().used_at, Some(NOW));
    }
    assert_eq!(
        b.count_active_access_tokens(&cid("c1"), NOW).await.unwrap(),
        u64::try_from(ROUNDS).unwrap()
    );
}

async fn one_refresh_token_rotated_from_two_instances_is_rotated_once(stores: [Arc<dyn Store>; 2]) {
    let [a, b] = &stores;
    seed(&**a).await;
    for round in 0..ROUNDS {
        let g = format!("g{round}");
        let old = format!("r{round}-old");
        issue(
            &**a,
            &access(&format!("a{round}-old"), &g, "c1", "u1"),
            Some(&refresh(&old, &g, "c1", "u1")),
        )
        .await;
        let won = race(&stores, |store, i| {
            let (g, old) = (g.clone(), old.clone());
            let at = access(&format!("a{round}-{i}"), &g, "c1", "u1");
            let rt = refresh(&format!("r{round}-{i}"), &g, "c1", "u1");
            async move { store.rotate_refresh_token(&old, NOW + 1, &at, &rt).await }
        })
        .await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        let winner = won.iter().position(|w| *w).unwrap();
        for (i, w) in won.iter().enumerate() {
            let reader = &stores[(i + 1) % 2];
            let at = reader.access_token(&format!("a{round}-{i}")).await.unwrap();
            let rt = reader
                .refresh_token(&format!("r{round}-{i}"))
                .await
                .unwrap();
            assert_eq!(at.is_some(), *w, "round {round}, access token of task {i}");
            assert_eq!(rt.is_some(), *w, "round {round}, refresh token of task {i}");
        }
        let old = b.refresh_token(&old).await.unwrap().unwrap();
        assert_eq!(old.rotated_at, Some(NOW + 1));
        assert_eq!(old.successor_hash, Some(format!("r{round}-{winner}")));
        assert_eq!(old.revoked_at, None);
    }
    // Each round: the first access token and the winner's.
    assert_eq!(
        b.count_active_access_tokens(&cid("c1"), NOW).await.unwrap(),
        u64::try_from(2 * ROUNDS).unwrap()
    );
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_code_redeemed_from_two_instances_is_redeemed_once() {
        let (_db, stores) = two_pg_stores().await;
        super::one_code_redeemed_from_two_instances_is_redeemed_once(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_refresh_token_rotated_from_two_instances_is_rotated_once() {
        let (_db, stores) = two_pg_stores().await;
        super::one_refresh_token_rotated_from_two_instances_is_rotated_once(stores).await;
    }
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_code_redeemed_from_two_instances_is_redeemed_once() {
        let (_dir, stores) = two_sqlite_stores().await;
        super::one_code_redeemed_from_two_instances_is_redeemed_once(stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_refresh_token_rotated_from_two_instances_is_rotated_once() {
        let (_dir, stores) = two_sqlite_stores().await;
        super::one_refresh_token_rotated_from_two_instances_is_rotated_once(stores).await;
    }
}
