//! Groups of users and their memberships (docs/policy.md).

use mcpgate_core::model::{GroupMembership, GroupSource, GroupSummary, UnixTime};
use sqlx::SqlitePool;

use super::{begin_write, col, count, db};
use crate::store::{StoreError, StoreResult};

pub(super) async fn add_group_member(
    pool: &SqlitePool,
    user_id: &str,
    group: &str,
    source: &GroupSource,
    now: UnixTime,
) -> StoreResult<bool> {
    let mut tx = begin_write(pool).await?;
    sqlx::query("INSERT INTO user_groups (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(group)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let added = sqlx::query(
        "INSERT INTO user_group_members (user_id, group_name, source, created_at) \
         VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(group)
    .bind(source.as_stored())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected();
    tx.commit().await.map_err(db)?;
    Ok(added > 0)
}

pub(super) async fn remove_group_member(
    pool: &SqlitePool,
    user_id: &str,
    group: &str,
    source: &GroupSource,
) -> StoreResult<bool> {
    let removed = sqlx::query(
        "DELETE FROM user_group_members WHERE user_id = ? AND group_name = ? AND source = ?",
    )
    .bind(user_id)
    .bind(group)
    .bind(source.as_stored())
    .execute(pool)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(removed > 0)
}

pub(super) async fn groups_of_user(
    pool: &SqlitePool,
    user_id: &str,
) -> StoreResult<Vec<GroupMembership>> {
    sqlx::query(
        "SELECT group_name, source FROM user_group_members WHERE user_id = ? \
         ORDER BY group_name, source",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(|row| {
        let source: String = col(row, "source")?;
        Ok(GroupMembership {
            group: col(row, "group_name")?,
            source: GroupSource::from_stored(&source)
                .ok_or_else(|| StoreError::Corrupt(format!("group source {source:?}")))?,
        })
    })
    .collect()
}

pub(super) async fn list_groups(pool: &SqlitePool) -> StoreResult<Vec<GroupSummary>> {
    sqlx::query(
        "SELECT g.name, g.created_at, COUNT(DISTINCT m.user_id) AS members \
         FROM user_groups g LEFT JOIN user_group_members m ON m.group_name = g.name \
         GROUP BY g.name, g.created_at ORDER BY g.name",
    )
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(|row| {
        Ok(GroupSummary {
            name: col(row, "name")?,
            members: count(col(row, "members")?)?,
            created_at: col(row, "created_at")?,
        })
    })
    .collect()
}

pub(super) async fn replace_source_groups(
    pool: &SqlitePool,
    user_id: &str,
    source: &GroupSource,
    groups: &[String],
    now: UnixTime,
) -> StoreResult<()> {
    let mut tx = begin_write(pool).await?;
    sqlx::query("DELETE FROM user_group_members WHERE user_id = ? AND source = ?")
        .bind(user_id)
        .bind(source.as_stored())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    for group in groups {
        sqlx::query(
            "INSERT INTO user_groups (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO user_group_members (user_id, group_name, source, created_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(group)
        .bind(source.as_stored())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}
