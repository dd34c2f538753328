//! `idle`: opens idle sessions on a server and reports its resident memory
//! (RSS, from `/proc/<pid>/status`) before and at each requested count.
//!
//! - `streamable`: a Streamable HTTP session (`initialize`, then
//!   `notifications/initialized`) with its GET event stream held open;
//! - `sse`: a legacy HTTP+SSE session (`GET /sse`), held open once
//!   initialized (`initialize` POSTed to its endpoint and answered on the
//!   stream, then `notifications/initialized`);
//! - `bare`: `GET /mcp` of `mcpgate-bench-ceiling`, a bare axum event stream
//!   that sends nothing but keep-alives: what holding an open event stream
//!   costs any server on the same HTTP stack (hyper, axum, tokio), the floor
//!   under the other two.
//!
//! With `--per-connection N`, the sessions are opened over HTTP/2 (by ALPN
//! over HTTPS; over plain HTTP with prior knowledge, h2c, which axum's
//! server speaks too: how the floor is measured over HTTP/2): each client
//! (one connection) carries N sessions' GET streams, so that more sessions can be held than a process
//! may open sockets (the limit of open files here is 20,000). With
//! `--hold`, the report is printed as soon as the last count is reached and
//! the sessions stay open until standard input closes, so that other load
//! can run beside them.
//!
//! With `--tokens FILE --distinct N`, the sessions are opened with N
//! different access tokens (session n with token n mod N), minted by
//! rotating the refresh tokens of the file `setup` wrote (a rotation leaves
//! the previous access token valid): a deployment's sessions belong to many
//! users and grants, and mcpgate's stream watcher checks each distinct
//! token of its open streams.

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
    /// `streamable`, `sse` or `bare`.
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
    /// Sessions per client connection, over HTTP/2 (by ALPN over HTTPS,
    /// with prior knowledge over plain HTTP; mcpgate allows 200 streams
    /// per connection). Unset: HTTP/1.1, a connection per GET stream.
    #[arg(long)]
    per_connection: Option<usize>,
    /// Print the report at the last count, then hold the sessions open
    /// until standard input closes.
    #[arg(long)]
    hold: bool,
    /// A tokens file written by `setup`, whose refresh tokens mint the
    /// `--distinct` access tokens (`--token` is then unused).
    #[arg(long)]
    tokens: Option<std::path::PathBuf>,
    /// How many different access tokens the sessions use.
    #[arg(long, default_value_t = 1)]
    distinct: usize,
}

/// `n` access tokens from rotating the refresh tokens of `file`, one chain
/// per refresh token, concurrently.
async fn mint(file: &std::path::Path, n: usize) -> anyhow::Result<Vec<String>> {
    let tokens = crate::oauth::read_tokens(file)?;
    if tokens.refresh_tokens.is_empty() {
        bail!("no refresh tokens in {}", file.display());
    }
    let http = crate::client::builder()?.build()?;
    let url = format!("{}/v1/oauth/token", tokens.base);
    let chains = tokens.refresh_tokens.len();
    let per_chain = n.div_ceil(chains);
    let minted = futures::future::try_join_all(tokens.refresh_tokens.iter().map(|first| {
        let (http, url, client_id) = (&http, &url, &tokens.client_id);
        async move {
            let mut refresh = first.clone();
            let mut access = Vec::with_capacity(per_chain);
            for _ in 0..per_chain {
                let resp = http
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", client_id.as_str()),
                    ])
                    .send()
                    .await?;
                let status = resp.status();
                let body: Value = resp.json().await?;
                if !status.is_success() {
                    bail!("a refresh grant answered {status}: {body}");
                }
                let field = |k: &str| {
                    body[k]
                        .as_str()
                        .map(str::to_string)
                        .with_context(|| format!("no {k} in the answer"))
                };
                access.push(field("access_token")?);
                refresh = field("refresh_token")?;
            }
            Ok::<_, anyhow::Error>(access)
        }
    }))
    .await?;
    Ok(minted.into_iter().flatten().take(n).collect())
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

/// Reads `resp` until `seen` holds `until`, 10 s at most.
async fn read_until(resp: &mut Response, seen: &mut String, until: &str) -> anyhow::Result<()> {
    while !seen.contains(until) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .with_context(|| format!("no {until:?} on the stream within 10 s"))??
            .with_context(|| format!("the stream ended before {until:?}"))?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(())
}

/// A legacy session, initialized as a client leaves it: `GET /sse`, its
/// `endpoint` event, `initialize` POSTed there and answered on the stream,
/// then `notifications/initialized`.
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
    read_until(&mut resp, &mut seen, "event: endpoint\ndata: ").await?;
    read_until(&mut resp, &mut seen, "\n\n").await?;
    let endpoint = seen
        .split("event: endpoint\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .context("an endpoint event without data")?
        .to_string();
    let url = format!("{base}{endpoint}");
    let post = |body: Value| {
        http.post(&url)
            .header("authorization", auth)
            .json(&body)
            .send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {},
        "clientInfo": {"name": "mcpgate-bench", "version": "0"}}}),
    )
    .await?;
    if init.status().as_u16() != 202 {
        bail!("initialize answered {}", init.status());
    }
    seen.clear();
    read_until(&mut resp, &mut seen, "\"protocolVersion\"").await?;
    let done = post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
    if done.status().as_u16() != 202 {
        bail!("notifications/initialized answered {}", done.status());
    }
    Ok(resp)
}

/// The clients sessions are opened with: one for all (HTTP/1.1, pooled), or
/// one per `per` sessions (HTTP/2, one connection each).
struct Clients {
    all: Vec<reqwest::Client>,
    per: usize,
}

impl Clients {
    fn new(a: &IdleArgs, count: usize) -> anyhow::Result<Self> {
        match a.per_connection {
            None => Ok(Self {
                all: vec![
                    crate::client::builder()?
                        .pool_max_idle_per_host(a.concurrency)
                        .build()?,
                ],
                per: usize::MAX,
            }),
            Some(per) => {
                // HTTP/2 by ALPN over TLS; over plain HTTP with prior
                // knowledge (h2c, which axum's server also speaks).
                let h2c = !a.base.starts_with("https://");
                let per = per.max(1);
                // +1: the warm-up session.
                let all = (0..count.div_ceil(per) + 1)
                    .map(|_| {
                        let b = crate::client::builder()?;
                        let b = if h2c { b.http2_prior_knowledge() } else { b };
                        b.build().map_err(anyhow::Error::from)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(Self { all, per })
            }
        }
    }

    fn for_session(&self, n: usize) -> reqwest::Client {
        self.all[(n / self.per).min(self.all.len() - 1)].clone()
    }
}

async fn open_bare(http: &reqwest::Client, base: &str) -> anyhow::Result<Response> {
    let resp = http
        .get(format!("{base}/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("GET /mcp answered {}", resp.status());
    }
    Ok(resp)
}

async fn open(
    kind: &str,
    http: &reqwest::Client,
    base: &str,
    auth: &str,
) -> anyhow::Result<Response> {
    match kind {
        "sse" => open_sse(http, base, auth).await,
        "bare" => open_bare(http, base).await,
        _ => open_streamable(http, base, auth).await,
    }
}

pub async fn run(a: IdleArgs) -> anyhow::Result<Value> {
    let base = a.base.trim_end_matches('/').to_string();
    let auths: Vec<String> = match &a.tokens {
        Some(file) => mint(file, a.distinct.max(1)).await?,
        None => vec![a.token.clone()],
    }
    .into_iter()
    .map(|t| format!("Bearer {t}"))
    .collect();
    let auth_of = |n: usize| auths[n % auths.len()].as_str();
    if !["streamable", "sse", "bare"].contains(&a.kind.as_str()) {
        bail!("--kind is streamable, sse or bare");
    }
    let most = a.counts.iter().copied().max().unwrap_or(0);
    let clients = Clients::new(&a, most)?;
    // Warm up: one session opened and closed, so lazily built state (the
    // token cache, rmcp's service) does not count as per-session memory.
    // Over HTTP/2 it goes on a connection of its own (the last client).
    drop(open(&a.kind, &clients.for_session(usize::MAX), &base, auth_of(0)).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_bytes(a.pid)?;
    let mut held: Vec<Response> = Vec::new();
    let mut points = Vec::new();
    for &count in &a.counts {
        let first = held.len();
        let opened: Vec<anyhow::Result<Response>> = futures::stream::iter(first..count.max(first))
            .map(|n| {
                let http = clients.for_session(n);
                let (base, auth, kind) = (&base, auth_of(n), &a.kind);
                async move { open(kind, &http, base, auth).await }
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
    let report = json!({
        "kind": a.kind,
        "http": if a.per_connection.is_some() { "HTTP/2" } else { "HTTP/1.1" },
        "connections": if a.per_connection.is_some() { clients.all.len() - 1 } else { held.len() },
        "distinct_tokens": auths.len(),
        "baseline_rss_bytes": baseline,
        "points": points,
    });
    if a.hold {
        println!("{report}");
        let mut sink = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await?;
        // Still open until here: the other load ran beside them.
        let still = rss_bytes(a.pid)?;
        drop(held);
        return Ok(json!({"held_until_stdin_closed": true, "rss_bytes_at_release": still}));
    }
    drop(held);
    Ok(report)
}
