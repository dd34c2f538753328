//! mcpgate's client identity at an upstream's authorization server, in
//! the order of issue #19:
//!
//! 1. `oauth_client_id` from the configuration (pre-registered, with
//!    `oauth_client_secret_env` for a confidential client);
//! 2. a Client ID Metadata Document when the server advertises
//!    `client_id_metadata_document_supported`: the client id is
//!    `<public_url>/oauth/client.json`, served by [`UpstreamOAuth::client_document`]
//!    (a public client using PKCE; draft-ietf-oauth-client-id-metadata-document);
//! 3. dynamic registration (RFC 7591) at its `registration_endpoint`, done
//!    once per authorization server and redirect URI and kept in the
//!    database (`upstream_clients`), shared by every instance.

use mcpgate_core::upstream_oauth::connect::ConnectError;
use serde_json::json;

use super::discovery::Discovered;
use super::service::UpstreamOAuth;
use crate::gateway::config::UpstreamConfig;
use crate::outbound::read_capped;
use crate::store::{StoreError, UpstreamClientRecord};

pub struct UpstreamClient {
    pub client_id: String,
}

impl UpstreamOAuth {
    /// The metadata document of mcpgate as a client (served at
    /// `/oauth/client.json`).
    pub fn client_document(&self) -> serde_json::Value {
        json!({
            "client_id": self.client_document_url(),
            "client_name": "mcpgate",
            "client_uri": self.public_url,
            "redirect_uris": [self.redirect_uri()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    pub(super) async fn client_for(
        &self,
        cfg: &UpstreamConfig,
        found: &Discovered,
    ) -> Result<UpstreamClient, ConnectError> {
        if let Some(id) = &cfg.oauth_client_id {
            return Ok(UpstreamClient {
                client_id: id.clone(),
            });
        }
        if found.server.client_id_metadata_document_supported {
            return Ok(UpstreamClient {
                client_id: self.client_document_url(),
            });
        }
        let issuer = &found.server.issuer;
        let redirect_uri = self.redirect_uri();
        let stored = |r: Option<UpstreamClientRecord>| {
            r.map(|c| UpstreamClient {
                client_id: c.client_id,
            })
        };
        let store_error = |e: StoreError| ConnectError::Store(e.to_string());
        if let Some(c) = stored(
            self.store
                .upstream_client(issuer, &redirect_uri)
                .await
                .map_err(store_error)?,
        ) {
            return Ok(c);
        }
        let endpoint = found.server.registration_endpoint.as_deref().ok_or_else(|| {
            ConnectError::Upstream(
                "the authorization server offers no registration and takes no client metadata documents; set oauth_client_id".into(),
            )
        })?;
        let response = self
            .http
            .post(endpoint)
            .json(&json!({
                "client_name": "mcpgate",
                "client_uri": self.public_url,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }))
            .send()
            .await
            .map_err(|e| {
                ConnectError::Upstream(format!(
                    "registration: {}",
                    crate::outbound::error_chain(&e)
                ))
            })?;
        let status = response.status();
        let body = read_capped(response, 64 * 1024)
            .await
            .map_err(|_| ConnectError::Upstream("registration: unreadable response".into()))?;
        let client_id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .filter(|_| status.is_success())
            .and_then(|v| v.get("client_id")?.as_str().map(str::to_string))
            .ok_or_else(|| {
                ConnectError::Upstream(format!("registration answered HTTP {status}"))
            })?;
        let record = UpstreamClientRecord {
            issuer: issuer.clone(),
            redirect_uri: redirect_uri.clone(),
            client_id: client_id.clone(),
            kid: None,
            sealed_secret: None,
            created_at: self.clock.now(),
        };
        match self.store.create_upstream_client(&record).await {
            Ok(()) => {
                tracing::info!(event = "upstream_oauth.registered", issuer = %issuer, "registered mcpgate at an upstream authorization server");
                Ok(UpstreamClient { client_id })
            }
            // Another instance registered first: use its client.
            Err(StoreError::Conflict(_)) => stored(
                self.store
                    .upstream_client(issuer, &redirect_uri)
                    .await
                    .map_err(store_error)?,
            )
            .ok_or_else(|| ConnectError::Store("the registered client vanished".into())),
            Err(e) => Err(store_error(e)),
        }
    }
}
