//! mcpgate: the OAuth 2.1 front door for MCP servers.
//!
//! # Layout
//! - `store`: the `Store` trait and its SQLite implementation.
pub mod store;
