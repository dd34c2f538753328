//! Integration tests of mcpgate, in one test binary (one link step).
//! Each module is one area; `helpers` starts the real server on port 0
//! with its own database.

mod authorize;
mod cli;
mod cluster_mcp;
mod cluster_store;
mod cluster_support;
mod curl_example;
mod discovery;
mod doctor;
mod federation_cli;
mod federation_fixture;
mod federation_oauth2;
mod federation_oidc;
mod federation_support;
mod flow;
mod gateway;
mod gateway_identity;
mod gateway_shutdown;
mod gateway_sse_upstream;
mod gateway_support;
mod helpers;
mod mcp_gate;
mod mcp_inline;
mod mcp_rest;
mod mcp_sse;
mod mcp_stateless;
mod mcp_streamable;
mod mcp_support;
mod pg_flow;
mod pg_outage;
mod pg_support;
mod profiles;
mod refresh;
mod register;
mod restart;
mod revoke;
mod security;
mod sqlite_group_commit;
mod store_contract;
mod store_race;
mod token;
