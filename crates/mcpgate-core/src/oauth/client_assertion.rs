//! `private_key_jwt` client authentication: the client signs a JWT with its
//! private key and sends it as `client_assertion` (RFC 7523 §2.2,
//! RFC 7521 §4.2); the server checks it against the client's public keys
//! (`jwks` or `jwks_uri`, RFC 7591 §2).
//!
//! The rules, each failure an `invalid_client` whose description names the
//! check (RFC 7523 §3):
//! - **Algorithm** (RFC 8725 §3.1): one of [`ALGORITHMS`], and one the key
//!   itself allows: RSA keys RS256/PS256, P-256 keys ES256, Ed25519 keys
//!   EdDSA, narrowed further by the JWK's own `alg`. The token's `alg` only
//!   selects among those: `none`, every HS* (the public key used as an HMAC
//!   secret) and RS/PS with an EC key are refused.
//! - **Key**: the JWK whose `kid` the header names; without a `kid`, every
//!   key that allows the algorithm is tried. Keys with `use` other than
//!   `sig` are skipped.
//! - **Claims** ([`check_claims`]): `iss` = `sub` = the client id (§3 items
//!   1–2); `aud` holds one of the accepted audiences, the issuer or the
//!   endpoint's URL (§3 item 3); `exp` is required, not past and at most
//!   [`MAX_LIFETIME`] ahead (§3 item 4); `nbf` and `iat` are honoured
//!   (§3 items 5–6), all with [`LEEWAY`]; `jti` is required (§3 item 7) so
//!   that the caller can make it single-use until `exp`.
//!
//! The JWK Set a client registers is checked by [`validate_jwks`]: public
//! keys of the supported types only, no private parts, at most
//! [`MAX_KEYS`] keys.
//!
//! The key rules (JWK Sets, which algorithm a key allows, caching a
//! fetched set) are in the `keys` submodule, re-exported here.
//!
//! Time is an argument; nothing here reads the clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::{OAuthError, SecurityEvent};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signature algorithms accepted, as advertised in the metadata
/// (`token_endpoint_auth_signing_alg_values_supported`).
pub const ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: i64 = 60;

/// How far ahead of now `exp` may be, in seconds (plus [`LEEWAY`]).
pub const MAX_LIFETIME: i64 = 300;

/// The largest assertion read, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

fn invalid(d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(d).with_event(SecurityEvent::ClientAssertionInvalid)
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "other",
    }
}

fn segment(assertion: &str, i: usize) -> Result<Map<String, Value>, OAuthError> {
    let part = assertion.split('.').nth(i).unwrap_or("");
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .ok_or_else(|| {
            invalid(
                "client_assertion is not a JWT (three base64url parts: header.claims.signature)",
            )
        })
}

fn well_formed(assertion: &str) -> Result<(), OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(invalid(format!(
            "client_assertion is larger than {MAX_ASSERTION_BYTES} bytes"
        )));
    }
    if assertion.split('.').count() != 3 {
        return Err(invalid(
            "client_assertion is not a signed JWT (JWS compact form: header.claims.signature)",
        ));
    }
    Ok(())
}

/// The `sub` of an assertion, read without checking anything: the client
/// it claims to be, so that its keys can be found (RFC 7521 §4.2: the
/// `client_id` parameter is optional).
pub fn claimed_subject(assertion: &str) -> Result<String, OAuthError> {
    well_formed(assertion)?;
    let claims = segment(assertion, 1)?;
    claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| invalid("client_assertion has no sub claim; sub must be the client_id"))
}

/// The header's algorithm, if it is one of [`ALGORITHMS`].
pub fn header_algorithm(assertion: &str) -> Result<Algorithm, OAuthError> {
    let header = segment(assertion, 0)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "PS256" => Ok(Algorithm::PS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        "none" | "None" | "NONE" => Err(invalid(
            "client_assertion has alg \"none\": an unsigned assertion proves nothing",
        )),
        a if a.starts_with("HS") => Err(invalid(format!(
            "client_assertion has alg {a:?}: shared-secret (HMAC) signatures are not accepted for private_key_jwt; sign with the private key ({})",
            ALGORITHMS.join(", ")
        ))),
        a => Err(invalid(format!(
            "client_assertion alg {a:?} is not supported; use one of {}",
            ALGORITHMS.join(", ")
        ))),
    }
}

/// What the assertion must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub client_id: &'a str,
    /// The issuer and the URL of the endpoint the assertion was sent to.
    pub audiences: &'a [String],
    pub now: i64,
}

/// A verified assertion: its `jti` (to be used once) and until when the
/// `jti` must be remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub jti: String,
    /// `exp` plus [`LEEWAY`]: the assertion is accepted until then.
    pub remember_until: i64,
}

/// A failed verification. `refetch_keys` is set when fresher keys might
/// make it pass (no key matched the `kid`, or no key verified a token
/// without one): the caller may refetch a `jwks_uri` and try once more.
#[derive(Debug, Clone)]
pub struct AssertionError {
    pub error: OAuthError,
    pub refetch_keys: bool,
}

impl From<OAuthError> for AssertionError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            refetch_keys: false,
        }
    }
}

/// Verifies the assertion's signature with one of `keys`, then its claims.
pub fn verify(
    assertion: &str,
    keys: &[ClientKey],
    expected: &Expected<'_>,
) -> Result<Verified, AssertionError> {
    well_formed(assertion)?;
    let alg = header_algorithm(assertion)?;
    let header = segment(assertion, 0)?;
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(invalid("client_assertion's kid must be a string").into()),
    };
    let named: Vec<&ClientKey> = match kid {
        Some(k) => keys
            .iter()
            .filter(|c| c.kid.as_deref() == Some(k))
            .collect(),
        None => keys.iter().collect(),
    };
    if named.is_empty() {
        return Err(AssertionError {
            error: invalid(format!(
                "no key of the client has kid {:?}; check the client's jwks or jwks_uri",
                kid.unwrap_or_default()
            )),
            refetch_keys: true,
        });
    }
    let fitting: Vec<&ClientKey> = named
        .into_iter()
        .filter(|c| c.algorithms.contains(&alg))
        .collect();
    if fitting.is_empty() {
        return Err(AssertionError {
            error: invalid(format!(
                "client_assertion alg {} does not fit the client's key{}: the algorithm must match the key type (RSA: RS256/PS256, P-256: ES256, Ed25519: EdDSA) and the key's own alg",
                alg_name(alg),
                kid.map(|k| format!(" {k:?}")).unwrap_or_default()
            )),
            refetch_keys: kid.is_none(),
        });
    }
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = fitting.iter().find_map(|k| {
        jsonwebtoken::decode::<Map<String, Value>>(assertion, &k.key, &validation)
            .ok()
            .map(|d| d.claims)
    });
    let Some(claims) = claims else {
        return Err(AssertionError {
            error: invalid(
                "client_assertion's signature does not verify with the client's registered keys (wrong key?)",
            ),
            refetch_keys: kid.is_none(),
        });
    };
    Ok(check_claims(&claims, expected)?)
}

fn int_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OAuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| {
                invalid(format!(
                    "client_assertion's {name} must be a number (seconds since 1970)"
                ))
            }),
    }
}

/// The claim checks of RFC 7523 §3 on verified claims.
pub fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<Verified, OAuthError> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    let now = expected.now;
    match s("iss") {
        Some(iss) if iss == expected.client_id => {}
        Some(iss) => {
            return Err(invalid(format!(
                "client_assertion's iss {iss:?} is not the client_id {:?}",
                expected.client_id
            )));
        }
        None => {
            return Err(invalid(
                "client_assertion has no iss claim; iss must be the client_id",
            ));
        }
    }
    match s("sub") {
        Some(sub) if sub == expected.client_id => {}
        Some(sub) => {
            return Err(invalid(format!(
                "client_assertion's sub {sub:?} is not the client_id {:?}",
                expected.client_id
            )));
        }
        None => {
            return Err(invalid(
                "client_assertion has no sub claim; sub must be the client_id",
            ));
        }
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if auds.is_empty() {
        return Err(invalid(format!(
            "client_assertion has no aud claim; aud must be {}",
            expected.audiences.join(" or ")
        )));
    }
    if !auds
        .iter()
        .any(|a| expected.audiences.iter().any(|e| e == a))
    {
        return Err(invalid(format!(
            "client_assertion's aud {auds:?} does not name this server; use {}",
            expected.audiences.join(" or ")
        )));
    }
    let Some(exp) = int_claim(claims, "exp")? else {
        return Err(invalid("client_assertion has no exp claim; it is required"));
    };
    if exp + LEEWAY <= now {
        return Err(invalid(format!(
            "client_assertion expired {} seconds ago",
            now - exp
        )));
    }
    if exp > now + MAX_LIFETIME + LEEWAY {
        return Err(invalid(format!(
            "client_assertion's exp is {} seconds ahead; at most {MAX_LIFETIME} are accepted",
            exp - now
        )));
    }
    if let Some(nbf) = int_claim(claims, "nbf")?
        && nbf > now + LEEWAY
    {
        return Err(invalid(format!(
            "client_assertion is not valid yet (nbf is {} seconds ahead)",
            nbf - now
        )));
    }
    if let Some(iat) = int_claim(claims, "iat")?
        && iat > now + LEEWAY
    {
        return Err(invalid(format!(
            "client_assertion's iat is {} seconds in the future",
            iat - now
        )));
    }
    let jti = match s("jti") {
        Some(j) if !j.is_empty() && j.len() <= 256 => j.to_string(),
        Some(_) => {
            return Err(invalid(
                "client_assertion's jti must be 1 to 256 characters",
            ));
        }
        None => {
            return Err(invalid(
                "client_assertion has no jti claim; a unique jti is required so that an assertion is used once",
            ));
        }
    };
    Ok(Verified {
        jti,
        remember_until: exp + LEEWAY,
    })
}

/// The `jti` was seen before: the assertion is a replay (RFC 7523 §3 item 7).
pub fn replayed() -> OAuthError {
    OAuthError::invalid_client(
        "client_assertion's jti was already used: an assertion may be used only once; sign a new one",
    )
    .with_event(SecurityEvent::ClientAssertionReplay)
}

mod keys;
pub use keys::*;

#[cfg(test)]
mod tests;
