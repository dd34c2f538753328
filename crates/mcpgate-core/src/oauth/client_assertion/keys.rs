//! The client's keys (RFC 7517 JWK Sets, as `jwks` or at `jwks_uri`,
//! RFC 7591 §2): which algorithms each key may verify, the checks on a
//! registered set, and the rules for caching a fetched one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::{ALGORITHMS, alg_name};
use crate::cache_control::{self, Lifetime};

/// The most keys a client's JWK Set may hold.
pub const MAX_KEYS: usize = 10;

/// The largest JWK Set a client may register inline, in bytes of JSON.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;

/// Members that only a private (or symmetric) key has (RFC 7518 §6.2.2,
/// §6.3.2, §6.4; RFC 8037 §2).
pub const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// One public key of a client, with the algorithms it may verify.
#[derive(Clone)]
pub struct ClientKey {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub(super) key: DecodingKey,
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
    match cache_control::lifetime(cache_control) {
        Lifetime::NoStore => JWKS_TTL_MIN,
        Lifetime::MaxAge(t) => t.clamp(JWKS_TTL_MIN, JWKS_TTL_MAX),
        Lifetime::Malformed | Lifetime::Unspecified => JWKS_TTL_DEFAULT,
    }
}
