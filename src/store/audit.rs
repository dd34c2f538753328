//! Records of the audit log (`crate::audit`, docs/audit.md): the row as
//! stored, and the filters of a search.
//!
//! The table is append-only: [`Store::append_audit`](super::Store::append_audit)
//! adds rows, [`Store::search_audit`](super::Store::search_audit) reads them
//! and [`Store::prune_audit`](super::Store::prune_audit) deletes the oldest
//! (retention). Nothing updates a row; the migration's trigger refuses it.

/// One audit record. `id` is given by the store (ignored when appending);
/// times are Unix milliseconds; `detail` is a JSON object or `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    #[serde(default)]
    pub id: i64,
    pub at_ms: i64,
    /// The event (`sign_in`, `token.issued`, `tool.call`, ...).
    pub kind: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The tool, prompt or resource URI of a gateway event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The instance that wrote it (`instance_id`, or `cli`).
    pub instance: String,
    /// A small JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Which end of the log a search starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditOrder {
    /// Oldest first (ascending id): following the log (`tail -f`).
    #[default]
    OldestFirst,
    /// Newest first (descending id): the last N records.
    NewestFirst,
}

/// The filters of [`Store::search_audit`](super::Store::search_audit); every
/// filter given must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// A username or a user id.
    pub user: Option<String>,
    pub client_id: Option<String>,
    /// The tool, prompt or resource URI.
    pub target: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    /// Records at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Records before this time (Unix milliseconds).
    pub until_ms: Option<i64>,
    /// Cursor: records with a greater id only.
    pub after_id: Option<i64>,
    /// Cursor: records with a smaller id only.
    pub before_id: Option<i64>,
    pub order: AuditOrder,
    /// At most this many records.
    pub limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            user: None,
            client_id: None,
            target: None,
            kind: None,
            outcome: None,
            since_ms: None,
            until_ms: None,
            after_id: None,
            before_id: None,
            order: AuditOrder::OldestFirst,
            limit: 100,
        }
    }
}

/// Most records one search returns, whatever the limit asked.
pub const MAX_SEARCH_LIMIT: u32 = 10_000;
