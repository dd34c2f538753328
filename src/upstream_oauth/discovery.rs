//! Finding an upstream's authorization server over HTTP, with the rules of
//! `mcpgate_core::upstream_oauth::discovery` (MCP 2025-11-25, Authorization,
//! §Authorization Server Discovery; RFC 9728; RFC 8414).
//!
//! The upstream is asked once without a token (an `initialize` POST, as an
//! MCP client's first request); its `401` challenge names the protected
//! resource metadata, else the well-known URLs are tried. Every fetch goes
//! through the outbound client ([`crate::outbound`]): no redirects (RFC 9700
//! §4.11), a total timeout, bodies capped. The destinations are the
//! upstream the operator configured and the servers it names, so they are
//! not under the SSRF rule of client-chosen URLs (like identity providers).

use mcpgate_core::upstream_oauth::discovery::{
    Challenge, ResourceMetadata, ServerMetadata, authorization_server_metadata_urls,
    resource_metadata_urls,
};

use crate::outbound::read_capped;

/// Largest metadata document read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// What discovery found for one upstream.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The upstream's resource identifier (the `resource` parameter).
    pub resource: String,
    /// The scopes the upstream's metadata lists (default scope to request).
    pub resource_scopes: Vec<String>,
    pub server: ServerMetadata,
}

async fn get(client: &reqwest::Client, url: &url::Url) -> Result<Option<Vec<u8>>, String> {
    let response = client
        .get(url.as_str())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::outbound::error_chain(&e)))?;
    if !response.status().is_success() {
        return Ok(None);
    }
    read_capped(response, MAX_DOCUMENT)
        .await
        .map(Some)
        .map_err(|_| format!("{url}: the document could not be read"))
}

/// The challenge the upstream answers an unauthenticated request with, if
/// it answers `401` with a `Bearer` challenge.
pub async fn challenge(
    client: &reqwest::Client,
    upstream_url: &str,
) -> Result<Option<Challenge>, String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")}}
    });
    let response = client
        .post(upstream_url)
        .header(
            reqwest::header::ACCEPT,
            "application/json, text/event-stream",
        )
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{upstream_url}: {}", crate::outbound::error_chain(&e)))?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    Ok(response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Challenge::parse))
}

/// Discovers the authorization server of the MCP server at `upstream_url`.
pub async fn discover(client: &reqwest::Client, upstream_url: &str) -> Result<Discovered, String> {
    let mut candidates = Vec::new();
    if let Some(url) = challenge(client, upstream_url)
        .await?
        .and_then(|c| c.resource_metadata)
        .and_then(|u| url::Url::parse(&u).ok())
    {
        candidates.push(url);
    }
    candidates.extend(resource_metadata_urls(upstream_url).map_err(|e| e.to_string())?);
    let mut resource = None;
    let mut last_error = "no protected resource metadata was found".to_string();
    for url in candidates {
        if let Some(body) = get(client, &url).await? {
            match ResourceMetadata::parse(&body, upstream_url) {
                Ok(m) => {
                    resource = Some(m);
                    break;
                }
                Err(e) => last_error = format!("{url}: {e}"),
            }
        }
    }
    let resource = resource.ok_or(last_error)?;
    let issuer = &resource.authorization_server;
    for url in authorization_server_metadata_urls(issuer).map_err(|e| e.to_string())? {
        if let Some(body) = get(client, &url).await? {
            let server = ServerMetadata::parse(&body, issuer).map_err(|e| format!("{url}: {e}"))?;
            return Ok(Discovered {
                resource: resource.resource,
                resource_scopes: resource.scopes_supported,
                server,
            });
        }
    }
    Err(format!(
        "no authorization server metadata was found for {issuer}"
    ))
}
