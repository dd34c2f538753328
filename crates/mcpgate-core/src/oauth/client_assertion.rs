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
//! Time is an argument; nothing here reads the clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
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

/// The most keys a client's JWK Set may hold.
pub const MAX_KEYS: usize = 10;

/// The largest JWK Set a client may register inline, in bytes of JSON.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;

/// Members that only a private (or symmetric) key has (RFC 7518 §6.2.2,
/// §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn invalid(d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(d).with_event(SecurityEvent::ClientAssertionInvalid)
}

/// One public key of a client, with the algorithms it may verify.
#[derive(Clone)]
pub struct ClientKey {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

fn b64_len(v: Option<&Value>, name: &str) -> Result<usize, String> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the key has no {name}"))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map(|b| b.len())
        .map_err(|_| format!("the key's {name} is not base64url"))
}

/// The algorithms a JWK may verify: from its type and curve, narrowed by
/// its own `alg` if it has one. An error says why the key is unusable.
pub fn key_algorithms(jwk: &Map<String, Value>) -> Result<Vec<Algorithm>, String> {
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "the key has the private member {m:?}: register public keys only"
        ));
    }
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
    let crv = jwk.get("crv").and_then(Value::as_str);
    let by_type = match (kty, crv) {
        ("RSA", _) => {
            let n = b64_len(jwk.get("n"), "n")?;
            b64_len(jwk.get("e"), "e")?;
            if n < 256 {
                return Err("RSA keys must have at least 2048 bits".into());
            }
            vec![Algorithm::RS256, Algorithm::PS256]
        }
        ("EC", Some("P-256")) => {
            if b64_len(jwk.get("x"), "x")? != 32 || b64_len(jwk.get("y"), "y")? != 32 {
                return Err("a P-256 key's x and y must be 32 bytes each".into());
            }
            vec![Algorithm::ES256]
        }
        ("OKP", Some("Ed25519")) => {
            if b64_len(jwk.get("x"), "x")? != 32 {
                return Err("an Ed25519 key's x must be 32 bytes".into());
            }
            vec![Algorithm::EdDSA]
        }
        ("EC" | "OKP", c) => {
            return Err(format!(
                "key type {kty} with curve {c:?} is not supported; use P-256 (EC) or Ed25519 (OKP)"
            ));
        }
        _ => {
            return Err(format!(
                "key type {kty:?} is not supported; use RSA, EC (P-256) or OKP (Ed25519)"
            ));
        }
    };
    match jwk.get("alg") {
        None | Some(Value::Null) => Ok(by_type),
        Some(Value::String(a)) => {
            let fits: Vec<Algorithm> = by_type
                .into_iter()
                .filter(|alg| alg_name(*alg) == a)
                .collect();
            if fits.is_empty() {
                Err(format!(
                    "the key's alg {a:?} does not fit its type {kty} or is not one of {}",
                    ALGORITHMS.join(", ")
                ))
            } else {
                Ok(fits)
            }
        }
        Some(_) => Err("the key's alg must be a string".into()),
    }
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

fn decoding_key(jwk: &Map<String, Value>) -> Option<DecodingKey> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    match s("kty")? {
        "RSA" => DecodingKey::from_rsa_components(s("n")?, s("e")?).ok(),
        "EC" => DecodingKey::from_ec_components(s("x")?, s("y")?).ok(),
        "OKP" => DecodingKey::from_ed_components(s("x")?).ok(),
        _ => None,
    }
}

fn one_key(jwk: &Value) -> Result<Option<ClientKey>, String> {
    let obj = jwk.as_object().ok_or("each key must be a JSON object")?;
    let algorithms = key_algorithms(obj)?;
    match obj.get("use") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u == "sig" => {}
        // An encryption key is not for us; not an error in a key set.
        Some(Value::String(_)) => return Ok(None),
        Some(_) => return Err("the key's use must be a string".into()),
    }
    let kid = match obj.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("the key's kid must be a string".into()),
    };
    let key = decoding_key(obj).ok_or("the key's parameters are not valid")?;
    Ok(Some(ClientKey {
        kid,
        algorithms,
        key,
    }))
}

fn key_array(jwks: &Value) -> Result<&Vec<Value>, String> {
    jwks.as_object()
        .and_then(|o| o.get("keys"))
        .and_then(Value::as_array)
        .ok_or_else(|| "a JWK Set is a JSON object with a \"keys\" array (RFC 7517 §5)".into())
}

/// Checks a JWK Set a client registers (inline `jwks`): a `keys` array of
/// 1 to [`MAX_KEYS`] public signature keys of supported types, no private
/// parts, at most [`MAX_JWKS_BYTES`] of JSON.
pub fn validate_jwks(jwks: &Value) -> Result<(), String> {
    if jwks.to_string().len() > MAX_JWKS_BYTES {
        return Err(format!(
            "jwks is larger than {MAX_JWKS_BYTES} bytes; publish the keys at a jwks_uri instead"
        ));
    }
    let keys = key_array(jwks)?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("jwks must hold between 1 and {MAX_KEYS} keys"));
    }
    let mut usable = 0;
    for (i, k) in keys.iter().enumerate() {
        if one_key(k)
            .map_err(|e| format!("jwks key {i}: {e}"))?
            .is_some()
        {
            usable += 1;
        }
    }
    if usable == 0 {
        return Err("jwks holds no signature key (\"use\": \"sig\")".into());
    }
    Ok(())
}

/// The usable keys of a JWK Set as served by a client (at its `jwks_uri`,
/// or inline): keys of unsupported types are skipped, as RFC 7517 §5
/// asks; a key with private parts makes the whole set unusable.
pub fn parse_jwks(jwks: &Value) -> Result<Vec<ClientKey>, String> {
    let keys = key_array(jwks)?;
    let mut out = Vec::new();
    for k in keys.iter().take(MAX_KEYS * 5) {
        let private = k
            .as_object()
            .is_some_and(|o| PRIVATE_MEMBERS.iter().any(|m| o.contains_key(*m)));
        if private {
            return Err(
                "the client's JWK Set holds a private key; it must hold public keys only".into(),
            );
        }
        if let Ok(Some(key)) = one_key(k) {
            out.push(key);
        }
    }
    Ok(out)
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

/// Seconds between two fetches of one `jwks_uri` caused by an unknown key.
pub const REFETCH_INTERVAL: i64 = 30;

/// Whether a `jwks_uri` whose last fetch was attempted at `last_attempt`
/// may be fetched again at `now` because a key was not found: at most once
/// every [`REFETCH_INTERVAL`] seconds, so that tokens naming made-up `kid`s
/// cannot make the server hammer the client's host.
pub fn may_refetch(last_attempt: Option<i64>, now: i64) -> bool {
    last_attempt.is_none_or(|t| now - t >= REFETCH_INTERVAL || now < t)
}

/// Shortest and longest time a fetched JWK Set is kept, in seconds.
pub const JWKS_TTL_MIN: i64 = 300;
pub const JWKS_TTL_MAX: i64 = 86_400;
/// Kept this long when the response says nothing.
pub const JWKS_TTL_DEFAULT: i64 = 3_600;

/// How long to keep a fetched JWK Set, from its `Cache-Control` header:
/// `max-age` clamped to [`JWKS_TTL_MIN`]..=[`JWKS_TTL_MAX`]; `no-store`
/// or `no-cache` give the minimum (an unknown `kid` refetches anyway).
pub fn jwks_ttl(cache_control: Option<&str>) -> i64 {
    let Some(cc) = cache_control else {
        return JWKS_TTL_DEFAULT;
    };
    let mut ttl = None;
    for d in cc.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return JWKS_TTL_MIN;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            ttl = v.trim_matches('"').parse::<i64>().ok();
        }
    }
    ttl.map_or(JWKS_TTL_DEFAULT, |t| t.clamp(JWKS_TTL_MIN, JWKS_TTL_MAX))
}

#[cfg(test)]
mod tests;
