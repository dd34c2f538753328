//! The downstream sessions an upstream connection may notify (those that
//! used it, and those that subscribed to a resource through it), with their
//! rmcp peers.
//!
//! Nothing tells the relay that a downstream session ended (a `DELETE`, an
//! idle timeout, a closed SSE stream), and a peer it still holds keeps that
//! session's channel and handshake data alive: a few KiB per session, which
//! added up to about 4 MiB a minute in the soak (docs/benchmarks.md, "Soak").
//! So the peers of ended sessions (their transport closed) are dropped
//! whenever the map has doubled since the last time it was pruned: it holds
//! at most about twice the live sessions (and at least [`PRUNE_FROM`]
//! before it is first pruned), at a cost linear in the insertions.

use std::collections::HashMap;
use std::hash::Hash;

use rmcp::{Peer, RoleServer};

/// The size below which the map is never pruned.
const PRUNE_FROM: usize = 64;

pub(super) struct SessionPeers<K> {
    map: HashMap<K, Peer<RoleServer>>,
    /// The size at which the next insertion of a new key prunes first.
    prune_at: usize,
}

impl<K> Default for SessionPeers<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            prune_at: PRUNE_FROM,
        }
    }
}

impl<K: Hash + Eq> SessionPeers<K> {
    pub(super) fn insert(&mut self, key: K, peer: Peer<RoleServer>) {
        if self.map.len() >= self.prune_at && !self.map.contains_key(&key) {
            self.map.retain(|_, p| !p.is_transport_closed());
            self.prune_at = (2 * self.map.len()).max(PRUNE_FROM);
        }
        self.map.insert(key, peer);
    }

    pub(super) fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// The entries whose key `wanted` accepts.
    pub(super) fn select(&self, wanted: impl Fn(&K) -> bool) -> Vec<(K, Peer<RoleServer>)>
    where
        K: Clone,
    {
        self.map
            .iter()
            .filter(|(k, _)| wanted(k))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
