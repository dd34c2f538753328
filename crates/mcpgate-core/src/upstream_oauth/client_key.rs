//! mcpgate's own signing key as an OAuth client of upstream authorization
//! servers, and the `private_key_jwt` client assertions it signs with it
//! (RFC 7523 §2.2 and §3, RFC 7521 §4.2).
//!
//! - **Key.** An Ed25519 key (RFC 8037 §2, JWS `alg` `EdDSA`), its 32-byte
//!   seed derived from the server key with HKDF-SHA256 (RFC 5869; no salt,
//!   info [`INFO`]). Every instance of a cluster shares the server key and
//!   so the signing key; nothing new is stored. Rotating the server key
//!   rotates this key (upstreams that cache `jwks.json` see the new `kid`
//!   and refetch). `Debug` shows only the `kid`.
//! - **`kid`**: the RFC 7638 JWK thumbprint (SHA-256, base64url) of the
//!   public key, so it changes exactly when the key does.
//! - **JWK Set** ([`ClientSigningKey::jwks`]): the public key only, served
//!   at `<public_url>/oauth/jwks.json` (RFC 7517 §5).
//! - **Assertion** ([`ClientSigningKey::assertion`]): `iss` = `sub` = the
//!   client id, `aud` = the authorization server's issuer (RFC 7523 §3
//!   item 3; draft-ietf-oauth-rfc7523bis prefers the issuer alone), a
//!   random `jti`, `iat` = now and `exp` = now + [`ASSERTION_LIFETIME`].
//!
//! Which method mcpgate uses at an upstream is [`choose_auth_method`].
//! Time and randomness are arguments; nothing here reads the clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The HKDF `info` of the signing key: distinct from every other key
/// derived from the server key.
pub const INFO: &[u8] = b"mcpgate upstream client signing key v1 (Ed25519)";

/// How long an assertion is valid, seconds (RFC 7523 §3 item 4: short).
pub const ASSERTION_LIFETIME: i64 = 60;

/// RFC 8410 §7 / RFC 5958: the PKCS#8 v1 prefix of an Ed25519 private key
/// (`SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
/// OCTET STRING (32 bytes) } }`), followed by the 32-byte seed.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// How mcpgate authenticates as a client at an upstream's token and
/// revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// A public client: `client_id` in the form, PKCE protects the code.
    None,
    /// A configured client secret, by HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A JWT signed with mcpgate's key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The RFC 7591 `token_endpoint_auth_method` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }
}

/// The method mcpgate uses with a client identity it makes itself (a
/// metadata document or dynamic registration), from the authorization
/// server's `token_endpoint_auth_methods_supported` (RFC 8414 §2):
///
/// - `none` listed: a public client with PKCE (what MCP clients are);
/// - else `private_key_jwt` listed: mcpgate's signing key;
/// - otherwise `none` too. For an absent list RFC 8414's default is
///   `client_secret_basic`, and some servers list only secret methods,
///   yet MCP servers commonly register and serve public clients all the
///   same; mcpgate tries `none` and the server answers (a server that
///   really needs a secret needs `oauth_client_id` and
///   `oauth_client_secret_env`).
pub fn choose_auth_method(supported: &[String]) -> ClientAuthMethod {
    let has = |m: &str| supported.iter().any(|s| s == m);
    if !has("none") && has("private_key_jwt") {
        ClientAuthMethod::PrivateKeyJwt
    } else {
        ClientAuthMethod::None
    }
}

/// mcpgate's client signing key. `Debug` shows only the `kid`.
#[derive(Clone)]
pub struct ClientSigningKey {
    kid: String,
    /// The public key (RFC 8037 §2 `x`).
    x: [u8; 32],
    encoding: EncodingKey,
}

impl std::fmt::Debug for ClientSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSigningKey")
            .field("kid", &self.kid)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// The claims of one assertion.
#[derive(Debug, Clone)]
pub struct AssertionClaims<'a> {
    pub client_id: &'a str,
    /// The authorization server's issuer.
    pub audience: &'a str,
    pub now: i64,
    /// A random, single-use id (RFC 7523 §3 item 7).
    pub jti: &'a str,
}

impl ClientSigningKey {
    /// The key derived from `server_key` (see the module doc).
    pub fn derive(server_key: &[u8]) -> Self {
        let mut seed = [0u8; 32];
        // HKDF-SHA256 gives up to 255 * 32 bytes; 32 never fails.
        if Hkdf::<Sha256>::new(None, server_key)
            .expand(INFO, &mut seed)
            .is_err()
        {
            seed = crate::crypto::hmac_sha256(server_key, INFO);
        }
        Self::from_seed(&seed)
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        let x = SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(seed);
        Self {
            kid: thumbprint(&x),
            x,
            encoding: EncodingKey::from_ed_der(&der),
        }
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK (RFC 8037 §2).
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.x),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// The public JWK Set (RFC 7517 §5).
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// A signed client assertion (compact JWS, `alg` `EdDSA`, `kid` set).
    pub fn assertion(&self, c: &AssertionClaims<'_>) -> Result<String, String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": c.client_id,
            "sub": c.client_id,
            "aud": c.audience,
            "jti": c.jti,
            "iat": c.now,
            "exp": c.now + ASSERTION_LIFETIME,
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| format!("signing the client assertion failed: {e}"))
    }
}

/// RFC 7638 §3.2: SHA-256 over the required members of an OKP key in
/// lexicographic order, no whitespace.
fn thumbprint(x: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client_assertion::{self, ASSERTION_TYPE, Expected, parse_jwks};

    const NOW: i64 = 1_800_000_000;
    const CLIENT: &str = "https://gate.example/oauth/client-jwt.json";
    const ISSUER: &str = "https://as.example";

    fn seed(b64: &str) -> [u8; 32] {
        URL_SAFE_NO_PAD.decode(b64).unwrap().try_into().unwrap()
    }

    #[test]
    fn the_key_and_kid_match_the_rfc_8037_appendix_a_vectors() {
        // RFC 8037 A.1 (private key d), A.2 (public x), A.3 (thumbprint).
        let k = ClientSigningKey::from_seed(&seed("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"));
        assert_eq!(
            k.public_jwk()["x"],
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(k.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn the_key_is_derived_deterministically_and_per_server_key() {
        let a = ClientSigningKey::derive(&[7; 32]);
        assert_eq!(a.kid(), ClientSigningKey::derive(&[7; 32]).kid());
        assert_ne!(a.kid(), ClientSigningKey::derive(&[8; 32]).kid());
        // Not the vault's or the PKCE verifier's derivation: HKDF with its
        // own label.
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(None, &[7; 32])
            .expand(INFO, &mut expected)
            .unwrap();
        assert_eq!(
            a.x,
            SigningKey::from_bytes(&expected).verifying_key().to_bytes()
        );
    }

    #[test]
    fn the_jwks_holds_only_the_public_key_and_debug_only_the_kid() {
        let k = ClientSigningKey::derive(&[7; 32]);
        let jwks = k.jwks();
        client_assertion::validate_jwks(&jwks).unwrap();
        let jwk = jwks["keys"][0].as_object().unwrap();
        assert!(!jwk.contains_key("d"));
        assert_eq!(jwk["kid"], k.kid());
        let debug = format!("{k:?}");
        assert!(debug.contains(k.kid()) && debug.contains("REDACTED"));
        assert!(!debug.contains("encoding"));
    }

    fn header_and_claims(jwt: &str) -> (Value, Value) {
        let part = |i: usize| -> Value {
            serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(jwt.split('.').nth(i).unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        (part(0), part(1))
    }

    #[test]
    fn an_assertion_has_the_rfc_7523_claims_and_verifies_with_the_public_jwk() {
        let k = ClientSigningKey::derive(&[7; 32]);
        let jwt = k
            .assertion(&AssertionClaims {
                client_id: CLIENT,
                audience: ISSUER,
                now: NOW,
                jti: "j-1",
            })
            .unwrap();
        let (header, claims) = header_and_claims(&jwt);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], k.kid());
        assert_eq!(claims["iss"], CLIENT);
        assert_eq!(claims["sub"], CLIENT);
        assert_eq!(claims["aud"], ISSUER);
        assert_eq!(claims["jti"], "j-1");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + ASSERTION_LIFETIME);
        // The verifier mcpgate runs as an authorization server accepts it.
        let keys = parse_jwks(&k.jwks()).unwrap();
        let audiences = [ISSUER.to_string()];
        let expected = Expected {
            client_id: CLIENT,
            audiences: &audiences,
            now: NOW + 10,
        };
        let v = client_assertion::verify(&jwt, &keys, &expected).unwrap();
        assert_eq!(v.jti, "j-1");
        assert!(ASSERTION_TYPE.ends_with("jwt-bearer"));
    }

    #[test]
    fn another_key_an_expired_assertion_or_another_audience_is_refused() {
        let k = ClientSigningKey::derive(&[7; 32]);
        let claims = AssertionClaims {
            client_id: CLIENT,
            audience: ISSUER,
            now: NOW,
            jti: "j-1",
        };
        let jwt = k.assertion(&claims).unwrap();
        let audiences = [ISSUER.to_string()];
        let expected = |now| Expected {
            client_id: CLIENT,
            audiences: &audiences,
            now,
        };
        // Another server key: another key, even with this kid.
        let mut other = ClientSigningKey::derive(&[8; 32]).public_jwk();
        other["kid"] = Value::from(k.kid());
        let other_keys = parse_jwks(&json!({ "keys": [other] })).unwrap();
        assert!(client_assertion::verify(&jwt, &other_keys, &expected(NOW)).is_err());
        let keys = parse_jwks(&k.jwks()).unwrap();
        let late = NOW + ASSERTION_LIFETIME + client_assertion::LEEWAY + 1;
        assert!(client_assertion::verify(&jwt, &keys, &expected(late)).is_err());
        let elsewhere = ["https://other.example".to_string()];
        let e = Expected {
            client_id: CLIENT,
            audiences: &elsewhere,
            now: NOW,
        };
        assert!(client_assertion::verify(&jwt, &keys, &e).is_err());
        // Tampered claims break the signature.
        let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"iss": "x", "sub": "x", "aud": ISSUER, "jti": "j", "iat": NOW, "exp": NOW + 60})).unwrap(),
        );
        assert!(client_assertion::verify(&parts.join("."), &keys, &expected(NOW)).is_err());
    }

    #[test]
    fn the_method_follows_the_servers_list() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(choose_auth_method(&[]), ClientAuthMethod::None);
        assert_eq!(
            choose_auth_method(&l(&["private_key_jwt", "none"])),
            ClientAuthMethod::None
        );
        assert_eq!(
            choose_auth_method(&l(&["client_secret_basic", "private_key_jwt"])),
            ClientAuthMethod::PrivateKeyJwt
        );
        // Only secret methods: public all the same (what worked before).
        assert_eq!(
            choose_auth_method(&l(&["client_secret_post"])),
            ClientAuthMethod::None
        );
        for m in [
            ClientAuthMethod::None,
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::PrivateKeyJwt,
        ] {
            assert_eq!(ClientAuthMethod::parse(m.as_str()), Some(m));
        }
    }
}
