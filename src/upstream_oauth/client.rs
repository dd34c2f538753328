//! mcpgate's client identity at an upstream's authorization server, in
//! the order of issue #19:
//!
//! 1. `oauth_client_id` from the configuration (pre-registered, with
//!    `oauth_client_secret_env` for a confidential client: HTTP Basic);
//! 2. a Client ID Metadata Document when the server advertises
//!    `client_id_metadata_document_supported`
//!    (draft-ietf-oauth-client-id-metadata-document): the client id is
//!    `<public_url>/oauth/client.json` (a public client using PKCE,
//!    [`UpstreamOAuth::client_document`]), or, when the server takes no
//!    public clients but `private_key_jwt`, `<public_url>/oauth/client-jwt.json`
//!    ([`UpstreamOAuth::client_jwt_document`], keys at
//!    `<public_url>/oauth/jwks.json`);
//! 3. dynamic registration (RFC 7591) at its `registration_endpoint`, with
//!    the same choice of method (`none`, else `private_key_jwt` with
//!    `jwks_uri`), done once per authorization server and redirect URI
//!    and kept in the database (`upstream_clients`, with its method),
//!    shared by every instance.
//!
//! The method for 2 and 3 follows the server's
//! `token_endpoint_auth_methods_supported`
//! ([`mcpgate_core::upstream_oauth::client_key::choose_auth_method`]).
//! Every request to the token and revocation endpoints authenticates with
//! the client's method ([`UpstreamOAuth::authenticate`]): `client_id` in
//! the form, HTTP Basic with the secret, or a client assertion signed with
//! mcpgate's key (RFC 7523 §2.2, `aud` = the server's issuer).

use mcpgate_core::crypto::random_b64;
use mcpgate_core::oauth::client_assertion::ASSERTION_TYPE;
use mcpgate_core::upstream_oauth::client_key::{
    AssertionClaims, ClientAuthMethod, choose_auth_method,
};
use mcpgate_core::upstream_oauth::connect::ConnectError;
use serde_json::json;

use super::discovery::Discovered;
use super::service::UpstreamOAuth;
use crate::gateway::config::UpstreamConfig;
use crate::outbound::read_capped;
use crate::store::{StoreError, UpstreamClientRecord};

/// mcpgate's client at one authorization server.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    pub client_id: String,
    pub auth: ClientAuthMethod,
}

impl UpstreamOAuth {
    fn document(&self, client_id: String, method: ClientAuthMethod) -> serde_json::Value {
        let mut doc = json!({
            "client_id": client_id,
            "client_name": "mcpgate",
            "client_uri": self.public_url,
            "redirect_uris": [self.redirect_uri()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method.as_str(),
        });
        if method == ClientAuthMethod::PrivateKeyJwt {
            doc["jwks_uri"] = self.jwks_url().into();
        }
        doc
    }

    /// The metadata document of mcpgate as a public client (served at
    /// `/oauth/client.json`).
    pub fn client_document(&self) -> serde_json::Value {
        self.document(self.client_document_url(), ClientAuthMethod::None)
    }

    /// The metadata document of mcpgate as a `private_key_jwt` client
    /// (served at `/oauth/client-jwt.json`).
    pub fn client_jwt_document(&self) -> serde_json::Value {
        self.document(
            self.client_jwt_document_url(),
            ClientAuthMethod::PrivateKeyJwt,
        )
    }

    /// The public JWK Set of mcpgate's client key (`/oauth/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        self.signing.jwks()
    }

    pub(super) async fn client_for(
        &self,
        cfg: &UpstreamConfig,
        found: &Discovered,
    ) -> Result<UpstreamClient, ConnectError> {
        if let Some(id) = &cfg.oauth_client_id {
            let auth = if self.client_secret(cfg).is_some() {
                ClientAuthMethod::ClientSecretBasic
            } else {
                ClientAuthMethod::None
            };
            return Ok(UpstreamClient {
                client_id: id.clone(),
                auth,
            });
        }
        let method = choose_auth_method(&found.server.token_endpoint_auth_methods_supported);
        if found.server.client_id_metadata_document_supported {
            let client_id = match method {
                ClientAuthMethod::PrivateKeyJwt => self.client_jwt_document_url(),
                _ => self.client_document_url(),
            };
            return Ok(UpstreamClient {
                client_id,
                auth: method,
            });
        }
        let issuer = &found.server.issuer;
        let redirect_uri = self.redirect_uri();
        let stored = |r: Option<UpstreamClientRecord>| {
            r.map(|c| UpstreamClient {
                client_id: c.client_id,
                auth: ClientAuthMethod::parse(&c.auth_method).unwrap_or(ClientAuthMethod::None),
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
        let mut metadata = json!({
            "client_name": "mcpgate",
            "client_uri": self.public_url,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method.as_str(),
        });
        if method == ClientAuthMethod::PrivateKeyJwt {
            metadata["jwks_uri"] = self.jwks_url().into();
        }
        let response = self
            .http
            .post(endpoint)
            .json(&metadata)
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
        let registered = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .filter(|_| status.is_success());
        let client_id = registered
            .as_ref()
            .and_then(|v| v.get("client_id")?.as_str().map(str::to_string))
            .ok_or_else(|| {
                let error = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error")?.as_str().map(str::to_string));
                ConnectError::Upstream(format!(
                    "registration answered HTTP {status}{}",
                    error.map(|e| format!(" ({e})")).unwrap_or_default()
                ))
            })?;
        // RFC 7591 §3.2.1: the server may change the method; only the
        // two mcpgate can use are accepted.
        let auth = match registered
            .as_ref()
            .and_then(|v| v.get("token_endpoint_auth_method")?.as_str())
        {
            None => method,
            Some(m) => match ClientAuthMethod::parse(m) {
                Some(a @ (ClientAuthMethod::None | ClientAuthMethod::PrivateKeyJwt)) => a,
                _ => {
                    return Err(ConnectError::Upstream(format!(
                        "registration gave token_endpoint_auth_method {m:?}, which mcpgate cannot use"
                    )));
                }
            },
        };
        let record = UpstreamClientRecord {
            issuer: issuer.clone(),
            redirect_uri: redirect_uri.clone(),
            client_id: client_id.clone(),
            kid: None,
            sealed_secret: None,
            auth_method: auth.as_str().to_string(),
            created_at: self.clock.now(),
        };
        match self.store.create_upstream_client(&record).await {
            Ok(()) => {
                tracing::info!(event = "upstream_oauth.registered", issuer = %issuer, auth_method = auth.as_str(), "registered mcpgate at an upstream authorization server");
                Ok(UpstreamClient { client_id, auth })
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

    /// Authenticates a request to the token or revocation endpoint of the
    /// authorization server `issuer` as `client`: adds to `form` (or the
    /// request's `Authorization` header) what its method needs.
    pub(super) fn authenticate(
        &self,
        cfg: &UpstreamConfig,
        mut req: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
        client: &UpstreamClient,
        issuer: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        match client.auth {
            ClientAuthMethod::ClientSecretBasic => {
                let secret = self
                    .client_secret(cfg)
                    .ok_or("the client secret (oauth_client_secret_env) is not set")?;
                req = req.basic_auth(
                    form_encode(&client.client_id),
                    Some(form_encode(secret.expose())),
                );
            }
            ClientAuthMethod::None => form.push(("client_id", client.client_id.clone())),
            ClientAuthMethod::PrivateKeyJwt => {
                let jti = random_b64::<24>();
                let assertion = self.signing.assertion(&AssertionClaims {
                    client_id: &client.client_id,
                    audience: issuer,
                    now: self.clock.now(),
                    jti: &jti,
                })?;
                form.push(("client_id", client.client_id.clone()));
                form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
                form.push(("client_assertion", assertion));
            }
        }
        Ok(req)
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before HTTP
/// Basic.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
