//! Which downstream request an upstream's request belongs to: the requests
//! in flight on a connection, and why an origin may be unknown (see the
//! rules in [`super`]).

use rmcp::model::RequestId;

use super::Downstream;

/// A downstream request in flight on an upstream connection.
pub(super) struct InFlight {
    pub(super) ticket: u64,
    /// The downstream session that made it; `None` for a request no client
    /// can be asked about (a REST tool call).
    pub(super) downstream: Option<Downstream>,
    /// The id rmcp gave the request it sent upstream, once sent.
    pub(super) upstream: Option<RequestId>,
}

/// Why a request of the upstream cannot be relayed.
#[derive(Debug, PartialEq, Eq)]
pub enum NoOrigin {
    /// No downstream request is in flight on the connection.
    Idle,
    /// Requests of several sessions, or of mcpgate itself, are in flight.
    Ambiguous,
    /// The request that caused it came from no client that can be asked
    /// (a REST call).
    NoClient,
}

impl NoOrigin {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            NoOrigin::Idle => "no client request is in flight on this upstream connection",
            NoOrigin::Ambiguous => {
                "requests of several clients are in flight on this shared upstream connection, \
                 and MCP does not say which one a request belongs to (configure the upstream \
                 with isolation = \"per_user\" if it asks its clients)"
            }
            NoOrigin::NoClient => "the request that caused it came from no MCP client session",
        }
    }

    pub(super) fn event(&self) -> &'static str {
        match self {
            NoOrigin::Ambiguous => "gateway.relay_origin_ambiguous",
            NoOrigin::Idle | NoOrigin::NoClient => "gateway.relay_no_origin",
        }
    }
}
