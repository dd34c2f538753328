//! Which scopes a call needs, and the scope a step-up challenge names.
//!
//! - Every MCP request needs the base scope (`Policy::required_scope`,
//!   checked by [`super::bearer::check`]).
//! - `scopes = [...]` on an `[[upstream]]`: every tool, prompt and resource
//!   of that upstream needs these too.
//! - Item-level entries ([`ItemRequirement`]): a tool, prompt or resource
//!   matched by its exposed name (or URI) with a glob, optionally only of
//!   one upstream, needs more. Policy rules (`[[policy]]` with `scopes`)
//!   feed this list when they are compiled.
//!
//! [`ScopeRequirements::required_for`] is the union of the three.
//!
//! A token lacking part of it gets HTTP 403 with `WWW-Authenticate: Bearer
//! error="insufficient_scope", scope="…"` (RFC 6750 §3.1; MCP 2025-11-25,
//! authorization, "Scope Challenge Handling"). [`challenge_scope`] is that
//! `scope`: per the 2025-11-25 scope selection strategy, the scopes the
//! token already has plus the missing ones, so that a client which
//! replaces its scope with the challenge's (TypeScript SDK v1) does not
//! lose what it had; a 2026-07-28 client takes the union with what it had
//! anyway. `offline_access` is never named (it is no permission at the
//! endpoint; see `oauth::policy::OFFLINE_ACCESS`).

use std::collections::BTreeMap;

use crate::domain::Scope;
use crate::oauth::policy::OFFLINE_ACCESS;

/// A name pattern: exact, or with `*` standing for any run of characters
/// (`files_*`, `crm_delete_*`, `file:///srv/private/*`). Matching takes
/// no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPattern(String);

impl ItemPattern {
    /// Any non-empty pattern.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an item pattern may not be empty".into());
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches: literal segments in order, `*` between them.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let Some(first) = parts.next() else {
            return false;
        };
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let mut parts = parts.peekable();
        if parts.peek().is_none() {
            // No `*` at all: an exact match.
            return rest.is_empty();
        }
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                // The last segment must end the name.
                return rest.ends_with(part);
            }
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Scopes a tool, prompt or resource needs beyond its upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRequirement {
    /// Only items of this upstream (by name); `None`: of any upstream, and
    /// mcpgate's built-in tools.
    pub upstream: Option<String>,
    /// The exposed name (`<prefix>_<tool>`) or the resource URI.
    pub pattern: ItemPattern,
    pub scope: Scope,
}

/// What every call needs: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirements {
    base: Scope,
    upstreams: BTreeMap<String, Scope>,
    items: Vec<ItemRequirement>,
}

impl ScopeRequirements {
    /// Only the base scope, for everything.
    pub fn new(base: Scope) -> Self {
        Self {
            base,
            upstreams: BTreeMap::new(),
            items: Vec::new(),
        }
    }

    /// Every item of upstream `name` also needs `scope`.
    pub fn with_upstream(mut self, name: &str, scope: Scope) -> Self {
        let merged = match self.upstreams.get(name) {
            Some(s) => s.union(&scope),
            None => scope,
        };
        self.upstreams.insert(name.to_string(), merged);
        self
    }

    /// Items matching `item` also need its scope.
    pub fn with_item(mut self, item: ItemRequirement) -> Self {
        self.items.push(item);
        self
    }

    pub fn base(&self) -> &Scope {
        &self.base
    }

    /// Whether nothing needs more than the base scope (the common case:
    /// no call needs to be looked at).
    pub fn only_base(&self) -> bool {
        self.upstreams.is_empty() && self.items.is_empty()
    }

    /// The scope upstream `name` demands of all its items, if any.
    pub fn of_upstream(&self, name: &str) -> Option<&Scope> {
        self.upstreams.get(name)
    }

    /// Everything a call of `item` (exposed name or resource URI) served by
    /// `upstream` (`None`: a built-in tool) needs: the base scope, the
    /// upstream's, and those of every matching item entry.
    pub fn required_for(&self, upstream: Option<&str>, item: &str) -> Scope {
        let mut needed = self.base.clone();
        if let Some(s) = upstream.and_then(|u| self.upstreams.get(u)) {
            needed = needed.union(s);
        }
        for r in &self.items {
            let same_upstream = match &r.upstream {
                None => true,
                Some(u) => Some(u.as_str()) == upstream,
            };
            if same_upstream && r.pattern.matches(item) {
                needed = needed.union(&r.scope);
            }
        }
        needed
    }

    /// `Ok` if `granted` covers what `item` needs; else the scope the
    /// challenge names ([`challenge_scope`]).
    pub fn check(&self, granted: &Scope, upstream: Option<&str>, item: &str) -> Result<(), Scope> {
        let needed = self.required_for(upstream, item);
        if needed.is_subset_of(granted) {
            Ok(())
        } else {
            Err(challenge_scope(granted, &needed))
        }
    }
}

/// The `scope` of an `insufficient_scope` challenge: what the token has
/// plus what is needed, without `offline_access` (see the module
/// documentation).
pub fn challenge_scope(granted: &Scope, needed: &Scope) -> Scope {
    let all = granted.union(needed);
    all.without(OFFLINE_ACCESS).unwrap_or(all)
}

/// The tokens of `needed` that `granted` lacks, space-separated (for
/// messages).
pub fn missing(granted: &Scope, needed: &Scope) -> String {
    needed
        .tokens()
        .filter(|t| !granted.contains(t))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Scope {
        Scope::parse(v).unwrap()
    }

    fn item(upstream: Option<&str>, pattern: &str, scope: &str) -> ItemRequirement {
        ItemRequirement {
            upstream: upstream.map(str::to_string),
            pattern: ItemPattern::parse(pattern).unwrap(),
            scope: s(scope),
        }
    }

    #[test]
    fn patterns_match_exactly_or_with_stars() {
        let p = |x: &str| ItemPattern::parse(x).unwrap();
        assert!(p("files_read").matches("files_read"));
        assert!(!p("files_read").matches("files_read2"));
        assert!(!p("files_read").matches("files_rea"));
        assert!(p("files_*").matches("files_read"));
        assert!(p("files_*").matches("files_"));
        assert!(!p("files_*").matches("file_read"));
        assert!(p("*_delete_*").matches("crm_delete_contact"));
        assert!(!p("*_delete_*").matches("crm_remove_contact"));
        assert!(p("file:///srv/private/*").matches("file:///srv/private/a/b.txt"));
        assert!(!p("file:///srv/private/*").matches("file:///srv/public/a"));
        assert!(p("*").matches("anything"));
        assert!(p("a*b*c").matches("abc") && p("a*b*c").matches("a-b-b-c"));
        assert!(!p("a*b*c").matches("acb"));
        assert!(!p("ab*ba").matches("aba"));
        assert!(ItemPattern::parse("").is_err());
    }

    #[test]
    fn the_base_scope_alone_when_nothing_else_is_declared() {
        let r = ScopeRequirements::new(s("mcp"));
        assert!(r.only_base());
        assert_eq!(r.required_for(Some("fs"), "fs_write"), s("mcp"));
        assert_eq!(r.required_for(None, "whoami"), s("mcp"));
        assert!(r.check(&s("mcp"), Some("fs"), "fs_write").is_ok());
    }

    #[test]
    fn an_upstreams_scopes_apply_to_all_its_items_and_only_to_them() {
        let r = ScopeRequirements::new(s("mcp")).with_upstream("fs", s("files:write"));
        assert!(!r.only_base());
        assert_eq!(r.required_for(Some("fs"), "fs_read"), s("mcp files:write"));
        assert_eq!(r.required_for(Some("crm"), "crm_read"), s("mcp"));
        assert_eq!(r.required_for(None, "whoami"), s("mcp"));
        assert_eq!(r.of_upstream("fs"), Some(&s("files:write")));
        // Declared twice: the union.
        let r = r.with_upstream("fs", s("files:admin"));
        assert_eq!(
            r.required_for(Some("fs"), "x"),
            s("mcp files:write files:admin")
        );
    }

    #[test]
    fn item_entries_add_to_the_upstreams_by_pattern_and_upstream() {
        let r = ScopeRequirements::new(s("mcp"))
            .with_upstream("fs", s("files:read"))
            .with_item(item(Some("fs"), "fs_write_*", "files:write"))
            .with_item(item(None, "*_delete_*", "danger"))
            .with_item(item(Some("crm"), "fs_write_*", "never"));
        assert_eq!(r.required_for(Some("fs"), "fs_read"), s("mcp files:read"));
        assert_eq!(
            r.required_for(Some("fs"), "fs_write_file"),
            s("mcp files:read files:write")
        );
        // The entry of another upstream does not apply.
        assert!(
            !r.required_for(Some("fs"), "fs_write_file")
                .contains("never")
        );
        // An entry without upstream applies everywhere, built-ins included.
        assert_eq!(
            r.required_for(Some("crm"), "crm_delete_all"),
            s("mcp danger")
        );
        assert_eq!(r.required_for(None, "x_delete_y"), s("mcp danger"));
        assert_eq!(
            r.required_for(Some("fs"), "fs_delete_x"),
            s("mcp files:read danger")
        );
        // Resource URIs match too.
        let r = ScopeRequirements::new(s("mcp")).with_item(item(
            Some("fs"),
            "file:///srv/private/*",
            "private",
        ));
        assert_eq!(
            r.required_for(Some("fs"), "file:///srv/private/a"),
            s("mcp private")
        );
        assert_eq!(r.required_for(Some("fs"), "file:///srv/a"), s("mcp"));
    }

    #[test]
    fn the_challenge_names_what_the_token_has_plus_what_is_missing() {
        let r = ScopeRequirements::new(s("mcp"))
            .with_upstream("fs", s("files:write"))
            .with_item(item(None, "fs_admin", "admin"));
        assert_eq!(
            r.check(&s("mcp other"), Some("fs"), "fs_read"),
            Err(s("mcp other files:write"))
        );
        assert_eq!(
            r.check(&s("mcp files:write"), Some("fs"), "fs_admin"),
            Err(s("mcp files:write admin"))
        );
        assert!(
            r.check(&s("mcp files:write admin"), Some("fs"), "fs_admin")
                .is_ok()
        );
        // offline_access is never named, even when the token has it.
        assert_eq!(
            r.check(&s("mcp offline_access"), Some("fs"), "fs_read"),
            Err(s("mcp files:write"))
        );
        assert_eq!(
            missing(&s("mcp"), &s("mcp files:write admin")),
            "admin files:write"
        );
    }
}
