//! Integration tests of mcpgate, in one test binary (one link step).
//! Each module is one area; `helpers` starts the real server on port 0
//! with its own database.

mod discovery;
mod flow;
mod helpers;
mod store_contract;
