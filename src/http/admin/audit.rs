//! `GET /admin/audit`: the audit log (docs/audit.md), newest first,
//! filtered by user (name or id), client id, tool (the record's target)
//! and time (`since`, `until`: an RFC 3339 time or an age such as `2h`, as
//! `mcpgate audit search` takes them).

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{failure, gate, render};
use crate::admin::AdminError;
use crate::http::AppState;
use crate::store::{AuditOrder, AuditQuery};

/// Records shown per page.
const PAGE: u32 = 200;

#[derive(Deserialize, Serialize, Default)]
pub struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

#[derive(Serialize)]
struct Row {
    time: String,
    kind: String,
    outcome: String,
    user: String,
    client_id: String,
    upstream: String,
    target: String,
    detail: String,
}

#[derive(Serialize)]
struct AuditView<'a> {
    filters: &'a Filters,
    records: Vec<Row>,
    limit: u32,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `GET /admin/audit?user=&client=&tool=&since=&until=`.
pub async fn get(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(filters): Query<Filters>,
    headers: HeaderMap,
) -> Response {
    let mut admin = match gate(&app, uri.path(), &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let now_ms = app.auth.clock.now_ms();
    let time = |flag: &str, v: &str| -> Result<Option<i64>, String> {
        some(v)
            .map(|v| crate::cli::audit::parse_time(flag, &v, now_ms).map_err(|e| e.to_string()))
            .transpose()
    };
    let (since_ms, until_ms) = match (time("since", &filters.since), time("until", &filters.until))
    {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => {
            admin.frame.error = Some(e);
            let view = AuditView {
                filters: &filters,
                records: Vec::new(),
                limit: PAGE,
            };
            return render(
                &app,
                StatusCode::BAD_REQUEST,
                "admin_audit.html",
                &admin.frame,
                &view,
            );
        }
    };
    let query = AuditQuery {
        user: some(&filters.user),
        client_id: some(&filters.client),
        target: some(&filters.tool),
        since_ms,
        until_ms,
        order: AuditOrder::NewestFirst,
        limit: PAGE,
        ..AuditQuery::default()
    };
    let records = match app.auth.store.search_audit(&query).await {
        Ok(r) => r,
        Err(e) => return failure(&app, &AdminError::Store(e)),
    };
    let records = records
        .into_iter()
        .map(|r| Row {
            time: chrono::DateTime::from_timestamp_millis(r.at_ms)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            kind: r.kind,
            outcome: r.outcome,
            user: r.username.or(r.user_id).unwrap_or_default(),
            client_id: r.client_id.unwrap_or_default(),
            upstream: r.upstream.unwrap_or_default(),
            target: r.target.unwrap_or_default(),
            detail: r.detail.unwrap_or_default(),
        })
        .collect();
    let view = AuditView {
        filters: &filters,
        records,
        limit: PAGE,
    };
    render(
        &app,
        StatusCode::OK,
        "admin_audit.html",
        &admin.frame,
        &view,
    )
}
