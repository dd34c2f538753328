//! `mcpgate-bench-loadgen`: the load tool of bench/run for what `wrk` cannot
//! do, because each request depends on the previous answer or a connection
//! must stay open. Every subcommand prints one JSON object on stdout.
//!
//! - `setup`: a real OAuth flow against a running mcpgate (register a public
//!   client, sign in, consent, exchange codes with PKCE), repeated to get
//!   several grants; writes their access and refresh tokens to a file.
//! - `refresh`: `refresh_token` grants with rotation, one chain per
//!   connection, for a given time; writes the rotated tokens back.
//! - `idle`: opens idle sessions (Streamable HTTP GET streams or legacy SSE
//!   streams) and reports the server's RSS at given counts.
//! - `startup`: starts a server command and times its first served request;
//!   reports its idle RSS afterwards.
//! - `auth-cost`: the bearer check of mcpgate's MCP routes, in process, in a
//!   loop (the cached path every request takes, and the store lookup).
//!
//! With `MCPGATE_BENCH_CA` set (`client`), `setup` and `idle` speak HTTPS
//! to a server whose certificate that file's authority signed.
//!
//! Non-2xx answers and failed checks are errors: the tool exits non-zero.

mod authcost;
mod client;
mod idle;
mod oauth;
mod proc;
mod refresh;
mod startup;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mcpgate-bench-loadgen")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the OAuth flow and write tokens to a file.
    Setup(oauth::SetupArgs),
    /// Refresh-token grants with rotation for a given time.
    Refresh(refresh::RefreshArgs),
    /// Open idle sessions and report the server's RSS.
    Idle(idle::IdleArgs),
    /// Time a server's start-up to its first served request.
    Startup(startup::StartupArgs),
    /// The cost of the bearer check, in process.
    AuthCost(authcost::AuthCostArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => oauth::setup(a).await,
        Command::Refresh(a) => refresh::run(a).await,
        Command::Idle(a) => idle::run(a).await,
        Command::Startup(a) => startup::run(a).await,
        Command::AuthCost(a) => authcost::run(a).await,
    };
    match result {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
