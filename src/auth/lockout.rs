//! Failed sign-ins, counted per (account, address), per address and per
//! account (the rules: `mcpgate_core::login_limits`).
//!
//! The counts live in this instance's memory, not in the store: with
//! several instances behind a load balancer each counts what it sees, so
//! the limits hold per instance (an attacker spread over `k` instances gets
//! `k` times the attempts), and a restart forgets them.
//!
//! An attempt is counted as a failure when it starts (under the lock, so a
//! burst of parallel attempts cannot all pass the check) and refunded when
//! the password was right. The lock is never held across an `await`; the
//! account's delay is slept by the caller, holding neither the lock nor a
//! database connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use mcpgate_core::client_address::limit_key;
use mcpgate_core::domain::Username;
use mcpgate_core::login_limits::{FailureCount, delay_for};

/// Above this many counters, the empty ones are dropped at once; new
/// account counters wait for the next clean-up if that is not enough.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(Username),
    Pair(Username, IpAddr),
    Address(IpAddr),
}

/// What a sign-in attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead after waiting this long (zero unless the account is over
    /// its limit).
    Go { delay: Duration },
    /// Refused: wait this many seconds.
    Wait { seconds: u64 },
}

pub struct SignInLimits {
    /// Failures a minute per account and per (account, address).
    per_account: u32,
    /// Failures a minute per address.
    per_address: u32,
    counts: Mutex<HashMap<Key, FailureCount>>,
}

impl SignInLimits {
    pub fn new(per_account: u32, per_address: u32) -> Self {
        Self {
            per_account: per_account.max(1),
            per_address: per_address.max(1),
            counts: Mutex::default(),
        }
    }

    fn rate(&self, key: &Key) -> u32 {
        match key {
            Key::Address(_) => self.per_address,
            Key::Account(_) | Key::Pair(..) => self.per_account,
        }
    }

    fn keys(account: Option<&Username>, from: IpAddr) -> Vec<Key> {
        let from = limit_key(from);
        let mut keys = vec![Key::Address(from)];
        if let Some(a) = account {
            keys.push(Key::Pair(a.clone(), from));
            keys.push(Key::Account(a.clone()));
        }
        keys
    }

    /// Checks the hard limits and, if the attempt may go ahead, counts it
    /// as a failure (see [`Self::succeeded`]) and returns the account's
    /// delay. `account`: `None` when the typed name is not a valid username.
    pub fn admit(&self, account: Option<&Username>, from: IpAddr, now: i64) -> Admission {
        let keys = Self::keys(account, from);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter(|k| !matches!(k, Key::Account(_)))
            .filter_map(|k| counts.get(k)?.retry_after(now, self.rate(k)))
            .max();
        if let Some(seconds) = wait {
            return Admission::Wait { seconds };
        }
        let delay = account
            .and_then(|a| counts.get(&Key::Account(a.clone())))
            .map(|c| delay_for(c.failures(now, self.per_account), self.per_account))
            .unwrap_or_default();
        if counts.len() >= MAX_ENTRIES {
            counts.retain(|k, c| !c.is_empty(now, self.rate(k)));
        }
        for k in keys {
            let rate = self.rate(&k);
            if counts.len() >= MAX_ENTRIES && !counts.contains_key(&k) {
                continue;
            }
            counts.entry(k).or_default().record(now, rate);
        }
        Admission::Go { delay }
    }

    /// The password was right: the attempt counted by [`Self::admit`] was
    /// no failure.
    pub fn succeeded(&self, account: &Username, from: IpAddr, now: i64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for k in Self::keys(Some(account), from) {
            let rate = self.rate(&k);
            if let Some(c) = counts.get_mut(&k) {
                c.refund(now, rate);
            }
        }
    }

    /// The wait the next attempt on `account` would get.
    pub fn delay(&self, account: &Username, now: i64) -> Duration {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .get(&Key::Account(account.clone()))
            .map(|c| delay_for(c.failures(now, self.per_account), self.per_account))
            .unwrap_or_default()
    }

    /// Forgets counters that have drained.
    pub fn prune(&self, now: i64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.retain(|k, c| !c.is_empty(now, self.rate(k)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000;

    fn carol() -> Username {
        Username::parse("carol").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_attacker_is_stopped_per_pair_while_the_owner_is_only_slowed() {
        let l = SignInLimits::new(2, 6);
        let attacker = ip("203.0.113.7");
        let owner = ip("198.51.100.9");
        for _ in 0..2 {
            assert!(matches!(
                l.admit(Some(&carol()), attacker, T),
                Admission::Go { .. }
            ));
        }
        assert_eq!(
            l.admit(Some(&carol()), attacker, T),
            Admission::Wait { seconds: 30 }
        );
        // Three more addresses push the account over its limit.
        for n in 1..=3 {
            let a = ip(&format!("192.0.2.{n}"));
            l.admit(Some(&carol()), a, T);
            l.admit(Some(&carol()), a, T);
        }
        assert_eq!(l.delay(&carol(), T), Duration::from_secs(2));
        match l.admit(Some(&carol()), owner, T) {
            Admission::Go { delay } => assert_eq!(delay, Duration::from_secs(2)),
            other => panic!("the owner is refused: {other:?}"),
        }
        l.succeeded(&carol(), owner, T);
        assert!(matches!(
            l.admit(Some(&carol()), owner, T),
            Admission::Go { .. }
        ));
    }

    #[test]
    fn drained_counters_are_forgotten() {
        let l = SignInLimits::new(2, 6);
        l.admit(Some(&carol()), ip("203.0.113.7"), T);
        l.prune(T + 60);
        assert!(l.counts.lock().unwrap().is_empty());
    }
}
