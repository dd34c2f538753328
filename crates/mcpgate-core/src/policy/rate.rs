//! Rate limits of `[[policy]]` rules: a token bucket per (caller, tool),
//! written as the generic cell rate algorithm (one timestamp per bucket:
//! the "theoretical arrival time"), with the time passed in.
//!
//! A rate of `n` calls per period refills one call every `period / n`; a
//! full bucket holds `burst` calls. Written `rate = "10/min"` (units `s`,
//! `sec`, `second`, `min`, `minute`, `h`, `hour`), or `rate_per_minute =
//! 10`; `burst` defaults to `n`.

use std::fmt;

/// The JSON-RPC error code of a tool call over its rate limit, with
/// `data.retryAfter` (seconds). In the implementation-defined server range
/// (JSON-RPC 2.0 §5.1: -32000 to -32099), clear of the codes MCP uses
/// (-32002 resource not found, -32021 tasks, -32042 URL elicitation).
pub const RATE_LIMITED_CODE: i32 = -32029;

/// How fast calls are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Milliseconds between two refilled calls (at least 1).
    interval_ms: u64,
    /// Calls a full bucket holds (at least 1).
    burst: u32,
}

impl Rate {
    /// `count` calls per `period_ms`, holding at most `burst` at once.
    pub fn new(count: u32, period_ms: u64, burst: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("a rate of zero calls admits nothing; use effect = \"deny\"".into());
        }
        if burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(Self {
            interval_ms: (period_ms / u64::from(count)).max(1),
            burst,
        })
    }

    /// Parses `"N/unit"`; `burst` defaults to `N`.
    pub fn parse(text: &str, burst: Option<u32>) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?} is not a rate: write calls per unit, e.g. \"10/min\" (units: s, min, h)"
            )
        };
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period_ms = match unit.trim() {
            "s" | "sec" | "second" => 1_000,
            "m" | "min" | "minute" => 60_000,
            "h" | "hour" => 3_600_000,
            _ => return Err(bad()),
        };
        Self::new(count, period_ms, burst.unwrap_or(count))
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// How far ahead of `now` the arrival time may run: `burst - 1` calls.
    fn tolerance(&self) -> i64 {
        i64::try_from(self.interval_ms.saturating_mul(u64::from(self.burst - 1)))
            .unwrap_or(i64::MAX)
    }

    fn interval(&self) -> i64 {
        i64::try_from(self.interval_ms).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "one call per {} ms, burst {}",
            self.interval_ms, self.burst
        )
    }
}

/// One caller's bucket for one tool. A new bucket is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    /// When the bucket will be full again (ms); in the past: full.
    tat_ms: i64,
}

impl Bucket {
    /// Takes one call at `now_ms`, or says how many milliseconds until one
    /// is available.
    pub fn take(&mut self, rate: Rate, now_ms: i64) -> Result<(), u64> {
        let tat = self.tat_ms.max(now_ms);
        let ahead = tat.saturating_sub(now_ms);
        if ahead > rate.tolerance() {
            let wait = ahead - rate.tolerance();
            return Err(u64::try_from(wait).unwrap_or(u64::MAX));
        }
        self.tat_ms = tat.saturating_add(rate.interval());
        Ok(())
    }

    /// Whether the bucket is full at `now_ms` (it can be forgotten: a new
    /// bucket would behave the same).
    pub fn is_full(&self, now_ms: i64) -> bool {
        self.tat_ms <= now_ms
    }

    /// When the bucket is full again (ms): the earliest is the first to
    /// forget when memory is short.
    pub fn full_at(&self) -> i64 {
        self.tat_ms
    }
}

/// Whole seconds to wait for `ms` milliseconds, rounded up (at least 1):
/// the `Retry-After` header and `data.retryAfter`.
pub fn retry_after_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        let r = Rate::parse("10/min", None).unwrap();
        assert_eq!((r.interval_ms(), r.burst()), (6_000, 10));
        let r = Rate::parse("2/s", Some(5)).unwrap();
        assert_eq!((r.interval_ms(), r.burst()), (500, 5));
        assert_eq!(
            Rate::parse("1/hour", None).unwrap().interval_ms(),
            3_600_000
        );
        for bad in ["10", "ten/min", "10/fortnight", "0/min", "/min", "-1/s"] {
            assert!(Rate::parse(bad, None).is_err(), "{bad}");
        }
        assert!(Rate::parse("1/s", Some(0)).is_err());
    }

    #[test]
    fn a_burst_then_refusal_then_recovery() {
        let rate = Rate::parse("6/min", Some(3)).unwrap(); // one per 10 s
        let mut b = Bucket::default();
        let t0 = 1_000_000;
        for _ in 0..3 {
            b.take(rate, t0).unwrap();
        }
        assert_eq!(b.take(rate, t0), Err(10_000));
        assert_eq!(b.take(rate, t0 + 4_000), Err(6_000));
        b.take(rate, t0 + 10_000).unwrap();
        assert!(b.take(rate, t0 + 10_000).is_err());
        assert!(!b.is_full(t0 + 10_000));
        assert!(b.is_full(t0 + 40_000));
        for _ in 0..3 {
            b.take(rate, t0 + 40_000).unwrap();
        }
        assert!(b.take(rate, t0 + 40_000).is_err());
    }

    #[test]
    fn refusals_do_not_consume() {
        let rate = Rate::parse("1/s", Some(1)).unwrap();
        let mut b = Bucket::default();
        b.take(rate, 0).unwrap();
        for _ in 0..100 {
            assert!(b.take(rate, 10).is_err());
        }
        b.take(rate, 1_000).unwrap();
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_000), 1);
        assert_eq!(retry_after_secs(1_001), 2);
        assert_eq!(retry_after_secs(0), 1);
    }
}
