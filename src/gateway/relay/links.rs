//! The downstream sessions an upstream connection may notify (those that
//! used it, and those that subscribed to a resource through it), with their
//! links (`crate::mcp::client_link`).
//!
//! Nothing tells the relay that a downstream session ended (a `DELETE`, an
//! idle timeout, a closed SSE stream), and a link it still holds keeps that
//! session's channel and handshake data alive: a few KiB per session, which
//! added up to about 4 MiB a minute in the soak (docs/benchmarks.md, "Soak").
//! So the links of ended sessions (their transport closed) are dropped
//! whenever the map has doubled since the last time it was pruned: it holds
//! at most about twice the live sessions (and at least [`PRUNE_FROM`]
//! before it is first pruned), at a cost linear in the insertions.

use std::collections::HashMap;
use std::hash::Hash;

use crate::mcp::client_link::ClientLink;

/// The size below which the map is never pruned.
const PRUNE_FROM: usize = 64;

pub(super) struct SessionLinks<K> {
    map: HashMap<K, ClientLink>,
    /// The size at which the next insertion of a new key prunes first.
    prune_at: usize,
}

impl<K> Default for SessionLinks<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            prune_at: PRUNE_FROM,
        }
    }
}

impl<K: Hash + Eq> SessionLinks<K> {
    pub(super) fn insert(&mut self, key: K, link: ClientLink) {
        if self.map.len() >= self.prune_at && !self.map.contains_key(&key) {
            self.map.retain(|_, l| !l.is_closed());
            self.prune_at = (2 * self.map.len()).max(PRUNE_FROM);
        }
        self.map.insert(key, link);
    }

    pub(super) fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// The entries whose key `wanted` accepts.
    pub(super) fn select(&self, wanted: impl Fn(&K) -> bool) -> Vec<(K, ClientLink)>
    where
        K: Clone,
    {
        self.map
            .iter()
            .filter(|(k, _)| wanted(k))
            .map(|(k, l)| (k.clone(), l.clone()))
            .collect()
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
