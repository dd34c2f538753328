//! The user's identity for per-user HTTP upstreams as a short-lived signed
//! JWT (in addition to the plain `X-MCPGate-User-*` headers), so that an
//! upstream can verify that mcpgate vouches for the user.
//!
//! Every request to the upstream carries a freshly signed token in the
//! configured header (default `X-MCPGate-Identity`), HS256 with a key the
//! operator shares with the upstream (from a file or an environment
//! variable, never written in the configuration). Claims:
//!
//! | claim | value |
//! |---|---|
//! | `iss` | mcpgate's issuer (its public URL) |
//! | `aud` | `audience`, default the upstream's `url` |
//! | `sub` | the user's id; for a service (client credentials grant), `client:<client_id>` |
//! | `preferred_username` | the username (users only) |
//! | `mcpgate_subject_type` | `user`, or `service` for a client acting as itself |
//! | `client_id` | the OAuth client the call came through |
//! | `client_name` | a service's name as the operator registered it (services only) |
//! | `iat`, `exp` | now, now + `ttl` (default 60 s) |
//! | `jti` | a random id |

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use futures::stream::BoxStream;
use jsonwebtoken::{EncodingKey, Header};
use mcpgate_core::mcp::bearer::{Caller, Subject};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use serde::{Deserialize, Serialize};
use sse_stream::Sse;

/// Shortest accepted HMAC key (RFC 7518 §3.2: at least the hash size).
const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityJwtConfig {
    /// A file holding the HMAC-SHA256 key (at least 32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Or the name of an environment variable holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// Lifetime of each token.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// The header that carries it.
    #[serde(default = "default_header")]
    pub header: String,
    /// `aud`; default: the upstream's `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_header() -> String {
    "x-mcpgate-identity".into()
}

pub struct JwtSigner {
    key: EncodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
    header: HeaderName,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("key", &"[REDACTED]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("header", &self.header)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    mcpgate_subject_type: &'static str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_name: Option<&'a str>,
    iat: u64,
    exp: u64,
    jti: String,
}

impl JwtSigner {
    pub fn new(cfg: &IdentityJwtConfig, issuer: &str, upstream_url: &str) -> Result<Self, String> {
        let key = match (&cfg.key_file, &cfg.key_env) {
            (Some(path), None) => std::fs::read(path)
                .map_err(|e| format!("identity_jwt.key_file {}: {e}", path.display()))?
                .trim_ascii()
                .to_vec(),
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| {
                    format!("identity_jwt.key_env: the environment variable {var} is not set")
                })?
                .into_bytes(),
            _ => return Err("identity_jwt needs exactly one of key_file and key_env".into()),
        };
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "identity_jwt key must be at least {MIN_KEY_BYTES} bytes long"
            ));
        }
        if cfg.ttl.is_zero() {
            return Err("identity_jwt.ttl must be longer than zero".into());
        }
        let header = HeaderName::from_bytes(cfg.header.as_bytes())
            .map_err(|_| format!("identity_jwt.header {:?} is not a header name", cfg.header))?;
        Ok(Self {
            key: EncodingKey::from_secret(&key),
            issuer: issuer.to_string(),
            audience: cfg
                .audience
                .clone()
                .unwrap_or_else(|| upstream_url.to_string()),
            ttl: cfg.ttl,
            header,
        })
    }

    /// A fresh token for `caller`, as a header.
    pub fn header_for(&self, caller: &Caller) -> Option<(HeaderName, HeaderValue)> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: caller.owner(),
            preferred_username: caller.user().map(|(_, name)| name),
            mcpgate_subject_type: if caller.is_service() {
                "service"
            } else {
                "user"
            },
            client_id: caller.client_id.as_str(),
            client_name: match &caller.subject {
                Subject::Service { name } => Some(name),
                Subject::User { .. } => None,
            },
            iat: now,
            exp: now.saturating_add(self.ttl.as_secs()),
            jti: mcpgate_core::crypto::random_hex::<16>(),
        };
        match jsonwebtoken::encode(&Header::default(), &claims, &self.key) {
            Ok(t) => HeaderValue::from_str(&t)
                .ok()
                .map(|v| (self.header.clone(), v)),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign an identity token");
                None
            }
        }
    }
}

/// rmcp's reqwest client, adding a fresh identity token to every request.
#[derive(Clone)]
pub struct JwtClient {
    pub inner: reqwest::Client,
    pub signer: Arc<JwtSigner>,
    pub caller: Caller,
}

impl JwtClient {
    fn with_identity(
        &self,
        mut headers: HashMap<HeaderName, HeaderValue>,
    ) -> HashMap<HeaderName, HeaderValue> {
        if let Some((k, v)) = self.signer.header_for(&self.caller) {
            headers.insert(k, v);
        }
        headers
    }
}

impl StreamableHttpClient for JwtClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.with_identity(custom_headers);
        self.inner
            .post_message(uri, message, session_id, auth_header, headers)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let headers = self.with_identity(custom_headers);
        self.inner
            .delete_session(uri, session_id, auth_header, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let headers = self.with_identity(custom_headers);
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, headers)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use mcpgate_core::domain::{ClientId, Scope};

    #[test]
    fn tokens_carry_the_user_and_verify_with_the_shared_key() {
        let key = "k".repeat(40);
        // SAFETY: a variable name no other test reads or writes.
        unsafe { std::env::set_var("MCPGATE_TEST_JWT_KEY", &key) };
        let cfg: IdentityJwtConfig = toml::from_str("key_env = \"MCPGATE_TEST_JWT_KEY\"").unwrap();
        let signer =
            JwtSigner::new(&cfg, "https://gate.example", "https://up.example/mcp").unwrap();
        let caller = Caller {
            subject: Subject::User {
                id: "u1".into(),
                username: "alice".into(),
            },
            client_id: ClientId::parse("c").unwrap(),
            scope: Scope::parse("mcp").unwrap(),
            expires_at: 0,
            token_hash: "h".into(),
            groups: Default::default(),
        };
        let (name, value) = signer.header_for(&caller).unwrap();
        assert_eq!(name, "x-mcpgate-identity");
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["https://up.example/mcp"]);
        v.set_issuer(&["https://gate.example"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            value.to_str().unwrap(),
            &DecodingKey::from_secret(key.as_bytes()),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "u1");
        assert_eq!(data.claims["preferred_username"], "alice");
        assert_eq!(data.claims["mcpgate_subject_type"], "user");
        assert_eq!(data.claims["client_id"], "c");
        // A service is marked as one, named by its client, never as a user.
        let service = Caller {
            subject: Subject::Service {
                name: "alice".into(),
            },
            ..caller.clone()
        };
        let (_, value) = signer.header_for(&service).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(
            value.to_str().unwrap(),
            &DecodingKey::from_secret(key.as_bytes()),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "client:c");
        assert_eq!(data.claims["mcpgate_subject_type"], "service");
        assert_eq!(data.claims["client_name"], "alice");
        assert!(data.claims.get("preferred_username").is_none());
        let exp = data.claims["exp"].as_u64().unwrap();
        let iat = data.claims["iat"].as_u64().unwrap();
        assert_eq!(exp - iat, 60);
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(
                value.to_str().unwrap(),
                &DecodingKey::from_secret(b"another key another key another key!"),
                &v
            )
            .is_err()
        );
    }

    #[test]
    fn short_or_missing_keys_are_refused() {
        let cfg: IdentityJwtConfig =
            toml::from_str("key_env = \"MCPGATE_TEST_NO_SUCH_VAR\"").unwrap();
        assert!(
            JwtSigner::new(&cfg, "i", "u")
                .unwrap_err()
                .contains("not set")
        );
        let cfg: IdentityJwtConfig = toml::from_str("").unwrap();
        assert!(
            JwtSigner::new(&cfg, "i", "u")
                .unwrap_err()
                .contains("exactly one")
        );
        // SAFETY: a variable name no other test reads or writes.
        unsafe { std::env::set_var("MCPGATE_TEST_SHORT_KEY", "short") };
        let cfg: IdentityJwtConfig =
            toml::from_str("key_env = \"MCPGATE_TEST_SHORT_KEY\"").unwrap();
        assert!(
            JwtSigner::new(&cfg, "i", "u")
                .unwrap_err()
                .contains("at least 32")
        );
    }
}
