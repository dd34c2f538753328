//! mcpgate: the OAuth 2.1 front door for MCP servers.
//!
//! The protocol rules live in the `mcpgate-core` crate (no HTTP, no
//! database, time passed in). This crate wires them to storage, HTTP,
//! pages and the command line.
//!
//! # Layout
//! - [`config`]: settings from defaults, `mcpgate.toml`, `MCPGATE_*` and
//!   flags; the start-up checks; the derived policy and URLs.
//! - [`clock`]: the clock, read once per request (a manual one for tests).
//! - [`store`]: the `Store` trait and its SQLite implementation.
//! - [`auth`]: the authorization server's service layer (clock + store +
//!   rules): registration, the authorize flow, tokens, revocation, users.
//! - [`federation`]: sign-in through upstream identity providers (OpenID
//!   Connect, plain OAuth 2.0) at `/oauth/callback`.
//! - [`mcp`]: the protected MCP endpoint: bearer gate, Streamable HTTP
//!   (rmcp), the legacy SSE transport, REST tool calls, the manifest.
//! - [`gateway`]: upstream MCP servers (stdio or HTTP, shared or per user)
//!   merged behind the endpoint, with relays in both directions.
//! - [`web`]: the sign-in, consent and error pages.
//! - [`http`]: routes, thin handlers, the one error-to-response mapping.
//! - [`logging`]: the subscriber, and escaping so that a log line cannot be
//!   forged.
//! - [`admin`]: the operator's actions, shared by the admin console and the CLI.
//! - [`app`]: `App::build` (binds, opens the store) and `run_until_stopped`.
//! - [`reload`]: live configuration reload (`SIGHUP`, `mcpgate reload`):
//!   what changes live, what needs a restart; [`live`]: the swappable
//!   values it replaces.
//! - [`cli`]: the `mcpgate` commands.
//! - [`cluster`]: several instances on one database: the event bus
//!   (PostgreSQL `LISTEN`/`NOTIFY`) and shared MCP session state.
//! - [`doctor`]: `mcpgate doctor`, a client's-eye check of a running deployment.
//! - [`outbound`]: the one builder of outbound HTTP clients (redirects,
//!   timeouts, response sizes).
//! - [`audit`]: the audit log: security-relevant events, batched into the
//!   store and/or a JSON-lines stream, never waited for.
//! - [`telemetry`]: Prometheus metrics (`/metrics`) and OpenTelemetry
//!   traces with W3C Trace Context propagation.
//! - [`tasks`]: the tasks extension (SEP-2663): tool calls mcpgate runs in
//!   the background, their state in the store.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod doctor;
pub mod federation;
pub mod gateway;
pub mod http;
pub mod live;
pub mod logging;
pub mod mcp;
pub mod outbound;
pub mod policy;
pub mod reload;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod upstream_oauth;
pub mod web;
