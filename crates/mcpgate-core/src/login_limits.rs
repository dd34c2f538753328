//! Limits on failed sign-ins, with the time passed in (Unix seconds).
//!
//! A [`FailureCount`] is a leaky bucket: each failure adds one, and it
//! drains at the limit's rate, so `N` per minute allows a burst of `N`
//! failures and then one every `60 / N` seconds. The server keeps three
//! kinds of them (`mcpgate::auth::lockout`):
//!
//! - per (account, address) and per address: hard limits. Over them the
//!   sign-in is refused without checking the password, saying how long to
//!   wait ([`FailureCount::retry_after`]).
//! - per account: never a refusal, which would let anyone lock the owner
//!   out (OWASP Authentication Cheat Sheet, "Account Lockout"). Over the
//!   limit every attempt on the account waits first, longer with each
//!   failure beyond it ([`delay_for`]), up to [`MAX_DELAY`]; the right
//!   password from an address that is not limited still signs in.

use std::time::Duration;

/// The longest wait before an attempt on an account over its limit.
pub const MAX_DELAY: Duration = Duration::from_secs(2);
/// The wait after the first failure beyond the account's limit; it doubles
/// with each further one.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);

/// Units of one failure: the bucket drains `per_minute` units a second.
const UNIT: u64 = 60;

/// Failures within a sliding minute, as a leaky bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCount {
    level: u64,
    at: i64,
}

impl FailureCount {
    fn level_at(&self, now: i64, per_minute: u32) -> u64 {
        let elapsed = u64::try_from(now.saturating_sub(self.at)).unwrap_or(0);
        self.level
            .saturating_sub(elapsed.saturating_mul(u64::from(per_minute.max(1))))
    }

    /// Recent failures (the bucket's level, rounded up).
    pub fn failures(&self, now: i64, per_minute: u32) -> u64 {
        self.level_at(now, per_minute).div_ceil(UNIT)
    }

    /// Counts one failure at `now`.
    pub fn record(&mut self, now: i64, per_minute: u32) {
        self.level = self.level_at(now, per_minute).saturating_add(UNIT);
        self.at = now.max(self.at);
    }

    /// Takes back one failure (an attempt counted up front that succeeded).
    pub fn refund(&mut self, now: i64, per_minute: u32) {
        self.level = self.level_at(now, per_minute).saturating_sub(UNIT);
        self.at = now.max(self.at);
    }

    /// `None` if one more attempt fits within `per_minute`; otherwise the
    /// whole seconds until it does (at least 1).
    pub fn retry_after(&self, now: i64, per_minute: u32) -> Option<u64> {
        let rate = u64::from(per_minute.max(1));
        let full = UNIT * (rate - 1);
        let level = self.level_at(now, per_minute);
        (level > full).then(|| (level - full).div_ceil(rate).max(1))
    }

    /// Whether the bucket is empty (and can be forgotten).
    pub fn is_empty(&self, now: i64, per_minute: u32) -> bool {
        self.level_at(now, per_minute) == 0
    }
}

/// The wait before an attempt on an account with `failures` recent failures
/// and a limit of `limit`: none up to the limit, then [`FIRST_DELAY`],
/// doubling with each failure beyond, at most [`MAX_DELAY`].
pub fn delay_for(failures: u64, limit: u32) -> Duration {
    let over = failures.saturating_sub(u64::from(limit));
    if over == 0 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(16);
    FIRST_DELAY.saturating_mul(1u32 << doublings).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: i64 = 1_700_000_000;

    #[test]
    fn n_failures_a_minute_then_one_every_sixty_over_n_seconds() {
        let mut c = FailureCount::default();
        for _ in 0..3 {
            assert_eq!(c.retry_after(T, 3), None);
            c.record(T, 3);
        }
        assert_eq!(c.failures(T, 3), 3);
        assert_eq!(c.retry_after(T, 3), Some(20));
        assert_eq!(c.retry_after(T + 19, 3), Some(1));
        assert_eq!(c.retry_after(T + 20, 3), None);
        c.record(T + 20, 3);
        assert_eq!(c.retry_after(T + 20, 3), Some(20));
        assert!(c.is_empty(T + 80, 3));
        assert_eq!(c.failures(T + 80, 3), 0);
    }

    #[test]
    fn a_limit_of_one_waits_a_minute() {
        let mut c = FailureCount::default();
        c.record(T, 1);
        assert_eq!(c.retry_after(T, 1), Some(60));
        assert_eq!(c.retry_after(T + 60, 1), None);
    }

    #[test]
    fn a_refund_takes_back_one_failure() {
        let mut c = FailureCount::default();
        c.record(T, 2);
        c.record(T, 2);
        c.refund(T, 2);
        assert_eq!(c.failures(T, 2), 1);
        assert_eq!(c.retry_after(T, 2), None);
        c.refund(T, 2);
        c.refund(T, 2);
        assert!(c.is_empty(T, 2));
    }

    #[test]
    fn the_account_delay_grows_from_the_limit_and_is_capped() {
        assert_eq!(delay_for(0, 3), Duration::ZERO);
        assert_eq!(delay_for(3, 3), Duration::ZERO);
        assert_eq!(delay_for(4, 3), Duration::from_millis(250));
        assert_eq!(delay_for(5, 3), Duration::from_millis(500));
        assert_eq!(delay_for(6, 3), Duration::from_secs(1));
        assert_eq!(delay_for(7, 3), MAX_DELAY);
        assert_eq!(delay_for(u64::MAX, 3), MAX_DELAY);
    }

    proptest! {
        #[test]
        fn waiting_as_long_as_told_is_always_enough(
            steps in proptest::collection::vec((0i64..30, any::<bool>()), 0..50),
            per_minute in 1u32..100,
        ) {
            let mut c = FailureCount::default();
            let mut now = T;
            for (dt, fail) in steps {
                now += dt;
                if fail { c.record(now, per_minute); }
                if let Some(wait) = c.retry_after(now, per_minute) {
                    prop_assert!(wait >= 1);
                    let wait = i64::try_from(wait).unwrap();
                    prop_assert_eq!(c.retry_after(now + wait, per_minute), None);
                }
            }
        }
    }
}
