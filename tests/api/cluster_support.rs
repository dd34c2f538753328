//! Helpers for the several-instance tests (`cluster_*` modules): two
//! servers on one fresh PostgreSQL database (`pg_support`) with one public
//! URL, as behind a load balancer.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use mcpgate::config::Settings;

use crate::helpers::{TestApp, spawn_app_with};
use crate::pg_support::PgTestDb;

/// The public URL both instances advertise (tests talk to each directly).
pub const PUBLIC_URL: &str = "http://localhost:7777";

/// Two servers on one fresh PostgreSQL database, with one public URL.
pub async fn two_instances() -> (PgTestDb, TestApp, TestApp) {
    two_instances_with(|_| {}).await
}

/// [`two_instances`], with `tweak` applied to both servers' settings.
pub async fn two_instances_with(tweak: impl Fn(&mut Settings)) -> (PgTestDb, TestApp, TestApp) {
    let db = PgTestDb::create().await;
    let start = |name: &'static str| {
        spawn_app_with(|s| {
            s.database_url = db.url().to_string();
            s.public_url = Some(PUBLIC_URL.into());
            s.instance_id = Some(name.into());
            tweak(s);
        })
    };
    let a = start("a").await;
    let b = start("b").await;
    (db, a, b)
}

/// Polls `check` every 20 ms until it holds or `limit` has passed; returns
/// whether it held.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
