//! Upper (and lower) bounds of every duration setting, checked once at
//! start-up by [`Settings::resolve`](super::Settings::resolve).
//!
//! Lifetimes are added to the current time; an unbounded one (`1000000
//! years`, or `u64::MAX` seconds) used to overflow and issue tokens that had
//! already expired. Lifetimes are capped at ten years, the authorization
//! code at ten minutes (RFC 6749 §4.1.2: "a maximum authorization code
//! lifetime of 10 minutes is RECOMMENDED"), and waits at one day. The
//! arithmetic that adds a duration to a time saturates as well, so no
//! overflow path remains even without these checks.

use std::time::Duration;

use super::{ConfigError, Settings};

const DAY: u64 = 24 * 3600;

/// humantime's year (365.25 days), so that `10years` is exactly the maximum.
const YEAR: u64 = 31_557_600;

/// Longest lifetime of anything issued or remembered (tokens, sessions).
pub const MAX_LIFETIME: Duration = Duration::from_secs(10 * YEAR);
/// Longest authorization code lifetime (RFC 6749 §4.1.2).
pub const MAX_AUTH_CODE_TTL: Duration = Duration::from_secs(600);
/// Longest refresh grace period: a repeat of a refresh comes within seconds.
pub const MAX_REFRESH_GRACE: Duration = Duration::from_secs(DAY);
/// Longest wait for one upstream request or an upstream's start.
pub const MAX_WAIT: Duration = Duration::from_secs(DAY);
/// Shortest interval of event streams' keep-alive comments.
pub const MIN_KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Longest lifetime of an identity JWT sent to an upstream.
pub const MAX_IDENTITY_JWT_TTL: Duration = Duration::from_secs(DAY);

/// Whether zero is a meaningful value of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// Checks one duration setting; the error names the setting, its value and
/// the bound it broke.
pub fn check(name: &str, value: Duration, max: Duration, zero: Zero) -> Result<(), String> {
    if zero == Zero::Refused && value.is_zero() {
        return Err(format!("{name} must be longer than zero"));
    }
    if value > max {
        return Err(format!(
            "{name} is {} ({} s); the maximum is {} ({} s)",
            describe(value),
            value.as_secs(),
            describe(max),
            max.as_secs()
        ));
    }
    Ok(())
}

/// A duration for a message, in whole seconds as humantime writes it.
fn describe(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// The duration settings of the server itself (the upstreams' are checked
/// by `crate::gateway::config::validate`).
pub fn check_settings(s: &Settings) -> Result<(), ConfigError> {
    let checks = [
        (
            "auth_code_ttl",
            s.auth_code_ttl,
            MAX_AUTH_CODE_TTL,
            Zero::Refused,
        ),
        (
            "access_token_ttl",
            s.access_token_ttl,
            MAX_LIFETIME,
            Zero::Refused,
        ),
        (
            "refresh_token_ttl",
            s.refresh_token_ttl,
            MAX_LIFETIME,
            Zero::Refused,
        ),
        // Zero turns the grace period off.
        (
            "refresh_grace_period",
            s.refresh_grace_period,
            MAX_REFRESH_GRACE,
            Zero::Allowed,
        ),
        (
            "login_session_ttl",
            s.login_session_ttl,
            MAX_LIFETIME,
            Zero::Refused,
        ),
        (
            "unused_client_ttl",
            s.unused_client_ttl,
            MAX_LIFETIME,
            Zero::Refused,
        ),
        (
            "mcp_session_idle_timeout",
            s.mcp_session_idle_timeout,
            MAX_LIFETIME,
            Zero::Refused,
        ),
        (
            "event_stream_keep_alive",
            s.event_stream_keep_alive,
            MAX_WAIT,
            Zero::Refused,
        ),
        (
            "header_read_timeout",
            s.header_read_timeout,
            MAX_WAIT,
            Zero::Refused,
        ),
        (
            "body_read_timeout",
            s.body_read_timeout,
            MAX_WAIT,
            Zero::Refused,
        ),
        (
            "keep_alive_timeout",
            s.keep_alive_timeout,
            MAX_WAIT,
            Zero::Refused,
        ),
    ];
    for (name, value, max, zero) in checks {
        check(name, value, max, zero).map_err(ConfigError)?;
    }
    if s.event_stream_keep_alive < MIN_KEEP_ALIVE {
        return Err(ConfigError(format!(
            "event_stream_keep_alive is {:?}; the minimum is 1s (a keep-alive more often \
             than that only costs every open stream's connection)",
            s.event_stream_keep_alive
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> std::net::SocketAddr {
        "127.0.0.1:3333".parse().unwrap()
    }

    fn refused(s: Settings) -> String {
        s.resolve(loopback()).unwrap_err().0
    }

    #[test]
    fn the_defaults_are_within_every_bound() {
        check_settings(&Settings::default()).unwrap();
    }

    #[test]
    fn each_lifetime_is_at_most_ten_years_and_the_error_names_setting_value_and_maximum() {
        type Set = fn(&mut Settings, Duration);
        let setters: [(&str, Set); 5] = [
            ("access_token_ttl", |s, d| s.access_token_ttl = d),
            ("refresh_token_ttl", |s, d| s.refresh_token_ttl = d),
            ("login_session_ttl", |s, d| s.login_session_ttl = d),
            ("unused_client_ttl", |s, d| s.unused_client_ttl = d),
            ("mcp_session_idle_timeout", |s, d| {
                s.mcp_session_idle_timeout = d
            }),
        ];
        for (name, set) in setters {
            let mut s = Settings::default();
            set(&mut s, MAX_LIFETIME);
            s.resolve(loopback())
                .unwrap_or_else(|e| panic!("{name}: {e}"));

            set(&mut s, MAX_LIFETIME + Duration::from_secs(1));
            let e = refused(s.clone());
            assert_eq!(
                e,
                format!("{name} is 10years 1s (315576001 s); the maximum is 10years (315576000 s)"),
            );

            set(&mut s, Duration::from_secs(1_000_000 * YEAR));
            let e = refused(s.clone());
            assert!(e.starts_with(&format!("{name} is ")), "{e}");
            assert!(e.contains("the maximum is 10years"), "{e}");

            set(&mut s, Duration::from_secs(u64::MAX));
            let e = refused(s.clone());
            assert!(e.contains(&format!("({} s)", u64::MAX)), "{e}");

            set(&mut s, Duration::ZERO);
            assert_eq!(refused(s), format!("{name} must be longer than zero"));
        }
    }

    #[test]
    fn the_authorization_code_lives_one_second_to_ten_minutes() {
        let s = Settings {
            auth_code_ttl: Duration::from_secs(601),
            ..Settings::default()
        };
        assert_eq!(
            refused(s),
            "auth_code_ttl is 10m 1s (601 s); the maximum is 10m (600 s)"
        );
        let s = Settings {
            auth_code_ttl: Duration::ZERO,
            ..Settings::default()
        };
        assert_eq!(refused(s), "auth_code_ttl must be longer than zero");
        let s = Settings {
            auth_code_ttl: MAX_AUTH_CODE_TTL,
            ..Settings::default()
        };
        s.resolve(loopback()).unwrap();
    }

    #[test]
    fn the_refresh_grace_period_may_be_zero_and_is_at_most_a_day() {
        let s = Settings {
            refresh_grace_period: Duration::ZERO,
            ..Settings::default()
        };
        s.resolve(loopback()).unwrap();
        let s = Settings {
            refresh_grace_period: Duration::from_secs(DAY + 1),
            ..Settings::default()
        };
        assert_eq!(
            refused(s),
            "refresh_grace_period is 1day 1s (86401 s); the maximum is 1day (86400 s)"
        );
    }
}
