//! The audit log on SQLite (`crate::store::audit`). A batch is appended by
//! the group-commit writer ([`super::writer`]) when there is one, so that it
//! shares a commit with the token endpoint's writes.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::writer::Job;
use super::{SqliteStore, col, db};
use crate::store::StoreResult;
use crate::store::audit::{AuditOrder, AuditQuery, AuditRecord, MAX_SEARCH_LIMIT};

const COLUMNS: &str = "at_ms, kind, outcome, user_id, username, client_id, upstream, target, \
     duration_ms, client_addr, instance, detail";

/// Rows per `INSERT`: a batch is written in chunks of these sizes, largest
/// first, so that there are only these few statements and each stays
/// prepared in the connection's statement cache. With a statement for
/// every batch size, most batches were parsed and planned anew (a quarter
/// of the writer's time in a profile, docs/benchmarks.md).
/// SQLite allows 32766 bound values per statement; 12 per row.
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// Appends `records` (inside the caller's transaction), in chunks of
/// [`CHUNKS`] rows.
pub(super) async fn append_in(
    conn: &mut SqliteConnection,
    records: &[AuditRecord],
) -> StoreResult<()> {
    let mut rest = records;
    for n in CHUNKS {
        while rest.len() >= n {
            let (chunk, tail) = rest.split_at(n);
            insert(conn, chunk).await?;
            rest = tail;
        }
    }
    Ok(())
}

async fn insert(conn: &mut SqliteConnection, chunk: &[AuditRecord]) -> StoreResult<()> {
    let mut q: QueryBuilder<Sqlite> =
        QueryBuilder::new(format!("INSERT INTO audit_log ({COLUMNS}) "));
    q.push_values(chunk, |mut b, r| {
        b.push_bind(r.at_ms)
            .push_bind(&r.kind)
            .push_bind(&r.outcome)
            .push_bind(&r.user_id)
            .push_bind(&r.username)
            .push_bind(&r.client_id)
            .push_bind(&r.upstream)
            .push_bind(&r.target)
            .push_bind(r.duration_ms)
            .push_bind(&r.client_addr)
            .push_bind(&r.instance)
            .push_bind(&r.detail);
    });
    q.build().execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

/// Appends through the group-commit writer; without one (an in-memory
/// database), on a pooled connection in one transaction.
pub(super) async fn append_audit(store: &SqliteStore, records: &[AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    if let Some(writer) = &store.writer {
        return writer
            .submit(Job::Audit {
                records: records.to_vec(),
            })
            .await
            .map(|_| ());
    }
    let mut tx = super::begin_write(&store.pool).await?;
    append_in(&mut tx, records).await?;
    tx.commit().await.map_err(db)
}

pub(super) async fn search_audit(
    pool: &SqlitePool,
    query: &AuditQuery,
) -> StoreResult<Vec<AuditRecord>> {
    let mut q: QueryBuilder<Sqlite> =
        QueryBuilder::new(format!("SELECT id, {COLUMNS} FROM audit_log WHERE 1 = 1"));
    if let Some(u) = &query.user {
        q.push(" AND (username = ")
            .push_bind(u)
            .push(" OR user_id = ")
            .push_bind(u)
            .push(")");
    }
    for (column, value) in [
        ("client_id", &query.client_id),
        ("target", &query.target),
        ("kind", &query.kind),
        ("outcome", &query.outcome),
    ] {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v);
        }
    }
    for (condition, value) in [
        (" AND at_ms >= ", query.since_ms),
        (" AND at_ms < ", query.until_ms),
        (" AND id > ", query.after_id),
        (" AND id < ", query.before_id),
    ] {
        if let Some(v) = value {
            q.push(condition).push_bind(v);
        }
    }
    q.push(match query.order {
        AuditOrder::OldestFirst => " ORDER BY id ASC LIMIT ",
        AuditOrder::NewestFirst => " ORDER BY id DESC LIMIT ",
    })
    .push_bind(i64::from(query.limit.min(MAX_SEARCH_LIMIT)));
    let rows = q.build().fetch_all(pool).await.map_err(db)?;
    rows.iter()
        .map(|row| {
            Ok(AuditRecord {
                id: col(row, "id")?,
                at_ms: col(row, "at_ms")?,
                kind: col(row, "kind")?,
                outcome: col(row, "outcome")?,
                user_id: col(row, "user_id")?,
                username: col(row, "username")?,
                client_id: col(row, "client_id")?,
                upstream: col(row, "upstream")?,
                target: col(row, "target")?,
                duration_ms: col(row, "duration_ms")?,
                client_addr: col(row, "client_addr")?,
                instance: col(row, "instance")?,
                detail: col(row, "detail")?,
            })
        })
        .collect()
}

pub(super) async fn prune_audit(pool: &SqlitePool, before_ms: i64) -> StoreResult<u64> {
    Ok(sqlx::query("DELETE FROM audit_log WHERE at_ms < ?")
        .bind(before_ms)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected())
}
