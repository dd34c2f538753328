//! Integration tests of mcpgate, in one test binary (one link step).
//!
//! Each module is one area; helpers shared by several modules live here.

mod store_contract;
