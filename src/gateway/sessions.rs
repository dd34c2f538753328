//! The open MCP sessions of this instance (Streamable HTTP and legacy
//! SSE), each with its caller and link (`crate::mcp::client_link`), so that a configuration reload
//! can tell them that the catalog changed (`notifications/*/list_changed`,
//! MCP "Lists": servers that declare `listChanged` send them when the list
//! changes). 2026-07-28 clients have no session: they hear the same through
//! their `subscriptions/listen` streams (`super::listen`).
//!
//! A notification carries nothing but its kind; each session then reads
//! its list again, filtered for its own caller, so no session ever learns
//! of an item it may not use. Only sessions whose caller may use a changed
//! upstream (before or after the reload) are told of an upstream change; a
//! policy change reaches every session.
//!
//! Nothing tells this registry that a session ended, so entries whose
//! transport closed are dropped whenever the map has doubled since it was
//! last pruned, and when a notification to them fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::mcp::client_link::ClientLink;
use mcpgate_core::mcp::bearer::Caller;

use super::listen::Change;

/// The size below which the map is never pruned.
const PRUNE_FROM: usize = 64;
/// How long one session may take to accept a notification.
const NOTIFY_WITHIN: Duration = Duration::from_secs(2);

struct Entry {
    caller: Caller,
    link: ClientLink,
}

struct Inner {
    map: HashMap<u64, Entry>,
    prune_at: usize,
}

/// See the module documentation.
pub struct Sessions {
    next: AtomicU64,
    inner: Mutex<Inner>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            next: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                prune_at: PRUNE_FROM,
            }),
        }
    }
}

impl Sessions {
    /// Records an initialized session of `caller`.
    pub fn add(&self, caller: Caller, link: ClientLink) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.map.len() >= inner.prune_at {
            inner.map.retain(|_, e| !e.link.is_closed());
            inner.prune_at = (2 * inner.map.len()).max(PRUNE_FROM);
        }
        inner.map.insert(id, Entry { caller, link });
    }

    /// Number of sessions held (closed ones not yet pruned included).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `kinds` to every open session whose caller `concerned`
    /// accepts; returns how many sessions were told.
    pub async fn notify(&self, kinds: &[Change], concerned: impl Fn(&Caller) -> bool) -> usize {
        let targets: Vec<(u64, ClientLink)> = match self.inner.lock() {
            Ok(mut inner) => {
                inner.map.retain(|_, e| !e.link.is_closed());
                inner
                    .map
                    .iter()
                    .filter(|(_, e)| concerned(&e.caller))
                    .map(|(id, e)| (*id, e.link.clone()))
                    .collect()
            }
            Err(_) => return 0,
        };
        let mut told = 0;
        for (id, link) in targets {
            let mut ok = true;
            for k in kinds {
                let sent = match k {
                    Change::Tools => {
                        tokio::time::timeout(NOTIFY_WITHIN, link.notify_tool_list_changed()).await
                    }
                    Change::Prompts => {
                        tokio::time::timeout(NOTIFY_WITHIN, link.notify_prompt_list_changed()).await
                    }
                    Change::Resources => {
                        tokio::time::timeout(NOTIFY_WITHIN, link.notify_resource_list_changed())
                            .await
                    }
                };
                if !matches!(sent, Ok(Ok(()))) {
                    ok = false;
                    break;
                }
            }
            if ok {
                told += 1;
            } else if let Ok(mut inner) = self.inner.lock() {
                inner.map.remove(&id);
            }
        }
        told
    }
}
