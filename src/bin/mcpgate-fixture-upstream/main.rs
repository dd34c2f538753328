//! `mcpgate-fixture-upstream`: a small MCP server on stdio that exercises
//! every part of the protocol a gateway has to carry.
//!
//! mcpgate's tests start it as an upstream, and it doubles as a demo upstream
//! to try the gateway with (`cargo build` puts it in `target/debug/`):
//!
//! ```toml
//! [[upstream]]
//! name = "fixture"
//! command = "target/debug/mcpgate-fixture-upstream"
//! isolation = "per_user"   # whoami_env then shows each user's own process
//! ```
//!
//! Tools: `echo`, `add`, `whoami_env`, `slow` (progress and cancellation),
//! `crash`, `hang`, `sample` (sampling/createMessage), `elicit`
//! (elicitation/create), `roots` (roots/list), `log` (notifications/message)
//! and `change_tools` (notifications/tools/list_changed).
//! Resources: `fixture://static` and the template `fixture://item/{id}`, with
//! subscriptions. Prompt: `greet`, with completion of its `name` argument.
//!
//! stdout carries the protocol; logs go to stderr (filter with `RUST_LOG`).
//!
//! Environment:
//! - `MCPGATE_USER_NAME`, `MCPGATE_USER_ID`: the user the gateway runs this
//!   process for; reported by `whoami_env`.
//! - `FIXTURE_CANCEL_LOG`: a file to which `slow` (and `slow_compute` of
//!   `--conformance`) appends the line `cancelled`
//!   whenever a call of it is cancelled.
//!
//! Arguments: `--fail-start` makes the process exit with code 2 at once, as an
//! upstream that cannot start. `--conformance` serves, instead of all the
//! above, the fixtures of the official MCP conformance suite (`test_*` tools
//! and prompts, `test://` resources; see `conformance/`).

// Sampling, roots, logging and resources/subscribe are deprecated by SEP-2577
// (protocol 2026-07-28) in rmcp 3.x, but they are what sessions opened with
// `initialize` speak, and the gateway has to carry them.
#![allow(deprecated)]

mod conformance;
mod server;
mod tools;

use rmcp::{ServerHandler, ServiceExt};

use crate::conformance::Conformance;
use crate::server::{Fixture, SERVER_NAME};

/// Serves `server` on stdin/stdout until the session ends; returns the exit code.
async fn serve(server: impl ServerHandler) -> i32 {
    let service = match server
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await
    {
        Ok(service) => service,
        Err(e) => {
            tracing::error!(error = %e, "the MCP session did not start");
            return 1;
        }
    };
    match service.waiting().await {
        Ok(reason) => {
            tracing::info!(?reason, "the MCP session ended");
            0
        }
        Err(e) => {
            tracing::error!(error = %e, "the MCP session failed");
            1
        }
    }
}

fn main() {
    let conformance = std::env::args().skip(1).any(|a| a == "--conformance");
    if std::env::args().skip(1).any(|a| a == "--fail-start") {
        eprintln!("{SERVER_NAME}: --fail-start given, exiting with code 2");
        std::process::exit(2);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,mcpgate_fixture_upstream=info")
            }),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{SERVER_NAME}: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        if conformance {
            serve(Conformance::new()).await
        } else {
            serve(Fixture::new()).await
        }
    });
    // Exit right away: tokio's stdin reader is a blocking thread the runtime
    // would otherwise wait for on shutdown.
    std::process::exit(code);
}
