//! The `auth = "oauth"` upstreams in force, swapped by a configuration
//! reload (docs/operations.md, "Reload"), and which stored connection
//! counts for each.
//!
//! - [`UpstreamOAuth::set_upstreams`]: the reload's new list. Readers
//!   clone an `Arc` of the map; an upstream removed or changed loses its
//!   discovered authorization server, a removed one its waiting sessions.
//!   Its users' stored tokens are kept: re-adding the upstream at the same
//!   URL restores their connections.
//! - A stored connection is used only with the upstream URL its tokens
//!   were issued for ([`issued_for`]; the connect flow's `resource`,
//!   RFC 8707 §2, was that URL's): when a reload gives an upstream another
//!   URL, its users count as not connected, and no token of theirs is sent
//!   to the new server (nor revoked there) until they connect again.

use std::collections::HashMap;
use std::sync::Arc;

use super::UpstreamOAuth;
use crate::gateway::config::UpstreamConfig;
use crate::store::{StoreError, UpstreamTokenRecord};

/// The `auth = "oauth"` upstreams of `configs`, by name.
pub(super) fn by_name(configs: &[UpstreamConfig]) -> HashMap<String, UpstreamConfig> {
    configs
        .iter()
        .filter(|u| u.is_oauth())
        .map(|u| (u.name.clone(), u.clone()))
        .collect()
}

/// Whether the stored connection `record` was made with `cfg`'s URL (rows
/// from before the URL was recorded were not).
pub fn issued_for(record: &UpstreamTokenRecord, cfg: &UpstreamConfig) -> bool {
    record.url.is_some() && record.url == cfg.url
}

fn same(a: &UpstreamConfig, b: &UpstreamConfig) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl UpstreamOAuth {
    fn map(&self) -> Arc<HashMap<String, UpstreamConfig>> {
        match self.upstreams.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The `auth = "oauth"` upstream `name`, as configured now.
    pub fn upstream(&self, name: &str) -> Option<UpstreamConfig> {
        self.map().get(name).cloned()
    }

    /// The `auth = "oauth"` upstreams, by name.
    pub fn upstreams(&self) -> Vec<UpstreamConfig> {
        let mut v: Vec<_> = self.map().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Whether any `auth = "oauth"` upstream is configured.
    pub fn has_upstreams(&self) -> bool {
        !self.map().is_empty()
    }

    /// Puts the `auth = "oauth"` upstreams of `configs` in force (see the
    /// module documentation).
    pub fn set_upstreams(&self, configs: &[UpstreamConfig]) {
        let next = by_name(configs);
        let old = self.map();
        let stale: Vec<&String> = old
            .iter()
            .filter(|(name, cfg)| next.get(*name).is_none_or(|n| !same(n, cfg)))
            .map(|(name, _)| name)
            .collect();
        if let Ok(mut d) = self.discovered.lock() {
            d.retain(|name, _| !stale.contains(&name));
        }
        if let Ok(mut w) = self.waiting.lock() {
            w.retain(|(_, upstream), _| next.contains_key(upstream));
        }
        if let Ok(mut s) = self.step_ups.lock() {
            s.retain_upstreams(|upstream| next.contains_key(upstream));
        }
        match self.upstreams.write() {
            Ok(mut m) => *m = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
    }

    /// The user's stored connection to `upstream` if it counts: the
    /// upstream is configured and the tokens were issued for its URL.
    pub async fn connection_record(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        let Some(cfg) = self.upstream(upstream) else {
            return Ok(None);
        };
        Ok(self
            .store
            .upstream_token(user_id, upstream)
            .await?
            .filter(|r| issued_for(r, &cfg)))
    }

    /// Whether the user has a connection to `upstream` (at its URL).
    pub async fn is_connected(&self, user_id: &str, upstream: &str) -> bool {
        matches!(self.connection_record(user_id, upstream).await, Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> UpstreamConfig {
        toml::from_str(&format!(
            "name = \"gh\"\nurl = \"{url}\"\nauth = \"oauth\"\nisolation = \"per_user\"\n"
        ))
        .unwrap()
    }

    fn record(url: Option<&str>) -> UpstreamTokenRecord {
        UpstreamTokenRecord {
            user_id: "u".into(),
            upstream: "gh".into(),
            url: url.map(str::to_string),
            kid: "k".into(),
            sealed: "s".into(),
            expires_at: None,
            scope: None,
            account: None,
            version: 1,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn a_connection_counts_only_for_the_url_its_tokens_were_issued_for() {
        let here = cfg("https://mcp.example/mcp");
        assert!(issued_for(&record(Some("https://mcp.example/mcp")), &here));
        assert!(!issued_for(
            &record(Some("https://other.example/mcp")),
            &here
        ));
        assert!(!issued_for(
            &record(Some("https://mcp.example/mcp/")),
            &here
        ));
        assert!(!issued_for(&record(None), &here));
    }

    #[test]
    fn only_oauth_upstreams_are_kept_by_name() {
        let stdio: UpstreamConfig = toml::from_str("name = \"s\"\ncommand = \"x\"\n").unwrap();
        let m = by_name(&[cfg("https://mcp.example/mcp"), stdio]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["gh"]);
    }
}
