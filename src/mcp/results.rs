//! The 2026-07-28 shape of the results mcpgate sends: `resultType`
//! (SEP-2322) and the caching hints (SEP-2549).
//!
//! A result relayed from an upstream on a 2025 revision has no
//! `resultType`; mcpgate marks every complete result it sends as such
//! (rmcp removes the field again for a client on an older revision).
//!
//! Caching: what the gateway shows depends on who asks. The merged lists
//! hold only the upstreams the caller may use (`allowed_users`) and, for
//! per-user upstreams, the caller's own connection; a resource is read
//! through the caller's connection. So every cacheable result is
//! `cacheScope: "private"` (a shared cache must never serve one user's
//! view to another), whatever an upstream said. (A client on an older
//! revision, which knows no caching hints, gets none added.) Lists are `ttlMs: 0`
//! (they change with upstreams restarting or announcing changes, which
//! `subscriptions/listen` reports); a read keeps the freshness its
//! upstream gave (`0` if none).

use rmcp::model::{
    CacheScope, CallToolResult, CompleteResult, GetPromptResult, ReadResourceResult, ResultType,
};

/// A merged list's hints for a 2026-07-28 request: `(ttlMs, cacheScope)`.
pub fn list_hints() -> (Option<u64>, Option<CacheScope>) {
    (Some(0), Some(CacheScope::Private))
}

/// A read relayed to a 2026-07-28 request (`per_request`) gets its hints;
/// a request of an older revision gets the result as the upstream sent it
/// (rmcp removes `resultType` for it).
pub fn read(mut r: ReadResourceResult, per_request: bool) -> ReadResourceResult {
    r.result_type = Some(ResultType::COMPLETE);
    if per_request {
        r.ttl_ms = Some(r.ttl_ms.unwrap_or(0));
        r.cache_scope = Some(CacheScope::Private);
    }
    r
}

pub fn tool(mut r: CallToolResult) -> CallToolResult {
    r.result_type.get_or_insert(ResultType::COMPLETE);
    r
}

pub fn prompt(mut r: GetPromptResult) -> GetPromptResult {
    r.result_type.get_or_insert(ResultType::COMPLETE);
    r
}

pub fn completion(mut r: CompleteResult) -> CompleteResult {
    r.result_type.get_or_insert(ResultType::COMPLETE);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ResourceContents;

    #[test]
    fn a_read_relayed_from_a_2025_upstream_is_complete_and_private() {
        let upstream: ReadResourceResult = serde_json::from_value(serde_json::json!({
            "contents": [{"uri": "test://x", "text": "x"}]
        }))
        .unwrap();
        assert_eq!(upstream.result_type, None);
        let r = read(upstream, true);
        assert_eq!(r.result_type, Some(ResultType::COMPLETE));
        assert_eq!(r.ttl_ms, Some(0));
        assert_eq!(r.cache_scope, Some(CacheScope::Private));
    }

    #[test]
    fn an_upstreams_public_scope_becomes_private_and_its_ttl_is_kept() {
        let mut upstream = ReadResourceResult::new(vec![ResourceContents::text("x", "test://x")]);
        upstream.ttl_ms = Some(60_000);
        upstream.cache_scope = Some(CacheScope::Public);
        let r = read(upstream, true);
        assert_eq!(r.ttl_ms, Some(60_000));
        assert_eq!(r.cache_scope, Some(CacheScope::Private));
    }
}
