//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! "CIMD"; MCP 2025-11-25 and 2026-07-28 authorization, "Client ID Metadata
//! Documents"): a client whose `client_id` is an https URL publishes its
//! metadata (RFC 7591 §2 fields) at that URL; the authorization server
//! fetches it instead of keeping a registration.
//!
//! The rules here, with no I/O:
//! - [`DocumentPolicy::recognise`]: whether a `client_id` is a document URL
//!   ([`MetadataDocumentUrl`], draft §3), and whether its host is trusted
//!   (`trusted_client_hosts`).
//! - [`validate`]: a fetched document into [`ClientMetadata`] (draft §4.1):
//!   - its `client_id` equals the URL exactly;
//!   - `redirect_uris` is required (each checked as at registration,
//!     RFC 7591 §2 and RFC 9700 §2.1);
//!   - no `client_secret` or `client_secret_expires_at` (draft §4.1: there
//!     is no way to establish a shared secret with a document);
//!   - `token_endpoint_auth_method` is `none` or `private_key_jwt` (draft
//!     §4.1 forbids every method based on a shared secret). When the field
//!     is absent, RFC 7591 §2's default applies, `client_secret_basic`,
//!     which is such a method: the document is refused, with a message
//!     saying to declare `none` or `private_key_jwt`;
//!   - `private_key_jwt` needs `jwks_uri` (https) or `jwks` (RFC 7591 §2:
//!     not both);
//!   - the other known fields are type-checked as at registration
//!     ([`super::register::validate`]); unknown fields are ignored; `scope`
//!     is ignored (what a request may ask for is the server's scopes).
//! - [`fresh_until`]: how long a fetched document is used without fetching
//!   it again: `Cache-Control: max-age` (RFC 9111 §5.2.2.1), else `Expires`
//!   (§5.3), `no-store`/`no-cache` meaning as short as allowed, clamped to
//!   [[`MIN_FRESH`], [`MAX_FRESH`]] (draft §4.2 lets the server choose).
//! - [`may_serve_stale`]: a stale copy is served while the client's host
//!   cannot be reached (network error, timeout, `5xx`), for at most
//!   [`STALE_GRACE`] past its freshness.

use serde_json::{Map, Value};

use super::{OAuthError, register};
use crate::cache_control::{self, Lifetime};
use crate::domain::{ClientId, MetadataDocumentUrl, ParseError};
use crate::model::{ClientMetadata, TokenEndpointAuthMethod, UnixTime};

/// Largest document read (draft §6.4 suggests a small limit, e.g. 5 KB;
/// 64 KiB leaves room for long `redirect_uris` lists and inline `jwks`).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest wait for a document, seconds.
pub const FETCH_TIMEOUT_SECS: u64 = 5;
/// Shortest time a document is used without refetching, seconds.
pub const MIN_FRESH: i64 = 5 * 60;
/// Longest time a document is used without refetching, seconds.
pub const MAX_FRESH: i64 = 24 * 3600;
/// How long past its freshness a copy is served while its host is down.
pub const STALE_GRACE: i64 = 24 * 3600;

/// The operator's choices about metadata documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPolicy {
    /// `client_id_metadata_documents`: off, URL client ids are ordinary.
    pub enabled: bool,
    /// `trusted_client_hosts`, lower-case; empty means any host.
    trusted_hosts: Vec<String>,
}

impl Default for DocumentPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_hosts: Vec::new(),
        }
    }
}

impl DocumentPolicy {
    /// Documents off: URL client ids are ordinary ids.
    pub fn off() -> Self {
        Self {
            enabled: false,
            trusted_hosts: Vec::new(),
        }
    }

    /// `hosts` are plain host names (`chatgpt.com`), matched exactly.
    pub fn new<S: AsRef<str>>(enabled: bool, hosts: &[S]) -> Result<Self, ParseError> {
        let trusted_hosts = hosts
            .iter()
            .map(|h| {
                let h = h.as_ref().trim().to_ascii_lowercase();
                if h.is_empty() || h.contains(['/', ':', '@', '?', '#', ' ']) {
                    Err(ParseError::new(format!(
                        "{h:?} is not a host name (write chatgpt.com, not https://chatgpt.com/)"
                    )))
                } else {
                    Ok(h)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            enabled,
            trusted_hosts,
        })
    }

    /// `None` when `client_id` is an ordinary client id (or documents are
    /// off); the document URL, or why it cannot be used, otherwise.
    pub fn recognise(
        &self,
        client_id: &ClientId,
    ) -> Option<Result<MetadataDocumentUrl, OAuthError>> {
        if !self.enabled {
            return None;
        }
        let url = match MetadataDocumentUrl::recognise(client_id)? {
            Ok(u) => u,
            Err(e) => return Some(Err(OAuthError::invalid_client(e.0))),
        };
        if !self.trusted_hosts.is_empty() && !self.trusted_hosts.iter().any(|h| h == url.host()) {
            return Some(Err(OAuthError::invalid_client(format!(
                "this server accepts applications identified by their domain only from trusted hosts, and {} is not one of them; the operator can add it to trusted_client_hosts",
                url.host()
            ))));
        }
        Some(Ok(url))
    }
}

fn doc_err(d: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_client(format!("the metadata document is not acceptable: {d}"))
}

/// Validates a fetched document for `url` (see the module doc).
pub fn validate(url: &MetadataDocumentUrl, body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| doc_err(format_args!("it is not JSON ({e})")))?;
    let Some(obj) = value.as_object() else {
        return Err(doc_err("it is not a JSON object"));
    };
    match obj.get("client_id") {
        Some(Value::String(id)) if id == url.as_str() => {}
        Some(Value::String(_)) => {
            return Err(doc_err(
                "its client_id is not the URL it was fetched from (they must be equal, character for character)",
            ));
        }
        Some(_) => return Err(doc_err("its client_id must be a string")),
        None => return Err(doc_err("it has no client_id")),
    }
    for secret in ["client_secret", "client_secret_expires_at"] {
        if obj.contains_key(secret) {
            return Err(doc_err(format_args!(
                "it contains {secret}; a metadata document cannot carry a shared secret"
            )));
        }
    }
    let method = match obj.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {
            return Err(doc_err(
                "it has no token_endpoint_auth_method, and RFC 7591's default (client_secret_basic) needs a shared secret; declare none or private_key_jwt",
            ));
        }
        Some(Value::String(m)) => match TokenEndpointAuthMethod::parse(m) {
            Some(m @ (TokenEndpointAuthMethod::None | TokenEndpointAuthMethod::PrivateKeyJwt)) => m,
            Some(_) => {
                return Err(doc_err(format_args!(
                    "token_endpoint_auth_method {m:?} needs a shared secret, which a metadata document cannot have; use none or private_key_jwt"
                )));
            }
            None => {
                return Err(doc_err(format_args!(
                    "token_endpoint_auth_method {m:?} is not supported; use none or private_key_jwt"
                )));
            }
        },
        Some(_) => return Err(doc_err("token_endpoint_auth_method must be a string")),
    };
    let (jwks_uri, jwks) = keys(obj, method)?;

    // The remaining fields, checked as at registration.
    let mut rest = obj.clone();
    for own in ["token_endpoint_auth_method", "scope", "jwks", "jwks_uri"] {
        rest.remove(own);
    }
    rest.insert("token_endpoint_auth_method".into(), Value::from("none"));
    let mut metadata =
        register::validate(&Value::Object(rest), &[]).map_err(|e| doc_err(e.description))?;
    metadata.token_endpoint_auth_method = method;
    metadata.scope = None;
    metadata.jwks_uri = jwks_uri;
    metadata.jwks = jwks;
    Ok(metadata)
}

/// `jwks_uri` / `jwks` (RFC 7591 §2), required for `private_key_jwt`.
fn keys(
    obj: &Map<String, Value>,
    method: TokenEndpointAuthMethod,
) -> Result<(Option<String>, Option<Value>), OAuthError> {
    let jwks_uri = match obj.get("jwks_uri") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => match url::Url::parse(u) {
            Ok(parsed) if parsed.scheme() == "https" && parsed.fragment().is_none() => {
                Some(u.clone())
            }
            _ => return Err(doc_err("jwks_uri must be an https URL")),
        },
        Some(_) => return Err(doc_err("jwks_uri must be a string")),
    };
    let jwks = match obj.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(o)) if o.get("keys").is_some_and(Value::is_array) => Some(v.clone()),
        Some(_) => {
            return Err(doc_err(
                "jwks must be a JWK Set: an object with a keys array",
            ));
        }
    };
    if jwks_uri.is_some() && jwks.is_some() {
        return Err(doc_err(
            "it has both jwks_uri and jwks; RFC 7591 §2 allows one",
        ));
    }
    if method == TokenEndpointAuthMethod::PrivateKeyJwt && jwks_uri.is_none() && jwks.is_none() {
        return Err(doc_err(
            "private_key_jwt needs the client's keys: jwks_uri or jwks",
        ));
    }
    if method == TokenEndpointAuthMethod::None {
        return Ok((None, None));
    }
    Ok((jwks_uri, jwks))
}

/// Until when a document fetched at `now` is fresh: `max-age` if the
/// response has one, else `Expires` (as a Unix time; the caller parses the
/// date), `no-store`/`no-cache` as [`MIN_FRESH`], and without either the
/// shortest time too; always within [`MIN_FRESH`]..=[`MAX_FRESH`].
pub fn fresh_until(
    now: UnixTime,
    cache_control: Option<&str>,
    expires: Option<UnixTime>,
) -> UnixTime {
    let lifetime = match (cache_control::lifetime(cache_control), expires) {
        (Lifetime::NoStore | Lifetime::Malformed, _) => MIN_FRESH,
        (Lifetime::MaxAge(age), _) => age,
        (Lifetime::Unspecified, Some(at)) => at.saturating_sub(now),
        (Lifetime::Unspecified, None) => MIN_FRESH,
    };
    now.saturating_add(lifetime.clamp(MIN_FRESH, MAX_FRESH))
}

/// Whether a copy fresh until `fresh_until` may still be served at `now`
/// because its host cannot be reached.
pub fn may_serve_stale(fresh_until: UnixTime, now: UnixTime) -> bool {
    now <= fresh_until.saturating_add(STALE_GRACE)
}

#[cfg(test)]
mod tests;
