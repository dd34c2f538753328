//! Registered clients and users' consents to them.

use mcpgate_core::domain::{ClientId, Scope};
use mcpgate_core::model::{CachedDocument, Client, ClientKind, ClientMetadata, Consent, UnixTime};
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{col, db, insert_error, parsed};
use crate::store::{StoreError, StoreResult};

/// `SELECT` of every client column, followed by the rest of the query.
macro_rules! select_clients {
    ($rest:literal) => {
        concat!(
            "SELECT client_id, secret_hash, metadata, issued_at, last_used_at, kind, \
             document_fetched_at, document_fresh_until FROM clients ",
            $rest
        )
    };
}

fn client_from_row(row: &PgRow) -> StoreResult<Client> {
    Ok(Client {
        client_id: parsed(row, "client_id", ClientId::parse)?,
        secret_hash: col(row, "secret_hash")?,
        metadata: parsed(row, "metadata", |s| {
            serde_json::from_str::<ClientMetadata>(s)
        })?,
        issued_at: col(row, "issued_at")?,
        last_used_at: col(row, "last_used_at")?,
        kind: parsed(row, "kind", |s| {
            ClientKind::parse(s).ok_or_else(|| format!("unknown client kind {s:?}"))
        })?,
    })
}

pub(super) async fn create_client(pool: &PgPool, client: &Client) -> StoreResult<()> {
    let metadata = serde_json::to_string(&client.metadata)
        .map_err(|e| StoreError::Database(format!("cannot encode client metadata: {e}")))?;
    sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, metadata, issued_at, last_used_at, kind) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(client.client_id.as_str())
    .bind(&client.secret_hash)
    .bind(metadata)
    .bind(client.issued_at)
    .bind(client.last_used_at)
    .bind(client.kind.as_str())
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || format!("client {}", client.client_id)))?;
    Ok(())
}

pub(super) async fn client(pool: &PgPool, id: &ClientId) -> StoreResult<Option<Client>> {
    sqlx::query(select_clients!("WHERE client_id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(client_from_row)
        .transpose()
}

pub(super) async fn list_clients(pool: &PgPool) -> StoreResult<Vec<Client>> {
    sqlx::query(select_clients!("ORDER BY issued_at, client_id"))
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(client_from_row)
        .collect()
}

pub(super) async fn delete_client(pool: &PgPool, id: &ClientId) -> StoreResult<bool> {
    // Codes, tokens and consents go with the client (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(id.as_str())
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(deleted > 0)
}

pub(super) async fn touch_client(pool: &PgPool, id: &ClientId, now: UnixTime) -> StoreResult<()> {
    sqlx::query("UPDATE clients SET last_used_at = $1 WHERE client_id = $2")
        .bind(now)
        .bind(id.as_str())
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn delete_unused_clients(
    pool: &PgPool,
    issued_before: UnixTime,
) -> StoreResult<u64> {
    let deleted = sqlx::query("DELETE FROM clients WHERE last_used_at IS NULL AND issued_at < $1 AND kind <> 'preregistered'")
        .bind(issued_before)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(deleted)
}

pub(super) async fn consent(
    pool: &PgPool,
    user_id: &str,
    client_id: &ClientId,
    redirect_uri: &str,
) -> StoreResult<Option<Consent>> {
    let row = sqlx::query(
        "SELECT user_id, client_id, redirect_uri, scope, granted_at FROM consents \
         WHERE user_id = $1 AND client_id = $2 AND redirect_uri = $3",
    )
    .bind(user_id)
    .bind(client_id.as_str())
    .bind(redirect_uri)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Consent {
        user_id: col(&row, "user_id")?,
        client_id: parsed(&row, "client_id", ClientId::parse)?,
        redirect_uri: col(&row, "redirect_uri")?,
        scope: parsed(&row, "scope", Scope::parse)?,
        granted_at: col(&row, "granted_at")?,
    }))
}

pub(super) async fn save_consent(pool: &PgPool, consent: &Consent) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, redirect_uri, scope, granted_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, client_id, redirect_uri) \
         DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
    )
    .bind(&consent.user_id)
    .bind(consent.client_id.as_str())
    .bind(&consent.redirect_uri)
    .bind(consent.scope.to_string())
    .bind(consent.granted_at)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn client_document(
    pool: &PgPool,
    id: &ClientId,
) -> StoreResult<Option<CachedDocument>> {
    let row = sqlx::query(select_clients!(
        "WHERE client_id = $1 AND kind = 'metadata_document' \
         AND document_fetched_at IS NOT NULL AND document_fresh_until IS NOT NULL"
    ))
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(CachedDocument {
        client: client_from_row(&row)?,
        fetched_at: col(&row, "document_fetched_at")?,
        fresh_until: col(&row, "document_fresh_until")?,
    }))
}

pub(super) async fn save_client_document(pool: &PgPool, doc: &CachedDocument) -> StoreResult<()> {
    let c = &doc.client;
    let metadata = serde_json::to_string(&c.metadata)
        .map_err(|e| StoreError::Database(format!("cannot encode client metadata: {e}")))?;
    let written = sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, metadata, issued_at, last_used_at, kind, \
         document_fetched_at, document_fresh_until) \
         VALUES ($1, NULL, $2, $3, $4, 'metadata_document', $5, $6) \
         ON CONFLICT (client_id) DO UPDATE SET metadata = excluded.metadata, \
         document_fetched_at = excluded.document_fetched_at, \
         document_fresh_until = excluded.document_fresh_until \
         WHERE clients.kind = 'metadata_document'",
    )
    .bind(c.client_id.as_str())
    .bind(metadata)
    .bind(c.issued_at)
    .bind(c.last_used_at)
    .bind(doc.fetched_at)
    .bind(doc.fresh_until)
    .execute(pool)
    .await
    .map_err(db)?
    .rows_affected();
    if written == 0 {
        return Err(StoreError::Conflict(format!("client {}", c.client_id)));
    }
    Ok(())
}
