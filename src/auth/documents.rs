//! Clients identified by a Client ID Metadata Document
//! (draft-ietf-oauth-client-id-metadata-document): fetching the document,
//! caching it in the store, serving a stale copy while its host is down.
//! The rules (which ids are documents, what a valid document is, how long
//! it stays fresh) are in `mcpgate_core::oauth::cimd`.
//!
//! **The fetch** (draft §4, §6): `GET` with `Accept: application/json`, no
//! cookies, no redirect followed (a redirect is a refusal), a 5 s timeout, at
//! most 64 KiB read, through the SSRF-guarded client of
//! [`crate::outbound::Outbound::client_controlled`].
//!
//! **The cache** is the client's row in the store (`clients`, kind
//! `metadata_document`, with `document_fetched_at` and
//! `document_fresh_until`), so it is shared by every instance on one
//! database: a document fetched by one instance is fresh for all. A fresh
//! row is used as it is. A stale one is fetched again; if the host cannot
//! be reached (connection failure, timeout, `5xx`), the stale copy is served
//! for up to a day past its freshness, then the client is refused. A host
//! that answers with a refusal (`4xx`, a redirect, an oversized or invalid
//! document) is believed at once: the client is refused.
//!
//! **No stampede**: concurrent requests for one document in one instance
//! wait for a single fetch (a lock per URL, then the store is read again).
//! Instances do not coordinate; at worst each fetches once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpgate_core::domain::MetadataDocumentUrl;
use mcpgate_core::model::{CachedDocument, Client, ClientKind};
use mcpgate_core::oauth::OAuthError;
use mcpgate_core::oauth::cimd::{self, DocumentPolicy};

use super::{AuthServer, store_failure};
use crate::outbound::{self, GuardedClient, Outbound, OutboundSettings, ReadError};
use crate::store::StoreError;

/// The document side of the authorization server.
pub struct Documents {
    pub policy: DocumentPolicy,
    /// The operator's outbound settings, for other client-controlled
    /// fetches (a client's `jwks_uri`: [`Documents::outbound_settings`]).
    outbound: OutboundSettings,
    http: Option<GuardedClient>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Documents {
    pub fn new(policy: DocumentPolicy, outbound: &OutboundSettings) -> Result<Self, String> {
        let http = Outbound::client_controlled(Duration::from_secs(cimd::FETCH_TIMEOUT_SECS))
            .settings(outbound)
            .build_guarded()
            .map_err(|e| format!("client metadata documents: {e}"))?;
        Ok(Self {
            policy,
            outbound: outbound.clone(),
            http: Some(http),
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// Documents off (the state before `App::build` configures them).
    pub fn disabled() -> Self {
        Self {
            policy: DocumentPolicy::off(),
            outbound: OutboundSettings::default(),
            http: None,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The operator's outbound settings these documents are fetched with.
    pub fn outbound_settings(&self) -> &OutboundSettings {
        &self.outbound
    }

    fn gate(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(url.to_string()).or_default().clone()
    }

    fn release(&self, url: &str, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        // Ours and the map's: nobody else waits.
        if Arc::strong_count(&gate) <= 2 {
            map.remove(url);
        }
    }
}

/// Why a fetch failed.
enum FetchError {
    /// The host could not be reached or failed (a stale copy may serve).
    Unreachable(String),
    /// The host answered, with something that is not a document.
    Refused(String),
}

struct Fetched {
    body: Vec<u8>,
    cache_control: Option<String>,
    expires: Option<i64>,
}

impl AuthServer {
    /// The client a document URL identifies: the cached copy while fresh,
    /// else fetched (see the module doc). Failures are `invalid_client`,
    /// with a description fit for the error page and the token endpoint.
    pub async fn document_client(&self, url: &MetadataDocumentUrl) -> Result<Client, OAuthError> {
        let client = self.document_client_any(url).await?;
        // `public_clients = false`: a document declaring `none` is refused.
        self.policy
            .admits_client(client.kind, client.metadata.token_endpoint_auth_method)?;
        Ok(client)
    }

    async fn document_client_any(&self, url: &MetadataDocumentUrl) -> Result<Client, OAuthError> {
        let id = mcpgate_core::domain::ClientId::parse(url.as_str())
            .map_err(|e| OAuthError::invalid_client(e.0))?;
        let cached = self
            .store
            .client_document(&id)
            .await
            .map_err(store_failure)?;
        if let Some(c) = &cached
            && self.now() < c.fresh_until
        {
            return Ok(c.client.clone());
        }
        let gate = self.documents.gate(url.as_str());
        let result = {
            let _held = gate.lock().await;
            self.refresh_document(url, &id).await
        };
        self.documents.release(url.as_str(), gate);
        result
    }

    async fn refresh_document(
        &self,
        url: &MetadataDocumentUrl,
        id: &mcpgate_core::domain::ClientId,
    ) -> Result<Client, OAuthError> {
        // Another request may have fetched it while this one waited.
        let cached = self
            .store
            .client_document(id)
            .await
            .map_err(store_failure)?;
        let now = self.now();
        if let Some(c) = &cached
            && now < c.fresh_until
        {
            return Ok(c.client.clone());
        }
        let refused = |why: String| {
            tracing::warn!(event = "oauth.client_document_refused", client_id = ?url.as_str(), reason = ?why, "client metadata document refused");
            OAuthError::invalid_client(why)
        };
        let fetched = match self.fetch_document(url).await {
            Ok(f) => f,
            Err(FetchError::Unreachable(why)) => {
                if let Some(c) = cached
                    && cimd::may_serve_stale(c.fresh_until, now)
                {
                    tracing::warn!(event = "oauth.client_document_stale", client_id = ?url.as_str(), reason = ?why, "client metadata document unreachable: serving the cached copy");
                    return Ok(c.client);
                }
                return Err(refused(format!(
                    "mcpgate could not fetch the metadata document of the application at {}: {why}",
                    url.host()
                )));
            }
            Err(FetchError::Refused(why)) => {
                return Err(refused(format!(
                    "the metadata document of the application at {} cannot be used: {why}",
                    url.host()
                )));
            }
        };
        let metadata = cimd::validate(url, &fetched.body).map_err(|e| {
            refused(format!(
                "the application at {}: {}",
                url.host(),
                e.description
            ))
        })?;
        let fresh_until = cimd::fresh_until(now, fetched.cache_control.as_deref(), fetched.expires);
        let client = Client {
            client_id: id.clone(),
            secret_hash: None,
            metadata,
            issued_at: cached.as_ref().map_or(now, |c| c.client.issued_at),
            last_used_at: cached.as_ref().and_then(|c| c.client.last_used_at),
            kind: ClientKind::MetadataDocument,
        };
        let doc = CachedDocument {
            client,
            fetched_at: now,
            fresh_until,
        };
        match self.store.save_client_document(&doc).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(refused(
                    "a client registered otherwise already has this client_id".into(),
                ));
            }
            Err(e) => return Err(store_failure(e)),
        }
        tracing::info!(event = "oauth.client_document_fetched", client_id = ?url.as_str(), fresh_for = fresh_until - now, "client metadata document fetched");
        if cached.is_none() {
            // First use: the client exists from now on.
            self.audit.record(
                crate::audit::Event::new(
                    crate::audit::Kind::ClientRegistered,
                    crate::audit::Outcome::Ok,
                )
                .client(url.as_str())
                .detail("via", "metadata_document")
                .detail_text("host", url.host()),
            );
        }
        Ok(doc.client)
    }

    async fn fetch_document(&self, url: &MetadataDocumentUrl) -> Result<Fetched, FetchError> {
        let Some(http) = &self.documents.http else {
            return Err(FetchError::Refused("metadata documents are off".into()));
        };
        let request = http
            .get(url.url())
            .map_err(FetchError::Refused)?
            .header(reqwest::header::ACCEPT, "application/json");
        let response = request
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(describe(&e)))?;
        if outbound::refused_redirect(&response).is_some() {
            return Err(FetchError::Refused(format!(
                "its host answered {} with a redirect, and a metadata document must be served at its own URL",
                response.status()
            )));
        }
        let status = response.status();
        if status.is_server_error() {
            return Err(FetchError::Unreachable(format!(
                "its host answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(FetchError::Refused(format!("its host answered {status}")));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let cache_control = header(reqwest::header::CACHE_CONTROL);
        let expires = header(reqwest::header::EXPIRES)
            .and_then(|d| httpdate::parse_http_date(&d).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        let body = outbound::read_capped(response, cimd::MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge(max) => {
                    FetchError::Refused(format!("the document is larger than {} KiB", max / 1024))
                }
                ReadError::Http(e) => FetchError::Unreachable(describe(&e)),
            })?;
        Ok(Fetched {
            body,
            cache_control,
            expires,
        })
    }
}

/// A fetch failure in words, without the URL's path or query (the page
/// names the host already).
fn describe(e: &reqwest::Error) -> String {
    let chain = outbound::error_chain(e);
    if let Some(i) = chain.find("which mcpgate does not fetch from") {
        // The SSRF refusal: "<host> resolves to <ip>, <why>, which ...".
        let start = chain[..i].rfind(": ").map_or(0, |j| j + 2);
        let end = chain[i..].find(')').map_or(chain.len(), |j| i + j + 1);
        return chain[start..end].to_string();
    }
    if e.is_timeout() {
        format!("no answer within {} seconds", cimd::FETCH_TIMEOUT_SECS)
    } else if e.is_connect() {
        "the connection failed".into()
    } else {
        "the request failed".into()
    }
}
