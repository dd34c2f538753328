//! The audit log on PostgreSQL (`crate::store::audit`).

use sqlx::{PgPool, Postgres, QueryBuilder};

use super::{PgStore, col, db};
use crate::store::StoreResult;
use crate::store::audit::{AuditOrder, AuditQuery, AuditRecord, MAX_SEARCH_LIMIT};

const COLUMNS: &str = "at_ms, kind, outcome, user_id, username, client_id, upstream, target, \
     duration_ms, client_addr, instance, detail";

/// Appends `records` with one statement, whatever their number: the
/// columns go as arrays and `UNNEST` makes the rows (in the arrays' order,
/// so ids follow the records' order). The statement's text never changes,
/// so it is prepared once per connection; a multi-row `VALUES` would be a
/// new statement for every batch size.
pub(super) async fn append_audit(store: &PgStore, records: &[AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    fn column<'a, T>(records: &'a [AuditRecord], f: impl Fn(&'a AuditRecord) -> T) -> Vec<T> {
        records.iter().map(f).collect()
    }
    sqlx::query(
        "INSERT INTO audit_log (at_ms, kind, outcome, user_id, username, client_id, upstream, \
         target, duration_ms, client_addr, instance, detail) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::TEXT[], $11::TEXT[], $12::TEXT[])",
    )
    .bind(column(records, |r| r.at_ms))
    .bind(column(records, |r| r.kind.as_str()))
    .bind(column(records, |r| r.outcome.as_str()))
    .bind(column(records, |r| r.user_id.as_deref()))
    .bind(column(records, |r| r.username.as_deref()))
    .bind(column(records, |r| r.client_id.as_deref()))
    .bind(column(records, |r| r.upstream.as_deref()))
    .bind(column(records, |r| r.target.as_deref()))
    .bind(column(records, |r| r.duration_ms))
    .bind(column(records, |r| r.client_addr.as_deref()))
    .bind(column(records, |r| r.instance.as_str()))
    .bind(column(records, |r| r.detail.as_deref()))
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn search_audit(
    pool: &PgPool,
    query: &AuditQuery,
) -> StoreResult<Vec<AuditRecord>> {
    let mut q: QueryBuilder<Postgres> =
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

pub(super) async fn prune_audit(pool: &PgPool, before_ms: i64) -> StoreResult<u64> {
    Ok(sqlx::query("DELETE FROM audit_log WHERE at_ms < $1")
        .bind(before_ms)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected())
}
