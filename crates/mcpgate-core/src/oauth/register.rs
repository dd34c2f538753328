//! Dynamic client registration (RFC 7591).
//!
//! [`validate`] turns a registration request (a JSON object) into
//! [`ClientMetadata`] or an RFC 7591 §3.2.2 error: `invalid_redirect_uri`
//! for a bad redirect URI, `invalid_client_metadata` for anything else.
//! Unknown fields are ignored (§2). [`response`] builds the §3.2.1 body,
//! which echoes the registered metadata exactly.
//!
//! `private_key_jwt` (RFC 7523 §2.2) needs the client's public keys: exactly
//! one of `jwks` (checked by [`client_assertion::validate_jwks`]) and
//! `jwks_uri` (an https URL), RFC 7591 §2. Such a client gets no secret.

use serde_json::{Map, Value};

use super::{ErrorCode, OAuthError, client_assertion};
use crate::domain::{RedirectUri, Scope};
use crate::model::{Client, ClientMetadata, GrantType, TokenEndpointAuthMethod};

const MAX_REDIRECT_URIS: usize = 20;
const MAX_TEXT: usize = 300;

fn meta_err(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

/// Validates a registration request against the scopes the server offers.
pub fn validate(body: &Value, scopes_supported: &[String]) -> Result<ClientMetadata, OAuthError> {
    let Some(obj) = body.as_object() else {
        return Err(meta_err("the registration request must be a JSON object"));
    };

    let redirect_uris = match obj.get("redirect_uris") {
        None | Some(Value::Null) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect_uris is required: list the URIs the authorization response may be sent to",
            ));
        }
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect_uris must not be empty",
            ));
        }
        Some(Value::Array(items)) if items.len() > MAX_REDIRECT_URIS => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("at most {MAX_REDIRECT_URIS} redirect_uris may be registered"),
            ));
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                let s = v.as_str().ok_or_else(|| {
                    OAuthError::new(
                        ErrorCode::InvalidRedirectUri,
                        "each redirect_uris entry must be a string",
                    )
                })?;
                RedirectUri::parse(s)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.0))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect_uris must be an array of strings",
            ));
        }
    };

    // RFC 7591 §2: the default is client_secret_basic.
    let token_endpoint_auth_method = match opt_str(obj, "token_endpoint_auth_method")? {
        None => TokenEndpointAuthMethod::ClientSecretBasic,
        Some(m) => match TokenEndpointAuthMethod::parse(m) {
            None => {
                return Err(meta_err(format!(
                    "token_endpoint_auth_method {m:?} is not supported; use none, client_secret_basic, client_secret_post or private_key_jwt"
                )));
            }
            Some(method) => method,
        },
    };
    let (jwks_uri, jwks) = client_keys(obj, token_endpoint_auth_method)?;

    let grant_types = match opt_str_list(obj, "grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => {
            let mut out = Vec::new();
            for g in list {
                let gt = GrantType::parse(&g)
                    .filter(|g| *g != GrantType::ClientCredentials)
                    .ok_or_else(|| {
                        meta_err(format!(
                            "grant_types contains {g:?}; only authorization_code and refresh_token are supported"
                        ))
                    })?;
                if !out.contains(&gt) {
                    out.push(gt);
                }
            }
            out
        }
    };

    let response_types = match opt_str_list(obj, "response_types")? {
        None => vec!["code".to_string()],
        Some(list) => {
            if let Some(bad) = list.iter().find(|r| r.as_str() != "code") {
                return Err(meta_err(format!(
                    "response_types contains {bad:?}; only code is supported"
                )));
            }
            list.into_iter().take(1).collect()
        }
    };
    // RFC 7591 §2.1: "code" goes with "authorization_code".
    let has_code = response_types.iter().any(|r| r == "code");
    if has_code != grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(meta_err(
            "response_types \"code\" and grant_types \"authorization_code\" must be registered together (RFC 7591 §2.1)",
        ));
    }

    let scope = match opt_str(obj, "scope")? {
        None => None,
        Some(s) if s.trim().is_empty() => None,
        Some(s) => {
            let scope = Scope::parse(s).map_err(|e| meta_err(e.0))?;
            let unknown = scope.not_in(scopes_supported);
            if !unknown.is_empty() {
                return Err(meta_err(format!(
                    "scope {} is not offered by this server; supported: {}",
                    unknown.join(" "),
                    scopes_supported.join(" ")
                )));
            }
            Some(scope)
        }
    };

    let application_type = match opt_str(obj, "application_type")? {
        None => None,
        Some(t @ ("web" | "native")) => Some(t.to_string()),
        Some(t) => {
            return Err(meta_err(format!(
                "application_type {t:?} must be web or native"
            )));
        }
    };

    let contacts = opt_str_list(obj, "contacts")?.unwrap_or_default();
    if contacts.iter().any(|c| c.len() > MAX_TEXT) {
        return Err(meta_err("contacts entries must be at most 300 characters"));
    }

    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        client_name: opt_text(obj, "client_name")?,
        client_uri: opt_url(obj, "client_uri")?,
        logo_uri: opt_url(obj, "logo_uri")?,
        tos_uri: opt_url(obj, "tos_uri")?,
        policy_uri: opt_url(obj, "policy_uri")?,
        scope,
        contacts,
        software_id: opt_text(obj, "software_id")?,
        software_version: opt_text(obj, "software_version")?,
        application_type,
        jwks_uri,
        jwks,
    })
}

/// RFC 7591 §2: `jwks_uri` and `jwks` must not both be present; one of
/// them is required for `private_key_jwt` and ignored otherwise.
fn client_keys(
    obj: &Map<String, Value>,
    method: TokenEndpointAuthMethod,
) -> Result<(Option<String>, Option<Value>), OAuthError> {
    if method != TokenEndpointAuthMethod::PrivateKeyJwt {
        return Ok((None, None));
    }
    let uri = opt_str(obj, "jwks_uri")?;
    let jwks = obj.get("jwks").filter(|v| !v.is_null());
    match (uri, jwks) {
        (Some(_), Some(_)) => Err(meta_err(
            "jwks_uri and jwks must not both be present (RFC 7591 §2); send one",
        )),
        (None, None) => Err(meta_err(
            "token_endpoint_auth_method private_key_jwt needs the client's public keys: send jwks_uri or jwks",
        )),
        (Some(u), None) => {
            let parsed = url::Url::parse(u)
                .map_err(|_| meta_err(format!("jwks_uri {u:?} is not an absolute URL")))?;
            if parsed.scheme() != "https" {
                return Err(meta_err(format!("jwks_uri {u:?} must be an https URL")));
            }
            if u.len() > 2048 || parsed.host_str().is_none() || parsed.fragment().is_some() {
                return Err(meta_err(format!(
                    "jwks_uri {u:?} must be an https URL with a host and no fragment, at most 2048 characters"
                )));
            }
            Ok((Some(u.to_string()), None))
        }
        (None, Some(set)) => {
            client_assertion::validate_jwks(set).map_err(meta_err)?;
            Ok((None, Some(set.clone())))
        }
    }
}

fn opt_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, OAuthError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(meta_err(format!("{field} must be a string"))),
    }
}

fn opt_text(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, OAuthError> {
    match opt_str(obj, field)? {
        None => Ok(None),
        Some(s) if s.chars().any(char::is_control) => Err(meta_err(format!(
            "{field} must not contain control characters"
        ))),
        Some(s) if s.chars().count() > MAX_TEXT => Err(meta_err(format!(
            "{field} must be at most {MAX_TEXT} characters"
        ))),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => Ok(Some(s.to_string())),
    }
}

fn opt_url(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, OAuthError> {
    let Some(s) = opt_text(obj, field)? else {
        return Ok(None);
    };
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => Ok(Some(s)),
        _ => Err(meta_err(format!("{field} must be an http or https URL"))),
    }
}

fn opt_str_list(obj: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| meta_err(format!("{field} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(meta_err(format!("{field} must be an array of strings"))),
    }
}

/// The RFC 7591 §3.2.1 response: the client's registered metadata plus
/// `client_id`, `client_id_issued_at` and, for confidential clients, the
/// secret (shown only this once) and `client_secret_expires_at: 0` (never).
pub fn response(client: &Client, secret: Option<&str>) -> Value {
    let mut body = match serde_json::to_value(&client.metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    body.insert(
        "client_id".into(),
        Value::String(client.client_id.to_string()),
    );
    body.insert("client_id_issued_at".into(), Value::from(client.issued_at));
    if let Some(secret) = secret {
        body.insert("client_secret".into(), Value::String(secret.to_string()));
        body.insert("client_secret_expires_at".into(), Value::from(0));
    }
    Value::Object(body)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scopes() -> Vec<String> {
        vec!["mcp".into()]
    }

    #[test]
    fn the_seed_insomnia_registration_is_accepted_and_echoed() {
        let req = json!({
            "client_name": "Insomnia Local Test",
            "redirect_uris": ["http://localhost:3000/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "mcp",
            "token_endpoint_auth_method": "none"
        });
        let m = validate(&req, &scopes()).unwrap();
        assert_eq!(m.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
        let client = Client {
            client_id: crate::domain::ClientId::parse("c1").unwrap(),
            secret_hash: None,
            metadata: m,
            issued_at: 1_700_000_000,
            last_used_at: None,
            kind: crate::model::ClientKind::Dynamic,
        };
        let resp = response(&client, None);
        assert_eq!(resp["token_endpoint_auth_method"], "none");
        assert_eq!(
            resp["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(
            resp["redirect_uris"],
            json!(["http://localhost:3000/callback"])
        );
        assert_eq!(resp["client_name"], "Insomnia Local Test");
        assert_eq!(resp["client_id"], "c1");
        assert!(resp.get("client_secret").is_none());
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let m = validate(
            &json!({"redirect_uris": ["https://a.example/cb"]}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(
            m.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.response_types, vec!["code".to_string()]);
    }

    #[test]
    fn each_bad_field_gets_its_own_error() {
        let cases = [
            (json!({}), "invalid_redirect_uri", "required"),
            (
                json!({"redirect_uris": []}),
                "invalid_redirect_uri",
                "empty",
            ),
            (
                json!({"redirect_uris": ["javascript:alert(1)"]}),
                "invalid_redirect_uri",
                "scheme",
            ),
            (
                json!({"redirect_uris": ["http://evil.example/cb"]}),
                "invalid_redirect_uri",
                "loopback",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb#x"]}),
                "invalid_redirect_uri",
                "fragment",
            ),
            (
                json!({"redirect_uris": "https://a.example/cb"}),
                "invalid_redirect_uri",
                "array",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
                "invalid_client_metadata",
                "password",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
                "client_credentials",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
                "invalid_client_metadata",
                "token",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                "invalid_client_metadata",
                "jwks_uri or jwks",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://a.example/jwks"}),
                "invalid_client_metadata",
                "https",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://a.example/jwks", "jwks": {"keys": []}}),
                "invalid_client_metadata",
                "both",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
                "invalid_client_metadata",
                "private",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_jwt"}),
                "invalid_client_metadata",
                "client_secret_jwt",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}),
                "invalid_client_metadata",
                "admin",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_name": 5}),
                "invalid_client_metadata",
                "client_name",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:x"}),
                "invalid_client_metadata",
                "logo_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["refresh_token"]}),
                "invalid_client_metadata",
                "together",
            ),
            (json!([1, 2]), "invalid_client_metadata", "object"),
        ];
        for (body, code, needle) in cases {
            let e = validate(&body, &scopes()).unwrap_err();
            assert_eq!(e.code.as_str(), code, "{body}");
            assert!(e.description.contains(needle), "{body}: {}", e.description);
        }
    }

    #[test]
    fn confidential_clients_get_a_secret_in_the_response() {
        let m = validate(
            &json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "token_endpoint_auth_method": "client_secret_post"}),
            &scopes(),
        )
        .unwrap();
        let client = Client {
            client_id: crate::domain::ClientId::parse("c2").unwrap(),
            secret_hash: Some("h".into()),
            metadata: m,
            issued_at: 1,
            last_used_at: None,
            kind: crate::model::ClientKind::Dynamic,
        };
        let resp = response(&client, Some("s3cret"));
        assert_eq!(resp["token_endpoint_auth_method"], "client_secret_post");
        assert_eq!(resp["client_secret"], "s3cret");
        assert_eq!(resp["client_secret_expires_at"], 0);
    }

    #[test]
    fn private_key_jwt_clients_register_keys_and_get_no_secret() {
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        let m = validate(
            &json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(
            m.token_endpoint_auth_method,
            TokenEndpointAuthMethod::PrivateKeyJwt
        );
        assert_eq!(m.jwks.as_ref(), Some(&jwks));
        let m2 = validate(
            &json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://a.example/jwks.json"}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(m2.jwks_uri.as_deref(), Some("https://a.example/jwks.json"));
        let client = Client {
            client_id: crate::domain::ClientId::parse("c3").unwrap(),
            secret_hash: None,
            metadata: m,
            issued_at: 1,
            last_used_at: None,
            kind: crate::model::ClientKind::Dynamic,
        };
        let resp = response(&client, None);
        assert_eq!(resp["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(resp["jwks"], jwks);
        assert!(resp.get("client_secret").is_none());
        // Keys sent by a client of another method are not kept.
        let m = validate(
            &json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none", "jwks_uri": "https://a.example/jwks"}),
            &scopes(),
        )
        .unwrap();
        assert_eq!(m.jwks_uri, None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = validate(
            &json!({"redirect_uris": ["https://a.example/cb"], "x-vendor": {"a": 1}, "jwks_uri": "https://a.example/jwks"}),
            &scopes(),
        );
        assert!(m.is_ok());
    }
}
