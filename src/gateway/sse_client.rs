//! A client for the legacy HTTP+SSE transport (MCP 2024-11-05), for
//! upstream servers that speak nothing newer (rmcp ships no such client).
//!
//! `GET <url>` opens an event stream whose first `endpoint` event names the
//! URL (relative to the stream's) to `POST` messages to; the server's
//! messages arrive as `message` events. The result is an rmcp transport: a
//! `(Sink, Stream)` pair of channels, with one task reading the stream and
//! one posting outgoing messages. When the stream ends, the transport
//! closes and the supervisor restarts the upstream.
//!
//! Credentials stay on the configured origin (scheme, host, port; RFC 6454
//! §4): an `endpoint` event naming another origin ends the connection
//! attempt with an error, and the client (built by [`crate::outbound`])
//! never follows a redirect to another origin; a redirect it does not
//! follow is an error too.

use super::sse_events::SseStream;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use reqwest::header::{ACCEPT, HeaderMap};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use mcpgate_core::mcp::bearer::Caller;

use super::identity::JwtSigner;
use crate::outbound::{self, Outbound};

pub type Transport = (
    mpsc::Sender<TxJsonRpcMessage<RoleClient>>,
    mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
);

/// Opens the stream and waits for the `endpoint` event.
/// `identity`: for a per-user upstream with `identity_jwt`, a fresh signed
/// token goes on the stream request and on every message.
pub async fn connect(
    url: &str,
    headers: HeaderMap,
    identity: Option<(Arc<JwtSigner>, Caller)>,
    name: &str,
    outbound: &crate::outbound::OutboundSettings,
) -> Result<(Transport, Fault), String> {
    let with_identity = move |h: &HeaderMap| -> HeaderMap {
        let mut h = h.clone();
        if let Some((signer, caller)) = &identity
            && let Some((k, v)) = signer.header_for(caller)
        {
            h.insert(k, v);
        }
        h
    };
    let client = Outbound::upstream().settings(outbound).build()?;
    let resp = client
        .get(url)
        .headers(with_identity(&headers))
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    if let Some(refused) = outbound::refused_redirect(&resp) {
        return Err(format!("the event stream: {refused}"));
    }
    if !resp.status().is_success() {
        return Err(format!("GET {url} answered {}", resp.status()));
    }
    let mut events = SseStream::from_byte_stream(resp.bytes_stream());
    let endpoint = loop {
        match events.next().await {
            Some(Ok(e)) if e.event.as_deref() == Some("endpoint") => {
                break e.data.unwrap_or_default();
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("the event stream of {url} failed: {e}")),
            None => {
                return Err(format!(
                    "the event stream of {url} ended before its endpoint event"
                ));
            }
        }
    };
    let base = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let post_url = base
        .join(endpoint.trim())
        .map_err(|e| format!("the endpoint event {endpoint:?} is not a URL: {e}"))?;
    if post_url.origin() != base.origin() {
        return Err(format!(
            "the endpoint event names another origin ({:?}) than the event stream's ({}); \
             messages go only to the configured origin",
            post_url.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        ));
    }

    let (mut to_rmcp, from_upstream) = mpsc::channel::<RxJsonRpcMessage<RoleClient>>(64);
    let (to_upstream, mut from_rmcp) = mpsc::channel::<TxJsonRpcMessage<RoleClient>>(64);
    let reader_name = name.to_string();
    // A writer that gives up ends the reader too, so that the transport
    // closes instead of waiting for answers that cannot come.
    let closed = CancellationToken::new();
    let reader_closed = closed.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                e = events.next() => e,
                () = reader_closed.cancelled() => break,
            };
            let Some(event) = event else { break };
            let Ok(event) = event else { break };
            if event.event.as_deref().is_some_and(|e| e != "message") {
                continue;
            }
            let Some(data) = event.data else { continue };
            match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&data) {
                Ok(msg) => {
                    if to_rmcp.send(msg).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(upstream = %reader_name, error = %e, "unreadable message from a legacy SSE upstream")
                }
            }
        }
        tracing::debug!(upstream = %reader_name, "legacy SSE stream ended");
    });
    let writer_name = name.to_string();
    let fault = Fault::default();
    let writer_fault = fault.0.clone();
    tokio::spawn(async move {
        while let Some(msg) = from_rmcp.next().await {
            match client
                .post(post_url.clone())
                .headers(with_identity(&headers))
                .json(&msg)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {}
                Ok(r) if r.status().is_redirection() => {
                    let refused = outbound::refused_redirect(&r).unwrap_or_default();
                    tracing::warn!(upstream = %writer_name, error = %refused, "legacy SSE upstream redirected a message; closing the connection");
                    if let Ok(mut f) = writer_fault.lock() {
                        *f = Some(format!("a message: {refused}"));
                    }
                    break;
                }
                Ok(r) => {
                    tracing::warn!(upstream = %writer_name, status = %r.status(), "legacy SSE upstream refused a message");
                    if r.status() == reqwest::StatusCode::NOT_FOUND {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(upstream = %writer_name, error = %e, "cannot post to a legacy SSE upstream");
                    break;
                }
            }
        }
        closed.cancel();
    });
    Ok(((to_upstream, from_upstream), fault))
}

/// Why the transport closed, when the client closed it (a message that
/// was redirected): for the upstream's status, which otherwise only learns
/// that the connection closed.
#[derive(Clone, Default)]
pub struct Fault(Arc<Mutex<Option<String>>>);

impl Fault {
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut f| f.take())
    }
}

#[cfg(test)]
mod proptests;
