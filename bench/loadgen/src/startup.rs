//! `startup`: starts a server (the command after `--`), polls a URL every
//! millisecond until it answers 2xx, and reports the time from spawning the
//! process to that first served request; then, after a second of idleness,
//! the server's RSS. The server is killed at the end.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::proc::rss_bytes;

#[derive(clap::Args)]
pub struct StartupArgs {
    /// The URL that must answer 2xx, e.g. http://127.0.0.1:3400/healthz
    #[arg(long)]
    url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// The server command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub async fn run(a: StartupArgs) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&a.command[0])
        .args(&a.command[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", a.command[0]))?;
    let pid = child.id().context("the server exited at once")?;
    let deadline = started + Duration::from_secs_f64(a.timeout);
    let first = loop {
        if let Ok(r) = http.get(&a.url).send().await
            && r.status().is_success()
        {
            break started.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited ({status}) before answering");
        }
        if Instant::now() > deadline {
            bail!("no answer from {} within {} s", a.url, a.timeout);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_bytes(pid)?;
    child.kill().await?;
    Ok(json!({"startup_ms": first.as_secs_f64() * 1000.0, "idle_rss_bytes": rss}))
}
