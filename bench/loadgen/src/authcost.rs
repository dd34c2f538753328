//! `auth-cost`: what the bearer gate of mcpgate's MCP routes costs per
//! request, measured in process with no HTTP around it. It builds the real
//! server state on the benchmark's SQLite database and calls
//! `AuthServer::authenticate_bearer`, the function the gate middleware
//! (`src/mcp/gate.rs`) runs for every request:
//!
//! - `cached`: the same token again and again, the path every request takes
//!   once its token has been looked up (tokens are trusted for 10 s);
//! - `lookup`: the first check of each token, which reads the token and its
//!   user from SQLite.

use std::time::Instant;

use anyhow::{Context, bail};
use mcpgate::app::App;
use mcpgate::config::Settings;
use serde_json::{Value, json};

use crate::oauth::read_tokens;

#[derive(clap::Args)]
pub struct AuthCostArgs {
    /// The database the tokens were issued in, e.g. sqlite:///tmp/x/mcpgate.db
    #[arg(long)]
    database_url: String,
    /// The tokens file written by `setup`.
    #[arg(long)]
    tokens: std::path::PathBuf,
    /// The public URL of the server that issued them (its MCP endpoint is the
    /// tokens' resource).
    #[arg(long)]
    public_url: String,
    /// Checks of the cached path.
    #[arg(long, default_value_t = 200_000)]
    iterations: u64,
}

pub async fn run(a: AuthCostArgs) -> anyhow::Result<Value> {
    let tokens = read_tokens(&a.tokens)?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        public_url: Some(a.public_url.clone()),
        database_url: a.database_url.clone(),
        ..Settings::default()
    };
    let app = App::build(settings).await?;
    let auth = app.auth();
    let headers: Vec<String> = tokens
        .access_tokens
        .iter()
        .map(|t| format!("Bearer {t}"))
        .collect();
    if headers.is_empty() {
        bail!("no access tokens in {}", a.tokens.display());
    }

    // First check of each token: a store lookup.
    let t = Instant::now();
    for h in &headers {
        auth.authenticate_bearer(Some(h), None)
            .await
            .map_err(|e| anyhow::anyhow!("token refused: {e}"))?;
    }
    let lookup_ns = t.elapsed().as_nanos() as f64 / headers.len() as f64;

    let header = headers.first().context("no token")?;
    let t = Instant::now();
    for _ in 0..a.iterations {
        let caller = auth
            .authenticate_bearer(Some(header), None)
            .await
            .map_err(|e| anyhow::anyhow!("token refused: {e}"))?;
        std::hint::black_box(caller);
    }
    let cached_ns = t.elapsed().as_nanos() as f64 / a.iterations as f64;
    Ok(json!({
        "cached_us": cached_ns / 1000.0,
        "lookup_us": lookup_ns / 1000.0,
        "iterations": a.iterations,
        "lookups": headers.len(),
    }))
}
