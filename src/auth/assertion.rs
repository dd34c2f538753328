//! Verifying a `private_key_jwt` client assertion (RFC 7523 §2.2, §3):
//! find the client's keys (inline `jwks`, or its `jwks_uri` through
//! [`super::client_keys`], refetched once when the `kid` is unknown), let
//! the core rules check signature and claims, then record the `jti` in the
//! store so that the assertion is accepted once across all instances.
//!
//! Any client whose `token_endpoint_auth_method` is `private_key_jwt` is
//! checked here, however it came to be known (dynamic registration, a
//! metadata document, or pre-registration).

use mcpgate_core::crypto::hash_secret;
use mcpgate_core::model::Client;
use mcpgate_core::oauth::client_assertion::{self, Expected};
use mcpgate_core::oauth::client_auth::ClientAuthError;
use mcpgate_core::oauth::{OAuthError, SecurityEvent};

use super::token::TokenError;
use super::{AuthServer, store_failure};

/// Where the assertion was sent: its `aud` may name the issuer or this
/// endpoint's URL (at the revocation endpoint, the token endpoint's URL
/// too, which is what most clients put in every assertion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Revocation,
}

fn refused(error: OAuthError) -> TokenError {
    TokenError::ClientAuth(ClientAuthError {
        error,
        basic: false,
    })
}

fn keys_refused(d: impl Into<String>) -> TokenError {
    refused(OAuthError::invalid_client(d).with_event(SecurityEvent::ClientAssertionInvalid))
}

impl AuthServer {
    /// The audiences an assertion sent to `endpoint` may name.
    fn assertion_audiences(&self, endpoint: Endpoint) -> Vec<String> {
        let mut aud = vec![self.urls.issuer.clone(), self.urls.token_endpoint.clone()];
        if endpoint == Endpoint::Revocation {
            aud.push(self.urls.revocation_endpoint.clone());
        }
        aud
    }

    /// Verifies `assertion` for `client` and uses up its `jti`.
    pub(crate) async fn verify_client_assertion(
        &self,
        client: &Client,
        assertion: &str,
        endpoint: Endpoint,
    ) -> Result<(), TokenError> {
        let now = self.now();
        let audiences = self.assertion_audiences(endpoint);
        let expected = Expected {
            client_id: client.client_id.as_str(),
            audiences: &audiences,
            now,
        };
        let verified = match (&client.metadata.jwks, &client.metadata.jwks_uri) {
            (Some(set), _) => {
                let keys = client_assertion::parse_jwks(set)
                    .map_err(|e| keys_refused(format!("the client's registered jwks: {e}")))?;
                client_assertion::verify(assertion, &keys, &expected)
                    .map_err(|e| refused(e.error))?
            }
            (None, Some(uri)) => {
                let keys = self
                    .client_keys
                    .keys(uri, now)
                    .await
                    .map_err(|e| keys_refused(e.0))?;
                match client_assertion::verify(assertion, &keys, &expected) {
                    Ok(v) => v,
                    Err(e) if e.refetch_keys => match self.client_keys.refetch(uri, now).await {
                        Some(Ok(fresh)) => client_assertion::verify(assertion, &fresh, &expected)
                            .map_err(|e| refused(e.error))?,
                        _ => return Err(refused(e.error)),
                    },
                    Err(e) => return Err(refused(e.error)),
                }
            }
            (None, None) => {
                return Err(keys_refused(
                    "this client uses private_key_jwt but has no registered keys (jwks or jwks_uri)",
                ));
            }
        };
        let first = self
            .store
            .use_assertion_jti(
                &client.client_id,
                &hash_secret(&verified.jti),
                verified.remember_until,
                now,
            )
            .await
            .map_err(|e| TokenError::OAuth(store_failure(e)))?;
        if !first {
            return Err(refused(client_assertion::replayed()));
        }
        Ok(())
    }
}
