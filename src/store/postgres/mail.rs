//! Mail between instances (`crate::cluster::mail`).

use mcpgate_core::model::UnixTime;
use sqlx::PgPool;

use super::{col, db};
use crate::store::{MailRecord, StoreError, StoreResult};

pub(super) async fn post_cluster_mail(pool: &PgPool, mail: &MailRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cluster_mail (id, recipient, caller, body, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&mail.id)
    .bind(&mail.recipient)
    .bind(&mail.caller)
    .bind(&mail.body)
    .bind(mail.created_at)
    .execute(pool)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(d) if d.is_unique_violation() => {
            StoreError::Conflict(format!("cluster mail {}", mail.id))
        }
        _ => db(e),
    })?;
    Ok(())
}

pub(super) async fn take_cluster_mail(
    pool: &PgPool,
    recipient: &str,
    expired_before: UnixTime,
) -> StoreResult<Vec<MailRecord>> {
    sqlx::query("DELETE FROM cluster_mail WHERE created_at < $1")
        .bind(expired_before)
        .execute(pool)
        .await
        .map_err(db)?;
    let rows = sqlx::query(
        "DELETE FROM cluster_mail WHERE recipient = $1 \
         RETURNING id, recipient, caller, body, created_at",
    )
    .bind(recipient)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out = rows
        .iter()
        .map(|row| {
            Ok(MailRecord {
                id: col(row, "id")?,
                recipient: col(row, "recipient")?,
                caller: col(row, "caller")?,
                body: col(row, "body")?,
                created_at: col(row, "created_at")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING gives no order.
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}
