use serde::{Deserialize, Serialize};

use super::ParseError;
use crate::crypto::{constant_time_eq, pkce_s256};
use crate::secret::Secret;

/// An S256 code challenge (RFC 7636 §4.2): the 43-character base64url
/// encoding of a SHA-256 digest. `plain` is not supported (OAuth 2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses `code_challenge` with its `code_challenge_method`. A missing
    /// method means `plain` (RFC 7636 §4.3), which is refused.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, ParseError> {
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err(ParseError::new(
                    "code_challenge_method must be S256; the plain method is not allowed",
                ));
            }
            Some(other) => {
                return Err(ParseError::new(format!(
                    "code_challenge_method {other:?} is not supported; use S256"
                )));
            }
        }
        Self::parse_s256(challenge)
    }

    fn parse_s256(challenge: &str) -> Result<Self, ParseError> {
        if challenge.len() != 43
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ParseError::new(
                "code_challenge must be the 43-character base64url SHA-256 of the code_verifier",
            ));
        }
        Ok(Self(challenge.to_string()))
    }

    /// Whether `verifier` hashes to this challenge (constant time).
    pub fn verify(&self, verifier: &CodeVerifier) -> bool {
        constant_time_eq(pkce_s256(verifier.0.expose()).as_bytes(), self.0.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CodeChallenge {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_s256(&value)
    }
}

impl From<CodeChallenge> for String {
    fn from(value: CodeChallenge) -> Self {
        value.0
    }
}

/// A PKCE code verifier (RFC 7636 §4.1): 43 to 128 characters from
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`. It is a secret.
#[derive(Debug, Clone)]
pub struct CodeVerifier(Secret<String>);

impl CodeVerifier {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if !(43..=128).contains(&s.len()) {
            return Err(ParseError::new(format!(
                "code_verifier must be 43 to 128 characters long, not {}",
                s.len()
            )));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(ParseError::new(
                "code_verifier may contain only letters, digits and - . _ ~ (RFC 7636 §4.1)",
            ));
        }
        Ok(Self(Secret::new(s.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_challenge_verifies_the_rfc_vector() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(c.verify(&CodeVerifier::parse(VERIFIER).unwrap()));
        let other = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(!c.verify(&other));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, Some("s256")).is_err());
        assert!(CodeChallenge::parse("short", Some("S256")).is_err());
    }

    #[test]
    fn verifier_length_and_alphabet() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_err());
        assert_eq!(
            format!("{:?}", CodeVerifier::parse(VERIFIER).unwrap()),
            "CodeVerifier([REDACTED])"
        );
    }

    use proptest::prelude::*;

    fn unreserved(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
    }

    /// Any string, control characters and Unicode included, past 128 chars.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Za-z0-9._~+/=-]{0,140}",
            proptest::collection::vec(any::<char>(), 0..300).prop_map(|v| v.into_iter().collect()),
        ]
    }

    proptest! {
        #[test]
        fn any_valid_verifier_verifies_against_its_own_challenge(v in "[A-Za-z0-9._~-]{43,128}") {
            let verifier = CodeVerifier::parse(&v).unwrap();
            let challenge = CodeChallenge::parse(&pkce_s256(&v), Some("S256")).unwrap();
            prop_assert!(challenge.verify(&verifier));
        }

        #[test]
        fn a_parsed_verifier_is_43_to_128_unreserved_characters(s in any_text()) {
            let ok = CodeVerifier::parse(&s).is_ok();
            prop_assert_eq!(ok, (43..=128).contains(&s.len()) && s.bytes().all(unreserved));
            if let Ok(v) = CodeVerifier::parse(&s) {
                prop_assert_eq!(v.0.expose().as_str(), s.as_str());
            }
        }

        #[test]
        fn a_verifier_verifies_only_against_its_own_challenge(
            a in "[A-Za-z0-9._~-]{43,128}", b in "[A-Za-z0-9._~-]{43,128}"
        ) {
            let challenge = CodeChallenge::parse(&pkce_s256(&a), Some("S256")).unwrap();
            prop_assert_eq!(challenge.verify(&CodeVerifier::parse(&b).unwrap()), a == b);
        }

        #[test]
        fn a_parsed_challenge_is_43_base64url_characters_and_round_trips(
            s in prop_oneof![any_text(), "[A-Za-z0-9_-]{43}"],
            method in proptest::option::of(prop_oneof![Just("S256".to_string()), Just("plain".to_string()), ".{0,6}"])
        ) {
            let Ok(c) = CodeChallenge::parse(&s, method.as_deref()) else { return Ok(()) };
            prop_assert_eq!(method.as_deref(), Some("S256"));
            prop_assert_eq!(c.as_str(), s.as_str());
            prop_assert!(s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<CodeChallenge>(&json).unwrap(), c.clone());
            prop_assert_eq!(CodeChallenge::parse(c.as_str(), Some("S256")).unwrap(), c);
        }

        #[test]
        fn every_base64url_challenge_parses_with_s256_and_never_without(s in "[A-Za-z0-9_-]{43}") {
            prop_assert!(CodeChallenge::parse(&s, Some("S256")).is_ok());
            prop_assert!(CodeChallenge::parse(&s, Some("plain")).is_err());
            prop_assert!(CodeChallenge::parse(&s, None).is_err());
        }
    }
}
