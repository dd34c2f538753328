//! `refresh`: `refresh_token` grants at the token endpoint, with rotation
//! (RFC 6749 §6; OAuth 2.1 §4.3.1): each connection owns one grant and always
//! presents the refresh token the previous answer gave it, so every request
//! is a real rotation, never a grace-window replay.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::oauth::read_tokens;
use crate::stats::percentile;

#[derive(clap::Args)]
pub struct RefreshArgs {
    /// The tokens file written by `setup` (rewritten with the rotated tokens).
    #[arg(long)]
    tokens: std::path::PathBuf,
    /// Concurrent connections, one grant each (at most the file's grants).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

struct Worker {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    refresh: String,
}

pub async fn run(a: RefreshArgs) -> anyhow::Result<Value> {
    let mut tokens = read_tokens(&a.tokens)?;
    let n = a.connections.min(tokens.refresh_tokens.len());
    if n == 0 {
        bail!("no refresh tokens in {}", a.tokens.display());
    }
    let url = format!("{}/v1/oauth/token", tokens.base);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = http.clone();
        let url = url.clone();
        let client_id = tokens.client_id.clone();
        let mut w = Worker {
            latencies_us: Vec::new(),
            errors: 0,
            first_error: None,
            refresh: tokens.refresh_tokens[i].clone(),
        };
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", w.refresh.as_str()),
                        ("client_id", client_id.as_str()),
                    ])
                    .send()
                    .await;
                let outcome: anyhow::Result<String> = async {
                    let resp = resp?;
                    let status = resp.status();
                    let body: Value = resp.json().await?;
                    if !status.is_success() {
                        bail!("{status}: {body}");
                    }
                    Ok(body["refresh_token"]
                        .as_str()
                        .context("no refresh_token in the answer")?
                        .to_string())
                }
                .await;
                match outcome {
                    Ok(next) => {
                        w.latencies_us.push(t.elapsed().as_micros() as u64);
                        w.refresh = next;
                    }
                    Err(e) => {
                        w.errors += 1;
                        w.first_error.get_or_insert_with(|| e.to_string());
                        // A broken chain cannot go on: stop this connection.
                        break;
                    }
                }
            }
            w
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for (i, t) in tasks.into_iter().enumerate() {
        let w = t.await?;
        latencies.extend(w.latencies_us);
        errors += w.errors;
        if first_error.is_none() {
            first_error = w.first_error;
        }
        tokens.refresh_tokens[i] = w.refresh;
    }
    let elapsed = started.elapsed().as_secs_f64();
    std::fs::write(&a.tokens, serde_json::to_vec_pretty(&tokens)?)?;
    latencies.sort_unstable();
    let ok = latencies.len();
    if errors > 0 || ok == 0 {
        bail!(
            "{ok} grants, {errors} errors; first: {}",
            first_error.unwrap_or_else(|| "none".into())
        );
    }
    Ok(json!({
        "requests": ok,
        "errors": errors,
        "seconds": elapsed,
        "rps": ok as f64 / elapsed,
        "p50_us": percentile(&latencies, 50.0),
        "p99_us": percentile(&latencies, 99.0),
    }))
}
