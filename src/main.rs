//! The `mcpgate` binary: parse the command line, set up logging, run.

use clap::Parser;
use mcpgate::cli::{Cli, run};
use mcpgate::config::LogFormat;

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
    mcpgate::logging::init(json);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
