//! Which log messages of an upstream reach a downstream request.
//!
//! In the session revisions (up to 2025-11-25) a client sets its level with
//! `logging/setLevel`, which the gateway passes to the upstreams; what
//! they send is relayed. In 2026-07-28 there is no session: a request
//! names its level in `_meta` (`io.modelcontextprotocol/logLevel`), and a
//! request that names none gets no `notifications/message` at all
//! (SEP-2575). An upstream on an older revision knows nothing of that, so
//! the gateway filters.

use rmcp::model::LoggingLevel;

/// The log messages a downstream request accepts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LogFilter {
    /// A session-era request: whatever the upstream sends.
    #[default]
    Session,
    /// A 2026-07-28 request without a level: none.
    Off,
    /// A 2026-07-28 request with a level: that severity and above.
    AtLeast(LoggingLevel),
}

impl LogFilter {
    /// The filter of a request: `per_request` for a 2026-07-28 one, with
    /// the level of its `_meta`.
    pub fn of_request(per_request: bool, level: Option<LoggingLevel>) -> Self {
        match (per_request, level) {
            (false, _) => Self::Session,
            (true, None) => Self::Off,
            (true, Some(l)) => Self::AtLeast(l),
        }
    }

    pub fn allows(&self, level: LoggingLevel) -> bool {
        match self {
            Self::Session => true,
            Self::Off => false,
            Self::AtLeast(min) => severity(level) >= severity(*min),
        }
    }
}

/// RFC 5424 severities, least severe first.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_request_call_without_a_level_gets_no_log_messages() {
        let f = LogFilter::of_request(true, None);
        assert!(!f.allows(LoggingLevel::Emergency));
    }

    #[test]
    fn a_level_lets_through_that_severity_and_above() {
        let f = LogFilter::of_request(true, Some(LoggingLevel::Warning));
        assert!(!f.allows(LoggingLevel::Info));
        assert!(f.allows(LoggingLevel::Warning));
        assert!(f.allows(LoggingLevel::Error));
    }

    #[test]
    fn a_session_request_gets_what_the_upstream_sends() {
        let f = LogFilter::of_request(false, Some(LoggingLevel::Error));
        assert!(f.allows(LoggingLevel::Debug));
    }
}
