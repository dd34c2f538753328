//! Dynamic client registration (RFC 7591): validate with the core rules,
//! give clients of a `client_secret_*` method a secret (stored only as its
//! hash; `private_key_jwt` clients registered keys instead), persist.

use std::net::IpAddr;

use mcpgate_core::crypto::{hash_secret, random_hex, random_uuid};
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::Client;
use mcpgate_core::oauth::{ErrorCode, OAuthError, register};

use super::{AuthServer, store_failure};

/// Client secrets: `mcps_` + 64 hex characters (256 bits).
const SECRET_PREFIX: &str = "mcps_";

/// A new client secret (256 random bits), for registration and for
/// `mcpgate client add --secret`. Store only its hash.
pub fn new_client_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_hex::<32>())
}

impl AuthServer {
    /// Registers a client from a JSON body; returns the RFC 7591 §3.2.1
    /// response body.
    pub async fn register(
        &self,
        body: &serde_json::Value,
        from: IpAddr,
    ) -> Result<serde_json::Value, OAuthError> {
        if self
            .registration_limiter
            .check_key(&mcpgate_core::client_address::limit_key(from))
            .is_err()
        {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many client registrations from this address; wait a minute and try again",
            ));
        }
        // offline_access may be registered too (see `policy::OFFLINE_ACCESS`).
        let mut offered = self.policy.scopes_supported.clone();
        offered.push(mcpgate_core::oauth::policy::OFFLINE_ACCESS.into());
        let metadata = register::validate(body, &offered)?;
        if !self.policy.public_clients
            && metadata.token_endpoint_auth_method
                == mcpgate_core::model::TokenEndpointAuthMethod::None
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                "this server takes no public clients (public_clients = false): register with token_endpoint_auth_method private_key_jwt (and jwks_uri or jwks) or client_secret_basic",
            ));
        }
        let secret = metadata
            .token_endpoint_auth_method
            .uses_secret()
            .then(new_client_secret);
        let client_id =
            ClientId::parse(&random_uuid()).map_err(|e| OAuthError::server_error(e.0))?;
        let client = Client {
            client_id,
            secret_hash: secret.as_deref().map(hash_secret),
            metadata,
            issued_at: self.now(),
            last_used_at: None,
            kind: mcpgate_core::model::ClientKind::Dynamic,
        };
        self.store
            .create_client(&client)
            .await
            .map_err(store_failure)?;
        tracing::info!(
            event = "oauth.client_registered",
            client_id = ?client.client_id,
            client_name = ?client.metadata.client_name.as_deref().unwrap_or(""),
            auth_method = client.metadata.token_endpoint_auth_method.as_str(),
            "client registered"
        );
        self.audit.record(
            crate::audit::Event::new(
                crate::audit::Kind::ClientRegistered,
                crate::audit::Outcome::Ok,
            )
            .client(client.client_id.as_str())
            .addr(from)
            .detail("via", "dcr")
            .detail(
                "auth_method",
                client.metadata.token_endpoint_auth_method.as_str(),
            )
            .detail_text(
                "client_name",
                client.metadata.client_name.as_deref().unwrap_or(""),
            ),
        );
        Ok(register::response(&client, secret.as_deref()))
    }
}
