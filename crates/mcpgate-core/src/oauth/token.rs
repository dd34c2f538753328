//! The token request (RFC 6749 §4.1.3, §4.4.2, §6) as a tagged enum, so that an
//! impossible combination cannot be built, and the token response (§5.1).

use serde::Serialize;

use super::{ErrorCode, OAuthError, params::Params};
use crate::domain::{CodeVerifier, Scope};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub enum TokenRequest {
    AuthorizationCode(CodeRequest),
    RefreshToken(RefreshRequest),
    /// RFC 6749 §4.4.2: the client asks for a token for itself.
    ClientCredentials(ClientCredentialsRequest),
}

#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub code: Secret<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<CodeVerifier>,
    pub resource: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshRequest {
    pub refresh_token: Secret<String>,
    pub scope: Option<Scope>,
    pub resource: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClientCredentialsRequest {
    pub scope: Option<Scope>,
    pub resource: Option<String>,
}

fn optional_scope(params: &Params) -> Result<Option<Scope>, OAuthError> {
    params
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .map(Scope::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_scope(e.0))
}

pub fn parse(params: &Params) -> Result<TokenRequest, OAuthError> {
    let resource = single_resource(params)?;
    match params.get("grant_type") {
        None => Err(OAuthError::invalid_request(
            "the grant_type parameter is missing; use authorization_code, refresh_token or client_credentials",
        )),
        Some("authorization_code") => {
            let code_verifier = params
                .get("code_verifier")
                .map(CodeVerifier::parse)
                .transpose()
                .map_err(|e| OAuthError::invalid_request(e.0))?;
            Ok(TokenRequest::AuthorizationCode(CodeRequest {
                code: Secret::new(params.require("code")?.to_string()),
                redirect_uri: params.get("redirect_uri").map(str::to_string),
                code_verifier,
                resource,
            }))
        }
        Some("refresh_token") => Ok(TokenRequest::RefreshToken(RefreshRequest {
            refresh_token: Secret::new(params.require("refresh_token")?.to_string()),
            scope: optional_scope(params)?,
            resource,
        })),
        Some("client_credentials") => {
            Ok(TokenRequest::ClientCredentials(ClientCredentialsRequest {
                scope: optional_scope(params)?,
                resource,
            }))
        }
        Some(other) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type {other:?} is not supported; use authorization_code, refresh_token or client_credentials"
            ),
        )),
    }
}

fn single_resource(params: &Params) -> Result<Option<String>, OAuthError> {
    let values: Vec<&str> = params.get_all("resource").collect();
    match values.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).to_string())),
        _ => Err(OAuthError::invalid_target(
            "send the resource parameter once: tokens here are for one resource",
        )),
    }
}

/// The successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: Secret<String>,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret<String>>,
    pub scope: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_are_dispatched_and_others_refused() {
        let p = Params::parse("grant_type=authorization_code&code=abc&redirect_uri=x").unwrap();
        assert!(matches!(
            parse(&p).unwrap(),
            TokenRequest::AuthorizationCode(_)
        ));
        let p = Params::parse("grant_type=refresh_token&refresh_token=r&scope=mcp").unwrap();
        match parse(&p).unwrap() {
            TokenRequest::RefreshToken(r) => assert_eq!(r.scope.unwrap().to_string(), "mcp"),
            other => panic!("{other:?}"),
        }
        match parse(
            &Params::parse("grant_type=client_credentials&scope=mcp&resource=https://r").unwrap(),
        )
        .unwrap()
        {
            TokenRequest::ClientCredentials(r) => {
                assert_eq!(r.scope.unwrap().to_string(), "mcp");
                assert_eq!(r.resource.as_deref(), Some("https://r"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&Params::parse("grant_type=client_credentials").unwrap()).unwrap(),
            TokenRequest::ClientCredentials(ClientCredentialsRequest {
                scope: None,
                resource: None
            })
        ));
        for (body, code) in [
            (
                "grant_type=password&username=a&password=b",
                "unsupported_grant_type",
            ),
            ("grant_type=client_credentials&scope=%22", "invalid_scope"),
            ("code=abc", "invalid_request"),
            ("grant_type=authorization_code", "invalid_request"),
            ("grant_type=refresh_token", "invalid_request"),
            (
                "grant_type=authorization_code&code=a&code_verifier=short",
                "invalid_request",
            ),
            (
                "grant_type=authorization_code&code=a&resource=https://a&resource=https://b",
                "invalid_target",
            ),
        ] {
            let e = parse(&Params::parse(body).unwrap()).unwrap_err();
            assert_eq!(e.code.as_str(), code, "{body}");
        }
    }

    #[test]
    fn the_response_serializes_the_secret_values() {
        let r = TokenResponse {
            access_token: Secret::new("mcp_x".into()),
            token_type: "Bearer",
            expires_in: 10,
            refresh_token: None,
            scope: "mcp".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["access_token"], "mcp_x");
        assert!(v.get("refresh_token").is_none());
        assert!(!format!("{r:?}").contains("mcp_x"));
    }
}

/// Property tests: no panic on any form; valid requests of each grant
/// parse into their variant with the values sent; two resources, an
/// unknown grant type or a bad verifier get their RFC error codes.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    fn params(pairs: Vec<(&str, String)>) -> Params {
        Params::from_pairs(pairs).unwrap()
    }

    proptest! {
        #[test]
        fn any_form_is_read_without_panic(s in prop_oneof![any::<String>(), "(grant_type|code|scope|resource|code_verifier)=.{0,10}(&(grant_type|code|scope|resource|code_verifier)=.{0,10}){0,4}"]) {
            let _ = parse(&Params::parse_lenient(&s));
        }

        #[test]
        fn a_valid_code_request_reads_back_as_sent(
            code in ".{1,40}", redirect in proptest::option::of("https://[a-z]{1,8}\\.example/cb"),
            verifier in proptest::option::of("[A-Za-z0-9._~-]{43,128}"),
            resource in proptest::option::of("https://[a-z]{1,8}\\.example/mcp")
        ) {
            let mut p = vec![("grant_type", "authorization_code".to_string()), ("code", code.clone())];
            p.extend(redirect.clone().map(|r| ("redirect_uri", r)));
            p.extend(verifier.clone().map(|v| ("code_verifier", v)));
            p.extend(resource.clone().map(|r| ("resource", r)));
            let TokenRequest::AuthorizationCode(r) = parse(&params(p)).unwrap() else {
                return Err(TestCaseError::fail("not a code request"));
            };
            prop_assert_eq!(r.code.expose(), &code);
            prop_assert_eq!(r.redirect_uri, redirect);
            prop_assert_eq!(r.code_verifier.is_some(), verifier.is_some());
            prop_assert_eq!(r.resource, resource);
        }

        #[test]
        fn a_valid_refresh_request_reads_back_as_sent(
            token in ".{1,40}", scope in proptest::option::of("[a-z_]{1,8}( [a-z_]{1,8}){0,3}")
        ) {
            let mut p = vec![("grant_type", "refresh_token".to_string()), ("refresh_token", token.clone())];
            p.extend(scope.clone().map(|s| ("scope", s)));
            let TokenRequest::RefreshToken(r) = parse(&params(p)).unwrap() else {
                return Err(TestCaseError::fail("not a refresh request"));
            };
            prop_assert_eq!(r.refresh_token.expose(), &token);
            prop_assert_eq!(r.scope, scope.map(|s| Scope::parse(&s).unwrap()));
        }

        #[test]
        fn bad_requests_get_their_error_codes(
            grant in "[a-z_]{1,20}".prop_filter("unknown", |g| g != "authorization_code" && g != "refresh_token" && g != "client_credentials"),
            a in "[a-z]{1,8}", b in "[a-z]{1,8}", short in "[a-z]{0,42}"
        ) {
            let e = parse(&params(vec![("grant_type", grant)])).unwrap_err();
            prop_assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
            let two = params(vec![("grant_type", "refresh_token".into()), ("refresh_token", "t".into()), ("resource", a), ("resource", b)]);
            prop_assert_eq!(parse(&two).unwrap_err().code, ErrorCode::InvalidTarget);
            let bad = params(vec![("grant_type", "authorization_code".into()), ("code", "c".into()), ("code_verifier", short.clone())]);
            let r = parse(&bad);
            prop_assert!(short.is_empty() || r.is_err_and(|e| e.code == ErrorCode::InvalidRequest));
        }
    }
}
