//! Client authentication at the token and revocation endpoints
//! (RFC 6749 §2.3, RFC 7591 §2 `token_endpoint_auth_method`).
//!
//! Public clients (`none`) send only `client_id`. Confidential clients may
//! use `client_secret_basic` or `client_secret_post`, whichever they
//! registered (clients are inconsistent about this, so both are accepted).
//! A request may use only one method (RFC 6749 §2.3).
//!
//! `private_key_jwt` clients send `client_assertion_type` (the JWT bearer
//! URN) and `client_assertion` (RFC 7521 §4.2, RFC 7523 §2.2); `client_id`
//! may then be left out, and is read from the assertion's `sub` until the
//! assertion is verified ([`super::client_assertion`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::client_assertion::{self, ASSERTION_TYPE};
use super::{OAuthError, SecurityEvent, params::Params};
use crate::crypto::{constant_time_eq, hash_secret};
use crate::domain::ClientId;
use crate::model::{Client, TokenEndpointAuthMethod};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodUsed {
    Basic,
    Post,
    None,
    /// A JWT client assertion (RFC 7523 §2.2), not yet verified.
    PrivateKeyJwt(Secret<String>),
}

/// The credentials a request presented.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: ClientId,
    pub secret: Option<Secret<String>>,
    pub method: MethodUsed,
}

/// An `invalid_client` error that remembers whether HTTP Basic was used,
/// because then the response must be 401 with `WWW-Authenticate: Basic`
/// (RFC 6749 §5.2).
#[derive(Debug, Clone)]
pub struct ClientAuthError {
    pub error: OAuthError,
    pub basic: bool,
}

/// Reads client credentials from the `Authorization` header and the body.
pub fn credentials(
    params: &Params,
    authorization: Option<&str>,
) -> Result<ClientCredentials, ClientAuthError> {
    let basic = authorization
        .map(str::trim)
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim());
    let assertion_type = params.get("client_assertion_type");
    let assertion = params.get("client_assertion");
    if assertion_type.is_some() || assertion.is_some() {
        return assertion_credentials(params, assertion_type, assertion, basic.is_some());
    }
    if let Some(encoded) = basic {
        let fail = |d: &str| ClientAuthError {
            error: OAuthError::invalid_client(d.to_string()),
            basic: true,
        };
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| fail("the Authorization: Basic header is not valid base64 of client_id:client_secret"))?;
        let (id, secret) = decoded.split_once(':').ok_or_else(|| {
            fail("the Authorization: Basic credentials must be client_id:client_secret")
        })?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let id = form_decode(id);
        let secret = form_decode(secret);
        if params.get("client_secret").is_some() {
            return Err(ClientAuthError {
                error: OAuthError::invalid_request(
                    "the client authenticated twice (Authorization: Basic and client_secret in the body); use one method",
                ),
                basic: true,
            });
        }
        if let Some(body_id) = params.get("client_id")
            && body_id != id
        {
            return Err(ClientAuthError {
                error: OAuthError::invalid_request(
                    "client_id in the body differs from the one in Authorization: Basic",
                ),
                basic: true,
            });
        }
        let client_id = ClientId::parse(&id).map_err(|e| fail(&e.0))?;
        return Ok(ClientCredentials {
            client_id,
            secret: (!secret.is_empty()).then(|| Secret::new(secret)),
            method: MethodUsed::Basic,
        });
    }
    let Some(raw_id) = params.get("client_id") else {
        return Err(ClientAuthError {
            error: OAuthError::invalid_client(
                "client authentication is missing: send client_id (public clients) or client credentials",
            ),
            basic: false,
        });
    };
    let client_id = ClientId::parse(raw_id).map_err(|e| ClientAuthError {
        error: OAuthError::invalid_client(e.0),
        basic: false,
    })?;
    let secret = params
        .get("client_secret")
        .map(|s| Secret::new(s.to_string()));
    let method = if secret.is_some() {
        MethodUsed::Post
    } else {
        MethodUsed::None
    };
    Ok(ClientCredentials {
        client_id,
        secret,
        method,
    })
}

/// Reads a client assertion (RFC 7521 §4.2): the only method in the
/// request, of the JWT bearer type, naming the same client as `client_id`.
fn assertion_credentials(
    params: &Params,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    basic: bool,
) -> Result<ClientCredentials, ClientAuthError> {
    let fail = |error: OAuthError| ClientAuthError { error, basic };
    if basic || params.get("client_secret").is_some() {
        return Err(fail(OAuthError::invalid_request(
            "the client authenticated twice (a client_assertion and a client secret); use one method",
        )));
    }
    match assertion_type {
        Some(ASSERTION_TYPE) => {}
        Some(other) => {
            return Err(fail(OAuthError::invalid_client(format!(
                "client_assertion_type {other:?} is not supported; use {ASSERTION_TYPE}"
            ))));
        }
        None => {
            return Err(fail(OAuthError::invalid_client(format!(
                "client_assertion was sent without client_assertion_type; send client_assertion_type={ASSERTION_TYPE}"
            ))));
        }
    }
    let Some(assertion) = assertion.filter(|a| !a.is_empty()) else {
        return Err(fail(OAuthError::invalid_client(
            "client_assertion_type was sent without a client_assertion",
        )));
    };
    let sub = client_assertion::claimed_subject(assertion).map_err(fail)?;
    if let Some(body_id) = params.get("client_id")
        && body_id != sub
    {
        return Err(fail(
            OAuthError::invalid_client(format!(
                "client_id {body_id:?} differs from the client_assertion's sub {sub:?}; they must name the same client"
            ))
            .with_event(SecurityEvent::ClientAssertionInvalid),
        ));
    }
    let client_id = ClientId::parse(&sub).map_err(|e| fail(OAuthError::invalid_client(e.0)))?;
    Ok(ClientCredentials {
        client_id,
        secret: None,
        method: MethodUsed::PrivateKeyJwt(Secret::new(assertion.to_string())),
    })
}

/// Decodes one form-urlencoded value (`+` is a space, `%XX` a byte). A raw
/// `&` is kept: in one value it separates nothing.
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('&', "%26")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// What is left to do once the method fits the client.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// The client is authenticated.
    Done,
    /// The method fits; the client is authenticated only once this
    /// assertion is verified against its keys
    /// ([`client_assertion::verify`]) and its `jti` is recorded as used.
    VerifyAssertion(&'a Secret<String>),
}

/// Checks the credentials against the registered client.
pub fn authenticate<'a>(
    creds: &'a ClientCredentials,
    client: Option<&Client>,
) -> Result<Authentication<'a>, ClientAuthError> {
    let basic = creds.method == MethodUsed::Basic;
    let fail = |error: OAuthError| ClientAuthError { error, basic };
    let Some(client) = client else {
        return Err(fail(OAuthError::invalid_client(format!(
            "no client is registered with client_id {}; register the client again",
            creds.client_id
        ))));
    };
    let registered = client.metadata.token_endpoint_auth_method;
    match (&creds.method, registered) {
        (MethodUsed::PrivateKeyJwt(assertion), TokenEndpointAuthMethod::PrivateKeyJwt) => {
            return Ok(Authentication::VerifyAssertion(assertion));
        }
        (MethodUsed::PrivateKeyJwt(_), other) => {
            return Err(fail(
                OAuthError::invalid_client(format!(
                    "this client is registered with token_endpoint_auth_method={}; it cannot authenticate with a client_assertion",
                    other.as_str()
                ))
                .with_event(SecurityEvent::ClientAuthFailed),
            ));
        }
        (_, TokenEndpointAuthMethod::PrivateKeyJwt) => {
            return Err(fail(
                OAuthError::invalid_client(format!(
                    "this client authenticates with private_key_jwt: send client_assertion_type={ASSERTION_TYPE} and a client_assertion signed with its key"
                ))
                .with_event(SecurityEvent::ClientAuthFailed),
            ));
        }
        _ => {}
    }
    match (&client.secret_hash, &creds.secret) {
        (None, None) => Ok(Authentication::Done),
        (None, Some(_)) => Err(fail(OAuthError::invalid_client(
            "this is a public client (token_endpoint_auth_method=none): it has no secret, so send client_id only",
        ))),
        (Some(_), None) => Err(fail(OAuthError::invalid_client(
            "this client is confidential: authenticate with its client_secret (HTTP Basic or client_secret in the body)",
        ))),
        (Some(stored), Some(given)) => {
            if constant_time_eq(hash_secret(given.expose()).as_bytes(), stored.as_bytes()) {
                Ok(Authentication::Done)
            } else {
                Err(fail(
                    OAuthError::invalid_client("client authentication failed: wrong client_secret")
                        .with_event(SecurityEvent::ClientAuthFailed),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientMetadata, GrantType};

    fn client(secret: Option<&str>) -> Client {
        Client {
            client_id: ClientId::parse("c:1").unwrap(),
            secret_hash: secret.map(hash_secret),
            metadata: ClientMetadata {
                redirect_uris: vec![],
                token_endpoint_auth_method: if secret.is_some() {
                    TokenEndpointAuthMethod::ClientSecretPost
                } else {
                    TokenEndpointAuthMethod::None
                },
                grant_types: vec![GrantType::AuthorizationCode],
                response_types: vec!["code".into()],
                client_name: None,
                client_uri: None,
                logo_uri: None,
                tos_uri: None,
                policy_uri: None,
                scope: None,
                contacts: vec![],
                software_id: None,
                software_version: None,
                application_type: None,
                jwks_uri: None,
                jwks: None,
            },
            issued_at: 0,
            last_used_at: None,
            kind: crate::model::ClientKind::Dynamic,
        }
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let p = Params::parse("grant_type=x").unwrap();
        let c = credentials(&p, Some(&basic("c%3A1", "s%2Bx"))).unwrap();
        assert_eq!(c.client_id.as_str(), "c:1");
        assert_eq!(c.secret.as_ref().map(|s| s.expose().as_str()), Some("s+x"));
        assert_eq!(c.method, MethodUsed::Basic);
        assert!(authenticate(&c, Some(&client(Some("s+x")))).is_ok());
    }

    /// Found by the property tests: a raw `&` in a Basic secret cut the
    /// secret short (it was decoded as a parameter separator).
    #[test]
    fn a_raw_ampersand_in_a_basic_secret_is_kept() {
        let p = Params::parse("grant_type=x").unwrap();
        let c = credentials(&p, Some(&basic("a", "s&t=u"))).unwrap();
        assert_eq!(
            c.secret.as_ref().map(|s| s.expose().as_str()),
            Some("s&t=u")
        );
    }

    #[test]
    fn confidential_clients_may_use_basic_or_post() {
        let cl = client(Some("sec"));
        let p = Params::parse("client_id=c%3A1&client_secret=sec").unwrap();
        assert!(authenticate(&credentials(&p, None).unwrap(), Some(&cl)).is_ok());
        let p = Params::parse("").unwrap();
        assert!(
            authenticate(
                &credentials(&p, Some(&basic("c%3A1", "sec"))).unwrap(),
                Some(&cl)
            )
            .is_ok()
        );
        let p = Params::parse("client_id=c%3A1&client_secret=wrong").unwrap();
        let e = authenticate(&credentials(&p, None).unwrap(), Some(&cl)).unwrap_err();
        assert_eq!(e.error.event, Some(SecurityEvent::ClientAuthFailed));
        assert!(!e.basic);
        let e = authenticate(
            &credentials(&Params::parse("").unwrap(), Some(&basic("c%3A1", "x"))).unwrap(),
            Some(&cl),
        )
        .unwrap_err();
        assert!(e.basic);
        let p = Params::parse("client_id=c%3A1").unwrap();
        assert!(authenticate(&credentials(&p, None).unwrap(), Some(&cl)).is_err());
    }

    #[test]
    fn public_clients_send_no_secret_but_an_empty_one_is_tolerated() {
        let cl = client(None);
        for body in ["client_id=c%3A1", "client_id=c%3A1&client_secret="] {
            let p = Params::parse(body).unwrap();
            assert!(
                authenticate(&credentials(&p, None).unwrap(), Some(&cl)).is_ok(),
                "{body}"
            );
        }
        // ChatGPT's seed flow: HTTP Basic with an empty secret.
        assert!(
            authenticate(
                &credentials(&Params::parse("").unwrap(), Some(&basic("c%3A1", ""))).unwrap(),
                Some(&cl)
            )
            .is_ok()
        );
        let p = Params::parse("client_id=c%3A1&client_secret=x").unwrap();
        assert!(authenticate(&credentials(&p, None).unwrap(), Some(&cl)).is_err());
    }

    #[test]
    fn two_methods_at_once_or_missing_id_are_refused() {
        let p = Params::parse("client_secret=a").unwrap();
        let e = credentials(&p, Some(&basic("c:1", "a"))).unwrap_err();
        assert_eq!(e.error.code.as_str(), "invalid_request");
        let e = credentials(&Params::parse("").unwrap(), None).unwrap_err();
        assert_eq!(e.error.code.as_str(), "invalid_client");
        let e = credentials(&Params::parse("").unwrap(), Some("Basic !!!")).unwrap_err();
        assert!(e.basic);
    }

    /// An unsigned JWT whose claims name `sub`: enough for reading
    /// credentials (the signature is checked later).
    fn assertion(sub: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}"}}"#))
        )
    }

    fn jwt_client() -> Client {
        let mut c = client(None);
        c.metadata.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        c
    }

    fn form(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn an_assertion_names_the_client_with_or_without_client_id() {
        let a = assertion("c:1");
        for p in [
            form(&[
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ]),
            form(&[
                ("client_id", "c:1"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ]),
        ] {
            let c = credentials(&p, None).unwrap();
            assert_eq!(c.client_id.as_str(), "c:1");
            assert_eq!(c.method, MethodUsed::PrivateKeyJwt(Secret::new(a.clone())));
            assert!(format!("{c:?}").contains("REDACTED"));
            assert!(!format!("{c:?}").contains(&a));
            assert_eq!(
                authenticate(&c, Some(&jwt_client())).unwrap(),
                Authentication::VerifyAssertion(&Secret::new(a.clone()))
            );
        }
    }

    #[test]
    fn assertion_credentials_are_refused_when_mixed_mistyped_or_mismatched() {
        let a = assertion("c:1");
        let t = ("client_assertion_type", ASSERTION_TYPE);
        let cases = [
            (
                form(&[t, ("client_assertion", &a), ("client_secret", "s")]),
                None,
                "invalid_request",
                "twice",
            ),
            (
                form(&[t, ("client_assertion", &a)]),
                Some(basic("c:1", "s")),
                "invalid_request",
                "twice",
            ),
            (
                form(&[
                    ("client_assertion_type", "urn:x:saml"),
                    ("client_assertion", &a),
                ]),
                None,
                "invalid_client",
                "urn:x:saml",
            ),
            (
                form(&[("client_assertion", &a)]),
                None,
                "invalid_client",
                "without client_assertion_type",
            ),
            (
                form(&[t]),
                None,
                "invalid_client",
                "without a client_assertion",
            ),
            (
                form(&[t, ("client_assertion", &a), ("client_id", "c:2")]),
                None,
                "invalid_client",
                "differs",
            ),
            (
                form(&[t, ("client_assertion", "junk")]),
                None,
                "invalid_client",
                "not a",
            ),
        ];
        for (p, header, code, needle) in cases {
            let e = credentials(&p, header.as_deref()).unwrap_err();
            assert_eq!(e.error.code.as_str(), code, "{needle}");
            assert!(
                e.error.description.contains(needle),
                "{}",
                e.error.description
            );
            assert_eq!(e.basic, header.is_some());
        }
    }

    #[test]
    fn the_method_must_be_the_one_registered() {
        // A private_key_jwt client with a secret, or with nothing.
        for p in [
            form(&[("client_id", "c:1"), ("client_secret", "s")]),
            form(&[("client_id", "c:1")]),
        ] {
            let e = authenticate(&credentials(&p, None).unwrap(), Some(&jwt_client())).unwrap_err();
            assert!(
                e.error.description.contains("private_key_jwt"),
                "{}",
                e.error.description
            );
        }
        // A secret or public client presenting an assertion.
        let a = assertion("c:1");
        let p = form(&[
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &a),
        ]);
        for cl in [client(Some("s")), client(None)] {
            let e = authenticate(&credentials(&p, None).unwrap(), Some(&cl)).unwrap_err();
            assert_eq!(e.error.code.as_str(), "invalid_client");
            assert!(
                e.error
                    .description
                    .contains("cannot authenticate with a client_assertion")
            );
        }
    }

    #[test]
    fn unknown_clients_fail() {
        let p = Params::parse("client_id=nope").unwrap();
        let e = authenticate(&credentials(&p, None).unwrap(), None).unwrap_err();
        assert!(e.error.description.contains("nope"));
    }
}

/// Property tests of the `Authorization: Basic` and body credentials
/// (RFC 6749 §2.3.1): no panic on any header or body, and credentials
/// sent as the RFC says (form-encoded, then base64) read back as sent.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    fn form(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    proptest! {
        #[test]
        fn reading_credentials_never_panics(
            header in proptest::option::of(prop_oneof![
                any::<String>(),
                "(Basic|basic|Bearer) [A-Za-z0-9+/=]{0,40}",
                (".{0,10}", ".{0,10}").prop_map(|(i, s)| basic(&i, &s)),
            ]),
            body in ".{0,40}"
        ) {
            let _ = credentials(&Params::parse_lenient(&body), header.as_deref());
        }

        #[test]
        fn encoded_basic_credentials_read_back_as_sent(
            id in "[!-~]{1,40}", secret in any::<String>(), case in "[Bb][Aa][Ss][Ii][Cc]"
        ) {
            let header = basic(&form(&id), &form(&secret)).replacen("Basic", &case, 1);
            let c = credentials(&Params::default(), Some(&header)).unwrap();
            prop_assert_eq!(c.client_id.as_str(), id.as_str());
            prop_assert_eq!(c.secret.as_ref().map(|s| s.expose().as_str()), Some(secret.as_str()).filter(|s| !s.is_empty()));
            prop_assert_eq!(c.method, MethodUsed::Basic);
        }

        /// Clients that skip the form encoding still get their credentials
        /// read as sent, as long as they hold no `%` or `+`.
        #[test]
        fn unencoded_basic_credentials_without_percent_or_plus_read_back_as_sent(
            id in "[A-Za-z0-9._~-]{1,40}", secret in "[!-~]{1,40}".prop_filter("no % or +", |s| !s.contains(['%', '+']))
        ) {
            let c = credentials(&Params::default(), Some(&basic(&id, &secret))).unwrap();
            prop_assert_eq!(c.client_id.as_str(), id.as_str());
            prop_assert_eq!(c.secret.as_ref().map(|s| s.expose().as_str()), Some(secret.as_str()));
        }

        #[test]
        fn body_credentials_read_back_as_sent(id in "[!-~]{1,40}", secret in proptest::option::of(".{1,20}")) {
            let mut pairs = vec![("client_id", id.clone())];
            pairs.extend(secret.clone().map(|s| ("client_secret", s)));
            let c = credentials(&Params::from_pairs(pairs).unwrap(), None).unwrap();
            prop_assert_eq!(c.client_id.as_str(), id.as_str());
            prop_assert_eq!(c.secret.as_ref().map(|s| s.expose().as_str()), secret.as_deref());
            prop_assert_eq!(c.method, if secret.is_some() { MethodUsed::Post } else { MethodUsed::None });
        }
    }
}
