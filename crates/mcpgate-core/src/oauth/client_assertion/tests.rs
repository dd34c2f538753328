use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const NOW: i64 = 1_800_000_000;
const CLIENT: &str = "client-1";
const ISSUER: &str = "https://as.example";
const TOKEN_URL: &str = "https://as.example/token";

/// The federation tests' RSA key (2048 bits, PKCS#1) and its modulus.
const RSA_PEM: &str = include_str!("../../../../../tests/api/federation_keys/good.pem");
const RSA_N: &str = "nC81S63tzjZIQjrVxc7J2oW0ZTNGC2zrcTFA9crhzzuuYmQaRcsrvBGUE7tBgTmbfSEicM1K53ldgEz8RS3HXFy-Lb6WqkRF6uWTOsK6hnu9S4WSqIejyrNK6HXSK721dnam70YyBJ3YrgN3vriU-_xr7FJe-IhF6jiA2n9XuXDyGyPnYdtavWVsUkgKhB-3DuQJiCGdgERAV4SbpqB7y80e_e5vrQU8HGmAwtbMgZfeRme8VrjqY9H3OkWpbHnQtkgfm8EHYnAofSsgWx01U02dC1dlMjbrqtAjLQBmUoGAUc4LNQcMKdWMr8MwpUR2cXKRUgnoAGErUi9lQTt0CQ";

struct TestKey {
    sign: EncodingKey,
    jwk: Value,
}

fn rsa() -> TestKey {
    let body: String = RSA_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    TestKey {
        sign: EncodingKey::from_rsa_der(&STANDARD.decode(body).unwrap()),
        jwk: json!({"kty": "RSA", "kid": "r1", "n": RSA_N, "e": "AQAB"}),
    }
}

fn p256() -> TestKey {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::from_slice(&crate::crypto::random_bytes::<32>()).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    TestKey {
        sign: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": "e1",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}),
    }
}

fn ed25519() -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_bytes(&crate::crypto::random_bytes::<32>());
    TestKey {
        sign: EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": "d1",
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())}),
    }
}

fn claims() -> Value {
    json!({"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 60, "iat": NOW, "jti": "j1"})
}

fn sign(key: &TestKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, &key.sign).unwrap()
}

fn audiences() -> Vec<String> {
    vec![ISSUER.to_string(), TOKEN_URL.to_string()]
}

fn check(assertion: &str, jwks: &[&Value]) -> Result<Verified, AssertionError> {
    let set = json!({"keys": jwks});
    let keys = parse_jwks(&set).unwrap();
    let aud = audiences();
    verify(
        assertion,
        &keys,
        &Expected {
            client_id: CLIENT,
            audiences: &aud,
            now: NOW,
        },
    )
}

fn unsigned(header: Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[test]
fn assertions_signed_with_each_supported_algorithm_verify() {
    let (r, e, d) = (rsa(), p256(), ed25519());
    for (key, alg, kid) in [
        (&r, Algorithm::RS256, "r1"),
        (&r, Algorithm::PS256, "r1"),
        (&e, Algorithm::ES256, "e1"),
        (&d, Algorithm::EdDSA, "d1"),
    ] {
        let a = sign(key, alg, Some(kid), &claims());
        let v = check(&a, &[&r.jwk, &e.jwk, &d.jwk]).unwrap();
        assert_eq!(v.jti, "j1");
        assert_eq!(v.remember_until, NOW + 60 + LEEWAY);
        // Without a kid, every fitting key is tried.
        let a = sign(key, alg, None, &claims());
        assert!(check(&a, &[&r.jwk, &e.jwk, &d.jwk]).is_ok(), "{alg:?}");
    }
}

#[test]
fn a_wrong_key_fails_on_the_signature() {
    let (e, other) = (p256(), p256());
    let a = sign(&other, Algorithm::ES256, Some("e1"), &claims());
    let err = check(&a, &[&e.jwk]).unwrap_err();
    assert!(
        err.error.description.contains("signature"),
        "{}",
        err.error.description
    );
    assert_eq!(err.error.code.as_str(), "invalid_client");
    assert_eq!(err.error.event, Some(SecurityEvent::ClientAssertionInvalid));
    assert!(!err.refetch_keys, "a kid that matched needs no refetch");
}

#[test]
fn an_unknown_kid_asks_for_fresh_keys() {
    let e = p256();
    let a = sign(&e, Algorithm::ES256, Some("rotated"), &claims());
    let err = check(&a, &[&e.jwk]).unwrap_err();
    assert!(err.refetch_keys);
    assert!(err.error.description.contains("rotated"));
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let r = rsa();
    let none = unsigned(json!({"alg": "none", "kid": "r1"}), &claims(), "");
    let err = check(&none, &[&r.jwk]).unwrap_err();
    assert!(
        err.error.description.contains("\"none\""),
        "{}",
        err.error.description
    );
    // The classic confusion: HS256 keyed with the public key's bytes.
    for secret in [RSA_N.as_bytes().to_vec(), r.jwk.to_string().into_bytes()] {
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let err = check(&hs, &[&r.jwk]).unwrap_err();
        assert!(
            err.error.description.contains("HS256"),
            "{}",
            err.error.description
        );
    }
    let odd = unsigned(json!({"alg": "RS384"}), &claims(), "x");
    assert!(
        check(&odd, &[&r.jwk])
            .unwrap_err()
            .error
            .description
            .contains("not supported")
    );
}

#[test]
fn the_algorithm_must_fit_the_key() {
    let (r, e) = (rsa(), p256());
    // An RSA signature presented under an EC key's kid.
    let a = sign(&r, Algorithm::RS256, Some("e1"), &claims());
    let err = check(&a, &[&e.jwk]).unwrap_err();
    assert!(
        err.error.description.contains("does not fit"),
        "{}",
        err.error.description
    );
    // The JWK's own alg narrows the choice: an RS256-only key refuses PS256.
    let mut pinned = r.jwk.clone();
    pinned["alg"] = json!("RS256");
    let a = sign(&r, Algorithm::PS256, Some("r1"), &claims());
    assert!(
        check(&a, &[&pinned])
            .unwrap_err()
            .error
            .description
            .contains("does not fit")
    );
    let a = sign(&r, Algorithm::RS256, Some("r1"), &claims());
    assert!(check(&a, &[&pinned]).is_ok());
}

#[test]
fn each_claim_check_names_itself() {
    let e = p256();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"iss": "other"}), "iss"),
        (json!({"sub": "other"}), "sub"),
        (json!({"iss": null}), "no iss"),
        (json!({"aud": "https://elsewhere.example/token"}), "aud"),
        (json!({"aud": null}), "no aud"),
        (json!({"exp": null}), "no exp"),
        (json!({"exp": NOW - LEEWAY - 1}), "expired"),
        (json!({"exp": NOW + MAX_LIFETIME + LEEWAY + 1}), "ahead"),
        (json!({"nbf": NOW + LEEWAY + 5}), "nbf"),
        (json!({"iat": NOW + LEEWAY + 5}), "iat"),
        (json!({"jti": null}), "no jti"),
        (json!({"jti": ""}), "jti"),
        (json!({"exp": "soon"}), "number"),
    ];
    for (change, needle) in cases {
        let mut c = claims();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let err = check(&sign(&e, Algorithm::ES256, Some("e1"), &c), &[&e.jwk]).unwrap_err();
        assert!(
            err.error.description.contains(needle),
            "{change}: {}",
            err.error.description
        );
        assert_eq!(err.error.code.as_str(), "invalid_client");
    }
}

#[test]
fn leeway_and_audience_forms_are_accepted() {
    let e = p256();
    for change in [
        json!({"exp": NOW - LEEWAY + 1}),
        json!({"exp": NOW + MAX_LIFETIME + LEEWAY}),
        json!({"nbf": NOW + LEEWAY, "iat": NOW + LEEWAY}),
        json!({"aud": ISSUER}),
        json!({"aud": ["https://other.example", TOKEN_URL]}),
    ] {
        let mut c = claims();
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        let a = sign(&e, Algorithm::ES256, Some("e1"), &c);
        assert!(check(&a, &[&e.jwk]).is_ok(), "{change}");
    }
}

#[test]
fn the_subject_is_read_before_verification() {
    let e = p256();
    let a = sign(&e, Algorithm::ES256, None, &claims());
    assert_eq!(claimed_subject(&a).unwrap(), CLIENT);
    assert!(claimed_subject("not-a-jwt").is_err());
    assert!(claimed_subject(&"a.b.c".repeat(4000)).is_err());
}

#[test]
fn registered_key_sets_must_be_public_supported_keys() {
    let (r, e, d) = (rsa(), p256(), ed25519());
    assert!(validate_jwks(&json!({"keys": [r.jwk, e.jwk, d.jwk]})).is_ok());
    let mut private = e.jwk.clone();
    private["d"] = json!("AAAA");
    let cases = [
        (json!({"keys": []}), "between"),
        (json!([e.jwk]), "keys"),
        (json!({"keys": [private]}), "private"),
        (
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "private",
        ),
        (
            json!({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}),
            "P-384",
        ),
        (
            json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
            "2048",
        ),
        (
            json!({"keys": [{"kty": "RSA", "n": RSA_N, "e": "AQAB", "alg": "ES256"}]}),
            "alg",
        ),
        (
            json!({"keys": [{"kty": "RSA", "n": RSA_N, "e": "AQAB", "use": "enc"}]}),
            "no signature key",
        ),
    ];
    for (set, needle) in cases {
        let err = validate_jwks(&set).unwrap_err();
        assert!(err.contains(needle), "{set}: {err}");
    }
    let big: Vec<Value> = (0..11).map(|_| e.jwk.clone()).collect();
    assert!(validate_jwks(&json!({"keys": big})).is_err());
    // A served set skips what it cannot use, but never holds private keys.
    let mixed = json!({"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}, e.jwk]});
    assert_eq!(parse_jwks(&mixed).unwrap().len(), 1);
    let mut private = r.jwk.clone();
    private["p"] = json!("AQAB");
    assert!(parse_jwks(&json!({"keys": [private]})).is_err());
}

#[test]
fn refetching_is_allowed_once_every_thirty_seconds() {
    assert!(may_refetch(None, NOW));
    assert!(!may_refetch(Some(NOW), NOW));
    assert!(!may_refetch(Some(NOW - REFETCH_INTERVAL + 1), NOW));
    assert!(may_refetch(Some(NOW - REFETCH_INTERVAL), NOW));
    // A clock that went backwards does not lock the key set forever.
    assert!(may_refetch(Some(NOW + 100), NOW));
}

#[test]
fn cache_lifetime_follows_cache_control_within_bounds() {
    assert_eq!(jwks_ttl(None), JWKS_TTL_DEFAULT);
    assert_eq!(jwks_ttl(Some("public, max-age=7200")), 7200);
    assert_eq!(jwks_ttl(Some("max-age=5")), JWKS_TTL_MIN);
    assert_eq!(jwks_ttl(Some("max-age=9999999")), JWKS_TTL_MAX);
    assert_eq!(jwks_ttl(Some("no-store")), JWKS_TTL_MIN);
    assert_eq!(jwks_ttl(Some("private")), JWKS_TTL_DEFAULT);
}
