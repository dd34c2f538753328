//! Resource-server rules for the MCP endpoint.
//!
//! - [`bearer`]: reading the bearer token (RFC 6750 §2.1), checking it
//!   (audience per RFC 8707 and the MCP authorization spec, expiry,
//!   revocation, scope), and the `WWW-Authenticate` challenges of
//!   RFC 6750 §3 with the RFC 9728 §5.1 `resource_metadata` parameter.
//! - [`request_state`]: the signed, bound, short-lived `requestState` of a
//!   multi-round-trip request (2026-07-28, SEP-2322).
//! - [`param_headers`]: `Mcp-Param-*` headers checked against the body
//!   (SEP-2243, MCP 2026-07-28).
//! - [`tasks`]: the tasks extension (SEP-2663): dispatch, status, owner, TTL.
//! - [`scopes`]: which scopes a call needs (base, per upstream, per item)
//!   and the scope of a step-up challenge (MCP 2025-11-25).
pub mod bearer;
pub mod param_headers;
#[cfg(test)]
mod proptests;
pub mod request_state;
pub mod scopes;
pub mod tasks;
