//! A configuration reload of the gateway (docs/operations.md, "Reload"):
//! the new `[[upstream]]` list put in force, and the open sessions and
//! listen streams told what changed.
//!
//! An upstream whose configuration is unchanged keeps its `Upstream`, so
//! its connections, and the sessions using them, carry on. A changed one
//! is built anew (new connections, a restart) and the old one stopped; a
//! removed one is stopped; an added one is started. Upstreams with
//! `auth = "oauth"` are no different: the per-user OAuth service gets the
//! new list too (`crate::upstream_oauth::upstreams`), so a changed one's
//! users connect again only if its URL changed (a token is used only with
//! the URL it was issued for), and a removed one's connect links and
//! pending sign-ins end on a page that says so.
//!
//! Everything new is built before anything is swapped: if one new upstream
//! cannot be built (its identity key is missing, say), nothing changes.

use std::collections::HashSet;
use std::sync::Arc;

use mcpgate_core::mcp::bearer::Caller;

use super::config::UpstreamConfig;
use super::listen::Change;
use super::upstream::Upstream;
use super::{Gateway, env};

/// The kinds of list a reload may change.
pub const ALL_LISTS: [Change; 3] = [Change::Tools, Change::Prompts, Change::Resources];

/// What a reload did to the upstreams, by name.
#[derive(Debug, Default, Clone)]
pub struct UpstreamChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// The configurations (old and new) of every upstream that changed,
    /// to decide which callers are concerned.
    affected: Vec<UpstreamConfig>,
}

impl UpstreamChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Whether `caller` could use one of the upstreams that changed,
    /// before or after the reload.
    pub fn concerns(&self, caller: &Caller) -> bool {
        self.affected.iter().any(|c| c.allows_caller(caller))
    }
}

fn same(a: &UpstreamConfig, b: &UpstreamConfig) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl Gateway {
    /// The upstreams in force (an `Arc` clone; a reload may swap them).
    /// Restarts the upstream `name` (`Upstream::restart`); false if there
    /// is none.
    pub fn restart(&self, name: &str) -> bool {
        match self.upstreams().iter().find(|u| u.cfg.name == name) {
            Some(u) => {
                u.restart();
                true
            }
            None => false,
        }
    }

    pub(super) fn upstreams(&self) -> Arc<Vec<Arc<Upstream>>> {
        match self.upstreams.read() {
            Ok(u) => u.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The upstreams `caller` may use, in configuration order.
    pub(super) fn visible(&self, caller: &Caller) -> Vec<Arc<Upstream>> {
        self.upstreams()
            .iter()
            .filter(|u| u.cfg.allows_caller(caller))
            .cloned()
            .collect()
    }

    /// The open sessions, registered by the MCP handler at `initialize`.
    pub fn sessions(&self) -> &super::sessions::Sessions {
        &self.sessions
    }

    /// Puts `configs` in force (see the module documentation). `protected`:
    /// the variables stdio upstreams never inherit, for the new settings.
    /// `Err`: a new upstream could not be built; nothing changed.
    pub fn replace_upstreams(
        &self,
        configs: Vec<UpstreamConfig>,
        protected: env::Protected,
    ) -> Result<UpstreamChanges, String> {
        let old = self.upstreams();
        let protected = Arc::new(protected);
        let mut changes = UpstreamChanges::default();
        let mut next: Vec<Arc<Upstream>> = Vec::new();
        let mut fresh: Vec<Arc<Upstream>> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let oauth_configs: Vec<UpstreamConfig> =
            configs.iter().filter(|c| c.is_oauth()).cloned().collect();
        for cfg in configs {
            seen.insert(cfg.name.clone());
            let running = old.iter().find(|u| u.cfg.name == cfg.name);
            match running {
                Some(u) if same(&u.cfg, &cfg) => next.push(u.clone()),
                running => {
                    let up = Arc::new(Upstream::new(
                        cfg.clone(),
                        self.cancel.child_token(),
                        &self.issuer,
                        protected.clone(),
                        &self.outbound,
                        self.listen.clone(),
                        self.oauth.clone(),
                    )?);
                    match running {
                        Some(u) => {
                            changes.changed.push(cfg.name.clone());
                            changes.affected.push(u.cfg.clone());
                        }
                        None => changes.added.push(cfg.name.clone()),
                    }
                    changes.affected.push(cfg);
                    next.push(up.clone());
                    fresh.push(up);
                }
            }
        }
        // Removed from the file.
        for u in old.iter().filter(|u| !seen.contains(&u.cfg.name)) {
            changes.removed.push(u.cfg.name.clone());
            changes.affected.push(u.cfg.clone());
        }
        let retired: Vec<Arc<Upstream>> = old
            .iter()
            .filter(|u| !next.iter().any(|n| Arc::ptr_eq(n, u)))
            .cloned()
            .collect();
        // The OAuth service's list first: no request of a replaced
        // upstream finds a token for its old URL once the new list runs.
        if let Some(o) = self.oauth.get() {
            o.set_upstreams(&oauth_configs);
        }
        match self.upstreams.write() {
            Ok(mut u) => *u = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        for u in retired {
            u.stop();
        }
        for u in fresh {
            u.start_shared();
        }
        Ok(changes)
    }

    /// Tells the open sessions and listen streams that lists changed:
    /// those concerned by `upstreams`, or all when `policy_changed`.
    /// Listen streams also have their upstreams decided again. Returns how
    /// many sessions were told.
    pub async fn announce(&self, upstreams: &UpstreamChanges, policy_changed: bool) -> usize {
        let concerned = |c: &Caller| policy_changed || upstreams.concerns(c);
        self.listen.reassess(
            |c| self.visible(c).iter().map(|u| u.cfg.name.clone()).collect(),
            concerned,
            &ALL_LISTS,
        );
        self.sessions.notify(&ALL_LISTS, concerned).await
    }
}
