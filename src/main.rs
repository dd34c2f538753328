//! The `mcpgate` binary: parse the command line, set up logging, run.

use clap::Parser;
use mcpgate::cli::{Cli, run};
use mcpgate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// jemalloc: the request paths allocate and free many small objects (JSON
/// values, channel blocks, futures); see docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json = cli
        .load_settings()
        .map(|s| s.log_format == LogFormat::Json)
        .unwrap_or(false);
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
