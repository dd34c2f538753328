//! Connecting to an upstream: starting its child process, or opening its
//! HTTP session (Streamable HTTP or legacy SSE) with the caller's identity
//! headers or signed JWT, its OAuth token, and the trace context, always
//! through mcpgate's outbound client (`crate::outbound`); then the client
//! session of the configured revision: `initialize` (2025-11-25) or
//! `server/discover` (2026-07-28). [`super::upstream`] supervises the
//! connections this makes.

use std::collections::HashMap;
use std::sync::Arc;

use mcpgate_core::mcp::bearer::Caller;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::config::{HttpTransport, UpstreamConfig};
use super::env::{Protected, child_env};
use super::identity::{JwtClient, JwtSigner};
use super::relay::{RelayHandler, RelayState, counted};
use super::stdio::lane::Lane;
use super::trace_header::TraceHeaderClient;
use super::upstream::identity_values;
use crate::outbound::Outbound;

/// Starts the client session on `transport` with the configured revision:
/// `initialize` (2025-11-25), or `server/discover` (2026-07-28).
async fn start<T, E, A>(
    handler: RelayHandler,
    transport: T,
    revision: super::config::Revision,
) -> Result<RunningService<RoleClient, RelayHandler>, rmcp::service::ClientInitializeError>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
    match revision {
        super::config::Revision::V2025_11_25 => handler.serve(transport).await,
        super::config::Revision::V2026_07_28 => {
            handler
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
        }
    }
}

pub(super) async fn connect(
    cfg: &UpstreamConfig,
    protected: &Protected,
    outbound: &crate::outbound::OutboundSettings,
    identity: Option<&Caller>,
    signer: Option<Arc<JwtSigner>>,
    relay: Arc<RelayState>,
    oauth: Option<Arc<crate::upstream_oauth::UpstreamOAuth>>,
) -> Result<(RunningService<RoleClient, RelayHandler>, Option<Arc<Lane>>), String> {
    if let Some(command) = &cfg.command {
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(&cfg.args)
            .env_clear()
            .envs(child_env(cfg, protected, identity, std::env::vars_os()))
            .kill_on_drop(true);
        if let Some(dir) = &cfg.cwd {
            cmd.current_dir(dir);
        }
        let (transport, lane, stderr) = super::stdio::spawn(cmd, relay.clone())
            .map_err(|e| format!("cannot start {command}: {e}"))?;
        if let Some(stderr) = stderr {
            let name = cfg.name.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(upstream = %name, "stderr: {line}");
                }
            });
        }
        // The lane writes requests as 2025-11-25 clients send them; a
        // 2026-07-28 session adds per-request metadata, which rmcp's peer
        // does (`super::stdio::lane`).
        let lane = (cfg.revision == super::config::Revision::V2025_11_25).then_some(lane);
        let handler = RelayHandler {
            state: relay.clone(),
        };
        let running = start(handler, counted(transport, relay), cfg.revision)
            .await
            .map_err(|e| format!("initialization failed: {e}"))?;
        Ok((running, lane))
    } else if let Some(url) = &cfg.url {
        connect_http(cfg, url, outbound, identity, signer, relay, oauth)
            .await
            .map(|running| (running, None))
    } else {
        Err("neither command nor url is set".into())
    }
}

/// Connects to an HTTP upstream (Streamable HTTP or legacy SSE).
async fn connect_http(
    cfg: &UpstreamConfig,
    url: &str,
    outbound: &crate::outbound::OutboundSettings,
    identity: Option<&Caller>,
    signer: Option<Arc<JwtSigner>>,
    relay: Arc<RelayState>,
    oauth: Option<Arc<crate::upstream_oauth::UpstreamOAuth>>,
) -> Result<RunningService<RoleClient, RelayHandler>, String> {
    let handler = RelayHandler {
        state: relay.clone(),
    };
    let mut headers = HashMap::new();
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    // An OAuth upstream is someone else's server: it learns who the
    // user is from their own token, never from mcpgate's headers.
    if let Some(c) = identity.filter(|_| !cfg.is_oauth()) {
        for (_, k, v) in identity_values(c) {
            let encoded: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            if let Ok(v) = axum::http::HeaderValue::from_str(&encoded) {
                headers.insert(axum::http::HeaderName::from_static(k), v);
            }
        }
    }
    let signed = signer.zip(identity.cloned());
    if cfg.transport == HttpTransport::Sse {
        let header_map: reqwest::header::HeaderMap = headers.into_iter().collect();
        let (transport, fault) =
            super::sse_client::connect(url, header_map, signed, &cfg.name, outbound).await?;
        return start(handler, counted(transport, relay), cfg.revision)
            .await
            .map_err(|e| {
                fault
                    .take()
                    .unwrap_or_else(|| format!("initialization failed: {e}"))
            });
    }
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    config.custom_headers = headers;
    // Never rmcp's default client: every outbound client is ours.
    let client = Outbound::upstream().settings(outbound).build()?;
    if cfg.is_oauth() {
        let (Some(oauth), Some((user_id, _))) = (oauth, identity.and_then(|c| c.user())) else {
            return Err("an OAuth upstream is used only by signed-in users".into());
        };
        let client = crate::upstream_oauth::http_client::OAuthClient {
            inner: client,
            oauth,
            user_id: user_id.to_string(),
            upstream: cfg.name.clone(),
        };
        let transport = StreamableHttpClientTransport::with_client(client, config);
        return start(handler, counted(transport, relay), cfg.revision)
            .await
            .map_err(|e| http_init_error(&e.to_string()));
    }
    if let Some((signer, caller)) = signed {
        let client = TraceHeaderClient {
            inner: JwtClient {
                inner: client,
                signer,
                caller,
            },
        };
        let transport = StreamableHttpClientTransport::with_client(client, config);
        return start(handler, counted(transport, relay), cfg.revision)
            .await
            .map_err(|e| http_init_error(&e.to_string()));
    }
    let client = TraceHeaderClient { inner: client };
    let transport = StreamableHttpClientTransport::with_client(client, config);
    start(handler, counted(transport, relay), cfg.revision)
        .await
        .map_err(|e| http_init_error(&e.to_string()))
}

/// A Streamable HTTP upstream's failed initialization. rmcp reports a
/// redirect the client did not follow (`crate::outbound`) only as an
/// unexpected `HTTP 3xx`; the status says why it was not followed.
fn http_init_error(e: &str) -> String {
    let redirected = ["HTTP 301", "HTTP 302", "HTTP 303", "HTTP 307", "HTTP 308"]
        .iter()
        .any(|s| e.contains(s));
    if redirected {
        format!(
            "initialization failed: the upstream answered with a redirect that mcpgate does not \
             follow (only same-origin 307 and 308 are followed) ({e})"
        )
    } else {
        format!("initialization failed: {e}")
    }
}
