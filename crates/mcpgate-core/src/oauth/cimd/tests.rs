use serde_json::json;

use super::*;

const URL: &str = "https://claude.ai/oauth/claude-code-client-metadata";

fn url() -> MetadataDocumentUrl {
    MetadataDocumentUrl::parse(URL).unwrap()
}

fn claude() -> Value {
    json!({
        "client_id": URL,
        "client_name": "Claude Code",
        "client_uri": "https://claude.ai",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "x-vendor-field": {"anything": true}
    })
}

fn check(doc: &Value) -> Result<ClientMetadata, OAuthError> {
    validate(&url(), doc.to_string().as_bytes())
}

#[test]
fn a_claude_shaped_document_is_accepted() {
    let m = check(&claude()).unwrap();
    assert_eq!(m.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
    assert_eq!(m.client_name.as_deref(), Some("Claude Code"));
    assert_eq!(m.redirect_uris.len(), 2);
    assert!(m.jwks_uri.is_none() && m.jwks.is_none());
}

#[test]
fn a_chatgpt_shaped_document_keeps_its_jwks_uri() {
    let u = MetadataDocumentUrl::parse("https://chatgpt.com/oauth/abc/client.json").unwrap();
    let doc = json!({
        "client_id": "https://chatgpt.com/oauth/abc/client.json",
        "client_name": "ChatGPT",
        "redirect_uris": ["https://chatgpt.com/connector/oauth/abc"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg": "RS256",
        "jwks_uri": "https://chatgpt.com/oauth/jwks.json",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "anything at all"
    });
    let m = validate(&u, doc.to_string().as_bytes()).unwrap();
    assert_eq!(
        m.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );
    assert_eq!(
        m.jwks_uri.as_deref(),
        Some("https://chatgpt.com/oauth/jwks.json")
    );
    assert!(m.scope.is_none());
}

#[test]
fn each_broken_rule_is_named() {
    let with = |f: &dyn Fn(&mut Map<String, Value>)| {
        let mut d = claude();
        f(d.as_object_mut().unwrap());
        d
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|d| {
                d.insert("client_id".into(), json!("https://claude.ai/other"));
            }),
            "not the URL",
        ),
        (
            with(&|d| {
                d.insert("client_id".into(), json!(format!("{URL}/")));
            }),
            "not the URL",
        ),
        (
            with(&|d| {
                d.remove("client_id");
            }),
            "no client_id",
        ),
        (
            with(&|d| {
                d.remove("redirect_uris");
            }),
            "redirect_uris is required",
        ),
        (
            with(&|d| {
                d.insert("redirect_uris".into(), json!(["http://evil.example/cb"]));
            }),
            "loopback",
        ),
        (
            with(&|d| {
                d.insert(
                    "token_endpoint_auth_method".into(),
                    json!("client_secret_post"),
                );
            }),
            "shared secret",
        ),
        (
            with(&|d| {
                d.insert(
                    "token_endpoint_auth_method".into(),
                    json!("client_secret_basic"),
                );
            }),
            "shared secret",
        ),
        (
            with(&|d| {
                d.insert(
                    "token_endpoint_auth_method".into(),
                    json!("client_secret_jwt"),
                );
            }),
            "not supported",
        ),
        (
            with(&|d| {
                d.remove("token_endpoint_auth_method");
            }),
            "client_secret_basic",
        ),
        (
            with(&|d| {
                d.insert("client_secret".into(), json!("s"));
            }),
            "client_secret",
        ),
        (
            with(&|d| {
                d.insert("client_secret_expires_at".into(), json!(0));
            }),
            "client_secret_expires_at",
        ),
        (
            with(&|d| {
                d.insert(
                    "token_endpoint_auth_method".into(),
                    json!("private_key_jwt"),
                );
            }),
            "jwks_uri or jwks",
        ),
        (
            with(&|d| {
                d.insert(
                    "token_endpoint_auth_method".into(),
                    json!("private_key_jwt"),
                );
                d.insert("jwks_uri".into(), json!("http://claude.ai/jwks"));
            }),
            "https",
        ),
        (
            with(&|d| {
                d.insert("jwks_uri".into(), json!("https://claude.ai/jwks"));
                d.insert("jwks".into(), json!({"keys": []}));
            }),
            "both",
        ),
        (
            with(&|d| {
                d.insert("jwks".into(), json!([1]));
            }),
            "JWK Set",
        ),
        (
            with(&|d| {
                d.insert("client_name".into(), json!(5));
            }),
            "client_name",
        ),
        (
            with(&|d| {
                d.insert("grant_types".into(), json!(["client_credentials"]));
            }),
            "client_credentials",
        ),
        (json!([1]), "object"),
    ];
    for (doc, needle) in cases {
        let e = check(&doc).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_client", "{doc}");
        assert!(e.description.contains(needle), "{doc}: {}", e.description);
    }
    let e = validate(&url(), b"<html>").unwrap_err();
    assert!(e.description.contains("not JSON"), "{}", e.description);
}

#[test]
fn freshness_follows_cache_headers_within_bounds() {
    let now = 1_000_000;
    assert_eq!(fresh_until(now, Some("max-age=3600"), None), now + 3600);
    assert_eq!(
        fresh_until(now, Some("public, max-age=\"7200\""), None),
        now + 7200
    );
    assert_eq!(fresh_until(now, Some("max-age=10"), None), now + MIN_FRESH);
    assert_eq!(
        fresh_until(now, Some("max-age=999999"), None),
        now + MAX_FRESH
    );
    assert_eq!(fresh_until(now, Some("no-store"), None), now + MIN_FRESH);
    assert_eq!(
        fresh_until(now, Some("no-cache, max-age=3600"), None),
        now + MIN_FRESH
    );
    assert_eq!(fresh_until(now, None, Some(now + 1800)), now + 1800);
    assert_eq!(fresh_until(now, None, Some(now - 5)), now + MIN_FRESH);
    assert_eq!(
        fresh_until(now, Some("max-age=600"), Some(now + 9000)),
        now + 600
    );
    assert_eq!(fresh_until(now, None, None), now + MIN_FRESH);
    assert_eq!(
        fresh_until(now, Some("max-age=bogus"), None),
        now + MIN_FRESH
    );
}

#[test]
fn stale_copies_are_served_for_a_day_at_most() {
    assert!(may_serve_stale(100, 100 + STALE_GRACE));
    assert!(!may_serve_stale(100, 101 + STALE_GRACE));
}

#[test]
fn the_policy_recognises_document_urls_and_trusted_hosts() {
    let id = |s: &str| ClientId::parse(s).unwrap();
    let any = DocumentPolicy::default();
    assert!(any.recognise(&id("abc")).is_none());
    assert!(any.recognise(&id(URL)).unwrap().is_ok());
    assert!(
        any.recognise(&id("https://x.example/a#b"))
            .unwrap()
            .is_err()
    );
    let off = DocumentPolicy::new(false, &[] as &[&str]).unwrap();
    assert!(off.recognise(&id(URL)).is_none());
    let some = DocumentPolicy::new(true, &["Claude.ai"]).unwrap();
    assert!(some.recognise(&id(URL)).unwrap().is_ok());
    let e = some
        .recognise(&id("https://chatgpt.com/oauth/x.json"))
        .unwrap()
        .unwrap_err();
    assert!(
        e.description.contains("chatgpt.com") && e.description.contains("trusted_client_hosts")
    );
    assert!(DocumentPolicy::new(true, &["https://claude.ai/"]).is_err());
}
