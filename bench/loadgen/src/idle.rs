//! `idle`: opens idle sessions on a server and reports its resident memory
//! (RSS, from `/proc/<pid>/status`) before and at each requested count.
//!
//! - `streamable`: a Streamable HTTP session (`initialize`, then
//!   `notifications/initialized`) with its GET event stream held open;
//! - `sse`: a legacy HTTP+SSE stream (`GET /sse`), held open once its
//!   `endpoint` event has arrived.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Response;
use serde_json::{Value, json};

use crate::proc::rss_bytes;

const VERSION: &str = "2025-06-18";

#[derive(clap::Args)]
pub struct IdleArgs {
    /// mcpgate's base URL.
    #[arg(long)]
    base: String,
    /// An access token.
    #[arg(long)]
    token: String,
    /// `streamable` or `sse`.
    #[arg(long)]
    kind: String,
    /// The server's process id (whose RSS is read).
    #[arg(long)]
    pid: u32,
    /// Session counts at which RSS is measured, ascending, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1000usize, 10000])]
    counts: Vec<usize>,
    /// Sessions opened at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

async fn open_streamable(
    http: &reqwest::Client,
    base: &str,
    auth: &str,
) -> anyhow::Result<Response> {
    let url = format!("{base}/v1/ai/mcp");
    let init = http
        .post(&url)
        .header("authorization", auth)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "mcpgate-bench", "version": "0"}}}),
        )
        .send()
        .await?;
    if !init.status().is_success() {
        bail!("initialize answered {}", init.status());
    }
    let sid = init
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .context("no Mcp-Session-Id")?
        .to_string();
    let body = init.bytes().await?;
    if !String::from_utf8_lossy(&body).contains("\"result\"") {
        bail!("initialize gave no result");
    }
    let done = http
        .post(&url)
        .header("authorization", auth)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", VERSION)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await?;
    if !done.status().is_success() {
        bail!("notifications/initialized answered {}", done.status());
    }
    let stream = http
        .get(&url)
        .header("authorization", auth)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await?;
    if !stream.status().is_success() {
        bail!("the GET stream answered {}", stream.status());
    }
    Ok(stream)
}

async fn open_sse(http: &reqwest::Client, base: &str, auth: &str) -> anyhow::Result<Response> {
    let mut resp = http
        .get(format!("{base}/sse"))
        .header("authorization", auth)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("GET /sse answered {}", resp.status());
    }
    let mut seen = String::new();
    while !seen.contains("event: endpoint") && !seen.contains("event:endpoint") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .context("no endpoint event within 10 s")??
            .context("the stream ended before its endpoint event")?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(resp)
}

pub async fn run(a: IdleArgs) -> anyhow::Result<Value> {
    let base = a.base.trim_end_matches('/').to_string();
    let auth = format!("Bearer {}", a.token);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    if a.kind != "streamable" && a.kind != "sse" {
        bail!("--kind is streamable or sse");
    }
    // Warm up: one session opened and closed, so lazily built state (the
    // token cache, rmcp's service) does not count as per-session memory.
    drop(match a.kind.as_str() {
        "sse" => open_sse(&http, &base, &auth).await?,
        _ => open_streamable(&http, &base, &auth).await?,
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_bytes(a.pid)?;
    let mut held: Vec<Response> = Vec::new();
    let mut points = Vec::new();
    for &count in &a.counts {
        let missing = count.saturating_sub(held.len());
        let opened: Vec<anyhow::Result<Response>> = futures::stream::iter(0..missing)
            .map(|_| {
                let http = http.clone();
                let base = base.clone();
                let auth = auth.clone();
                let kind = a.kind.clone();
                async move {
                    match kind.as_str() {
                        "sse" => open_sse(&http, &base, &auth).await,
                        _ => open_streamable(&http, &base, &auth).await,
                    }
                }
            })
            .buffer_unordered(a.concurrency)
            .collect()
            .await;
        for r in opened {
            held.push(r.with_context(|| format!("opening session {}", held.len() + 1))?);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_bytes(a.pid)?;
        points.push(json!({
            "sessions": count,
            "rss_bytes": rss,
            "bytes_per_session": (rss.saturating_sub(baseline)) as f64 / count as f64,
        }));
    }
    drop(held);
    Ok(json!({"kind": a.kind, "baseline_rss_bytes": baseline, "points": points}))
}
