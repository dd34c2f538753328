use super::*;
use crate::model::{ClientMetadata, TokenEndpointAuthMethod};

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client(redirects: &[&str]) -> Client {
    Client {
        client_id: ClientId::parse("client-1").unwrap(),
        secret_hash: None,
        metadata: ClientMetadata {
            redirect_uris: redirects
                .iter()
                .map(|r| RedirectUri::parse(r).unwrap())
                .collect(),
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            response_types: vec!["code".into()],
            client_name: Some("Test".into()),
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

fn params(extra: &[(&str, &str)]) -> Params {
    let mut base = vec![
        ("response_type", "code"),
        ("client_id", "client-1"),
        ("redirect_uri", "https://app.example/cb"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st"),
        ("scope", "mcp"),
        ("resource", "https://gate.example/v1/ai/mcp"),
    ];
    for (k, v) in extra {
        base.retain(|(bk, _)| bk != k);
        if !v.is_empty() || *k == "scope" {
            base.push((k, v));
        }
    }
    Params::from_pairs(base).unwrap()
}

fn redirect_error(r: Result<AuthorizationRequest, Rejection>) -> ErrorRedirect {
    match r {
        Err(Rejection::Redirect(e)) => *e,
        other => panic!("expected a redirect error, got {other:?}"),
    }
}

fn page_error(r: Result<AuthorizationRequest, Rejection>) -> OAuthError {
    match r {
        Err(Rejection::Page(e)) => e,
        other => panic!("expected an error page, got {other:?}"),
    }
}

#[test]
fn a_complete_request_is_accepted() {
    let p = Policy::example();
    let req = validate(&params(&[]), &client(&["https://app.example/cb"]), &p).unwrap();
    assert_eq!(req.scope.to_string(), "mcp");
    assert_eq!(req.state.as_deref(), Some("st"));
    assert!(req.redirect_uri_explicit);
    assert_eq!(req.resource, p.resource);
}

#[test]
fn a_redirect_uri_mismatch_is_a_page_never_a_redirect() {
    let e = page_error(validate(
        &params(&[("redirect_uri", "https://evil.example/cb")]),
        &client(&["https://app.example/cb"]),
        &Policy::example(),
    ));
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.description.contains("mismatch"));
    assert!(
        e.description
            .contains("https://evil.example/cb is not registered")
    );
    // The registered URIs are not revealed to whoever opened the link.
    assert!(
        !e.description.contains("https://app.example/cb"),
        "{}",
        e.description
    );
    assert_eq!(e.event, Some(SecurityEvent::RedirectUriMismatch));
}

#[test]
fn an_unparseable_redirect_uri_is_a_page() {
    let e = page_error(validate(
        &params(&[("redirect_uri", "javascript:alert(1)")]),
        &client(&["https://app.example/cb"]),
        &Policy::example(),
    ));
    assert!(e.description.contains("invalid redirect_uri"));
}

#[test]
fn a_missing_redirect_uri_uses_the_only_registered_one() {
    let req = validate(
        &params(&[("redirect_uri", "")]),
        &client(&["https://app.example/cb"]),
        &Policy::example(),
    )
    .unwrap();
    assert_eq!(req.redirect_uri.as_str(), "https://app.example/cb");
    assert!(!req.redirect_uri_explicit);
    let e = page_error(validate(
        &params(&[("redirect_uri", "")]),
        &client(&["https://app.example/cb", "https://app.example/cb2"]),
        &Policy::example(),
    ));
    assert!(e.description.contains("more than one"), "{}", e.description);
    assert!(!e.description.contains("app.example"), "{}", e.description);
}

#[test]
fn loopback_redirects_match_on_any_port() {
    let req = validate(
        &params(&[("redirect_uri", "http://localhost:53123/callback")]),
        &client(&["http://localhost/callback"]),
        &Policy::example(),
    )
    .unwrap();
    assert_eq!(req.redirect_uri.as_str(), "http://localhost:53123/callback");
}

#[test]
fn pkce_is_required_and_plain_is_refused() {
    let c = client(&["https://app.example/cb"]);
    let e = redirect_error(validate(
        &params(&[("code_challenge", ""), ("code_challenge_method", "")]),
        &c,
        &Policy::example(),
    ));
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    assert!(e.error.description.contains("PKCE is required"));
    assert_eq!(e.state.as_deref(), Some("st"));
    let e = redirect_error(validate(
        &params(&[("code_challenge_method", "plain")]),
        &c,
        &Policy::example(),
    ));
    assert!(e.error.description.contains("plain"));
    let e = redirect_error(validate(
        &params(&[("code_challenge", "")]),
        &c,
        &Policy::example(),
    ));
    assert!(e.error.description.contains("without code_challenge"));
}

#[test]
fn allow_listed_chatgpt_hosts_may_omit_pkce() {
    for host in [
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://chat.openai.com/aip/x/oauth/callback",
    ] {
        let req = validate(
            &params(&[
                ("redirect_uri", host),
                ("code_challenge", ""),
                ("code_challenge_method", ""),
            ]),
            &client(&[host]),
            &Policy::example(),
        )
        .unwrap();
        assert_eq!(req.code_challenge, None);
    }
    // Not a sub-domain, not another host.
    let other = "https://evilchatgpt.com/cb";
    assert!(
        validate(
            &params(&[
                ("redirect_uri", other),
                ("code_challenge", ""),
                ("code_challenge_method", "")
            ]),
            &client(&[other]),
            &Policy::example()
        )
        .is_err()
    );
}

#[test]
fn scope_rules() {
    let c = client(&["https://app.example/cb"]);
    let p = Policy::example();
    assert_eq!(
        validate(&params(&[("scope", "")]), &c, &p)
            .unwrap()
            .scope
            .to_string(),
        "mcp"
    );
    let e = redirect_error(validate(&params(&[("scope", "admin mcp")]), &c, &p));
    assert_eq!(e.error.code, ErrorCode::InvalidScope);
    assert!(e.error.description.contains("admin"));
}

#[test]
fn resource_rules() {
    let c = client(&["https://app.example/cb"]);
    let mut p = Policy::example();
    assert!(
        validate(
            &params(&[("resource", "https://gate.example/v1/ai/mcp/")]),
            &c,
            &p
        )
        .is_ok()
    );
    assert!(
        validate(
            &params(&[("resource", "HTTPS://GATE.example/v1/ai/mcp")]),
            &c,
            &p
        )
        .is_ok()
    );
    let e = redirect_error(validate(
        &params(&[("resource", "https://gate.example/other")]),
        &c,
        &p,
    ));
    assert_eq!(e.error.code, ErrorCode::InvalidTarget);
    assert!(
        e.error
            .description
            .contains("https://gate.example/v1/ai/mcp")
    );
    assert!(validate(&params(&[("resource", "")]), &c, &p).is_ok());
    p.require_resource = true;
    let e = redirect_error(validate(&params(&[("resource", "")]), &c, &p));
    assert_eq!(e.error.code, ErrorCode::InvalidTarget);
    assert!(e.error.description.contains("required"));
    assert!(
        e.error
            .description
            .contains("https://gate.example/v1/ai/mcp")
    );
}

#[test]
fn response_type_rules() {
    let c = client(&["https://app.example/cb"]);
    let e = redirect_error(validate(
        &params(&[("response_type", "token")]),
        &c,
        &Policy::example(),
    ));
    assert_eq!(e.error.code, ErrorCode::UnsupportedResponseType);
    let e = redirect_error(validate(
        &params(&[("response_type", "")]),
        &c,
        &Policy::example(),
    ));
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
}

#[test]
fn error_locations_carry_state_and_iss() {
    let e = ErrorRedirect {
        redirect_uri: RedirectUri::parse("https://app.example/cb").unwrap(),
        error: OAuthError::invalid_scope("bad"),
        state: Some("s 1".into()),
    };
    assert_eq!(
        e.location("https://gate.example"),
        "https://app.example/cb?error=invalid_scope&error_description=bad&state=s+1&iss=https%3A%2F%2Fgate.example"
    );
}

#[test]
fn codes_are_bound_to_the_request_and_expire() {
    let p = Policy::example();
    let req = validate(&params(&[]), &client(&["https://app.example/cb"]), &p).unwrap();
    let (code, rec) = issue_code(&req, "user-1", &p, 1000);
    assert_eq!(rec.code_hash, hash_secret(code.expose()));
    assert_eq!(rec.expires_at, 1060);
    assert_eq!(rec.user_id, "user-1");
    assert_eq!(
        rec.code_challenge.as_ref().map(CodeChallenge::as_str),
        Some(CHALLENGE)
    );
    let loc = success_location(&req, &code, &p.issuer);
    assert!(loc.starts_with("https://app.example/cb?code="));
    assert!(loc.ends_with("&state=st&iss=https%3A%2F%2Fgate.example"));
}

#[test]
fn consent_is_remembered_per_scope() {
    let p = Policy::example();
    let req = validate(&params(&[]), &client(&["https://app.example/cb"]), &p).unwrap();
    assert!(!consent_covers(None, &req));
    let c = consent_after_approval(None, &req, "u", 5);
    assert!(consent_covers(Some(&c), &req));
}

#[test]
fn consent_is_remembered_per_redirect_uri_and_loopback_ports_are_one() {
    let p = Policy::example();
    let c = client(&[
        "https://app.example/cb",
        "https://app.example/other",
        "http://localhost/callback",
    ]);
    let req = validate(&params(&[]), &c, &p).unwrap();
    let consent = consent_after_approval(None, &req, "u", 5);
    assert_eq!(consent.redirect_uri, "https://app.example/cb");
    let other = validate(
        &params(&[("redirect_uri", "https://app.example/other")]),
        &c,
        &p,
    )
    .unwrap();
    assert!(!consent_covers(Some(&consent), &other));
    let first = validate(
        &params(&[("redirect_uri", "http://localhost:50123/callback")]),
        &c,
        &p,
    )
    .unwrap();
    let loopback = consent_after_approval(None, &first, "u", 5);
    assert_eq!(loopback.redirect_uri, "http://localhost/callback");
    let next = validate(
        &params(&[("redirect_uri", "http://localhost:61999/callback")]),
        &c,
        &p,
    )
    .unwrap();
    assert!(consent_covers(Some(&loopback), &next));
    // A row from before consents had a redirect URI never matches.
    let legacy = Consent {
        redirect_uri: String::new(),
        ..consent
    };
    assert!(!consent_covers(Some(&legacy), &req));
}

#[test]
fn repeated_parameters_redirect_unless_they_are_client_id_or_redirect_uri() {
    let c = client(&["https://app.example/cb"]);
    let base = "response_type=code&client_id=client-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=st&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let p = Params::parse_lenient(&format!("{base}&scope=mcp&scope=mcp"));
    let e = redirect_error(validate(&p, &c, &Policy::example()));
    assert!(
        e.error
            .description
            .contains("\"scope\" was sent more than once")
    );
    assert_eq!(e.state.as_deref(), Some("st"));
    let p = Params::parse_lenient(&format!(
        "{base}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
    ));
    assert!(
        page_error(validate(&p, &c, &Policy::example()))
            .description
            .contains("redirect_uri")
    );
    let p = Params::parse_lenient(&format!("{base}&client_id=other"));
    assert!(matches!(client_id(&p), Err(Rejection::Page(_))));
}

#[test]
fn huge_lifetimes_saturate_instead_of_wrapping_into_the_past() {
    let mut p = Policy::example();
    p.auth_code_ttl = i64::MAX;
    p.access_token_ttl = i64::MAX;
    p.refresh_token_ttl = i64::MAX;
    let now = 1_800_000_000;
    let req = validate(&params(&[]), &client(&["https://app.example/cb"]), &p).unwrap();
    let (_, rec) = issue_code(&req, "user-1", &p, now);
    assert_eq!(rec.expires_at, i64::MAX);
    let minted = crate::oauth::tokens::for_code(&rec, true, &p, now);
    assert_eq!(minted.access.expires_at, i64::MAX);
    assert_eq!(
        minted.refresh.as_ref().map(|r| r.expires_at),
        Some(i64::MAX)
    );
}

#[test]
fn a_registered_scope_limits_preregistered_clients_only() {
    let mut policy = Policy::example();
    policy.scopes_supported = vec!["mcp".into(), "files:write".into()];
    let mut c = client(&["https://app.example/cb"]);
    c.metadata.scope = Some(Scope::parse("mcp").unwrap());
    let wider = params(&[("scope", "mcp files:write")]);
    // Self-registered (or a metadata document): its own claim; a step-up
    // asks for more than it registered with.
    for kind in [
        crate::model::ClientKind::Dynamic,
        crate::model::ClientKind::MetadataDocument,
    ] {
        c.kind = kind;
        let r = validate(&wider, &c, &policy).expect("a step-up beyond the registered scope");
        assert_eq!(r.scope.to_string(), "files:write mcp");
    }
    // Added by the operator: the registered scope is the limit.
    c.kind = crate::model::ClientKind::Preregistered;
    let e = redirect_error(validate(&wider, &c, &policy));
    assert_eq!(e.error.code, crate::oauth::ErrorCode::InvalidScope);
    assert!(
        e.error
            .description
            .contains("beyond what this client registered"),
        "{}",
        e.error.description
    );
    // offline_access is never beyond it.
    let offline = params(&[("scope", "mcp offline_access")]);
    assert!(validate(&offline, &c, &policy).is_ok());
}
