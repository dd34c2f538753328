//! The rate-limit buckets of one instance: one per (caller, tool), in
//! memory (several instances each limit on their own; docs/policy.md).
//!
//! Memory is bounded: at [`MAX_BUCKETS`], buckets that are full again
//! (idle: forgetting one changes nothing) are dropped; if none is, the one
//! closest to full goes.

use std::collections::HashMap;
use std::sync::Mutex;

use mcpgate_core::policy::rate::{Bucket, Rate, retry_after_secs};

/// Buckets kept at most.
pub const MAX_BUCKETS: usize = 100_000;

#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl Limiter {
    /// Takes a call from the bucket of (`owner`, `tool`), or says in how
    /// many seconds to retry.
    pub fn take(&self, owner: &str, tool: &str, rate: Rate, now_ms: i64) -> Result<(), u64> {
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (owner.to_string(), tool.to_string());
        if !map.contains_key(&key) && map.len() >= MAX_BUCKETS {
            evict(&mut map, now_ms);
        }
        map.entry(key)
            .or_default()
            .take(rate, now_ms)
            .map_err(retry_after_secs)
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().map(|m| m.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict(map: &mut HashMap<(String, String), Bucket>, now_ms: i64) {
    map.retain(|_, b| !b.is_full(now_ms));
    if map.len() >= MAX_BUCKETS
        && let Some(k) = map
            .iter()
            .min_by_key(|(_, b)| b.full_at())
            .map(|(k, _)| k.clone())
    {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_owner_and_tool() {
        let l = Limiter::default();
        let rate = Rate::parse("1/min", None).unwrap();
        l.take("alice", "t", rate, 0).unwrap();
        assert_eq!(l.take("alice", "t", rate, 0), Err(60));
        l.take("bob", "t", rate, 0).unwrap();
        l.take("alice", "u", rate, 0).unwrap();
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn memory_stays_bounded() {
        let l = Limiter::default();
        let rate = Rate::parse("1/s", None).unwrap();
        for i in 0..MAX_BUCKETS {
            l.take(&i.to_string(), "t", rate, 0).unwrap();
        }
        assert_eq!(l.len(), MAX_BUCKETS);
        // Nothing idle yet: one goes for the new one.
        l.take("new", "t", rate, 10).unwrap();
        assert_eq!(l.len(), MAX_BUCKETS);
        // All idle a second later: they are forgotten.
        l.take("later", "t", rate, 5_000).unwrap();
        assert_eq!(l.len(), 1);
    }
}
