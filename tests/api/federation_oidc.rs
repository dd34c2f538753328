//! Sign-in through an OpenID Connect provider (the in-process fixture):
//! the whole MCP OAuth flow, returning users, and every failure.

use reqwest::StatusCode;
use serde_json::json;

use crate::federation_fixture::{CLIENT_SECRET, Fault, Mode};
use crate::federation_support::{Fed, Logs, PROVIDER_ID, assert_failure, fed, fed_with};
use crate::helpers::{PASSWORD, hidden_inputs, query_param};

#[tokio::test]
async fn sign_in_creates_a_user_and_finishes_the_mcp_flow() {
    let f = fed(Mode::Oidc, json!({})).await;
    let redirect = f.sign_in().await;
    assert!(
        redirect.starts_with(crate::federation_support::CLIENT_REDIRECT),
        "{redirect}"
    );
    assert_eq!(
        query_param(&redirect, "state").as_deref(),
        Some("state-123")
    );
    let token = f.exchange(&redirect).await;
    assert!(
        f.whoami(&token).await.contains("ann"),
        "whoami names the federated user"
    );

    // A user without a password, linked to the provider's subject.
    let link = f
        .app
        .store
        .identity(PROVIDER_ID, "4242")
        .await
        .unwrap()
        .expect("linked");
    let user = f
        .app
        .store
        .user_by_id(&link.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.username, "ann");
    assert!(user.password_hash.is_none());
    assert_eq!(link.email.as_deref(), Some("ann@example.com"));

    // The provider saw only our callback URL, never the client's redirect URI,
    // and a PKCE S256 challenge, our state and a nonce.
    let seen = f.idp.redirect_uris();
    assert_eq!(seen.len(), 2, "authorize and token requests");
    assert!(seen.iter().all(|u| *u == f.callback_url()), "{seen:?}");
    let req = &f.idp.authorize_requests()[0];
    assert_eq!(req["code_challenge_method"], "S256");
    assert_eq!(req["code_challenge"].len(), 43);
    assert!(req["nonce"].len() >= 43 && req["state"].len() >= 43);
    assert_ne!(req["state"], "state-123", "our own state, not the client's");
    let scope: Vec<&str> = req["scope"].split(' ').collect();
    assert!(
        ["openid", "email", "profile"]
            .iter()
            .all(|s| scope.contains(s)),
        "{scope:?}"
    );
}

#[tokio::test]
async fn a_returning_user_signs_in_as_the_same_user() {
    let f = fed(Mode::Oidc, json!({})).await;
    f.sign_in().await;
    let first = f
        .app
        .store
        .identity(PROVIDER_ID, "4242")
        .await
        .unwrap()
        .unwrap();
    let users = f.app.store.count_users().await.unwrap();
    // A new browser: sign in again; consent is remembered, so the code comes at once.
    let redirect = f.sign_in().await;
    let token = f.exchange(&redirect).await;
    assert!(f.whoami(&token).await.contains("ann"));
    assert_eq!(f.app.store.count_users().await.unwrap(), users);
    let again = f
        .app
        .store
        .identity(PROVIDER_ID, "4242")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.user_id, again.user_id);
}

#[tokio::test]
async fn a_taken_username_gets_a_suffix_and_the_federated_user_has_no_password() {
    let f = fed(Mode::Oidc, json!({})).await;
    f.app.add_user("ann").await;
    f.sign_in().await;
    let link = f
        .app
        .store
        .identity(PROVIDER_ID, "4242")
        .await
        .unwrap()
        .unwrap();
    let user = f
        .app
        .store
        .user_by_id(&link.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.username, "ann-2");
    // Password sign-in as the federated user fails like a wrong password.
    let b = f.app.browser();
    let html = b.open_authorize(&f.params()).await.text().await.unwrap();
    let r = b.submit_login(&html, "ann-2", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Wrong username or password")
    );
}

#[tokio::test]
async fn a_tampered_state_is_refused_and_the_real_one_still_works() {
    let f = fed(Mode::Oidc, json!({})).await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let state = query_param(&cb, "state").unwrap();
    let mut tampered_state = state.clone();
    tampered_state.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
    let tampered = cb.replace(&state, &tampered_state);
    let html = assert_failure(
        b.get(&tampered).await,
        StatusCode::BAD_REQUEST,
        "federation.bad_state",
    )
    .await;
    assert!(
        html.contains("Try again"),
        "a retry link to the authorization request: {html}"
    );
    assert!(html.contains("/v1/oauth/authorize?"), "{html}");
    // The browser lost its binding cookie with the failure; a fresh attempt works.
    let redirect = f.sign_in().await;
    assert!(query_param(&redirect, "code").is_some());
}

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused() {
    // RFC 9207: the `iss` of the authorization response must be the provider's.
    let f = fed(Mode::Oidc, json!({})).await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let mixed_up = format!("{cb}&iss=https%3A%2F%2Fevil.example");
    assert_failure(
        b.get(&mixed_up).await,
        StatusCode::BAD_REQUEST,
        "federation.bad_state",
    )
    .await;
    assert_eq!(f.app.store.count_users().await.unwrap(), 0);
    // The provider's own issuer is accepted.
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let iss: String = url::form_urlencoded::byte_serialize(f.idp.url.as_bytes()).collect();
    f.finish(&b, &format!("{cb}&iss={iss}")).await;
}

#[tokio::test]
async fn a_callback_is_used_once_and_only_in_the_browser_that_started_it() {
    let f = fed(Mode::Oidc, json!({})).await;
    // Another browser (an attacker's victim) cannot complete my sign-in.
    let mine = f.app.browser();
    let cb = f.to_callback(&mine).await;
    let other = f.app.browser();
    assert_failure(
        other.get(&cb).await,
        StatusCode::BAD_REQUEST,
        "federation.bad_state",
    )
    .await;
    assert!(
        f.app.store.count_users().await.unwrap() == 0,
        "nobody was created"
    );
    // It is still mine to finish, once.
    f.finish(&mine, &cb).await;
    let again = mine.get(&cb).await;
    assert_failure(again, StatusCode::BAD_REQUEST, "federation.bad_state").await;
}

#[tokio::test]
async fn a_pending_sign_in_expires() {
    let f = fed(Mode::Oidc, json!({})).await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    f.app.clock.advance(601);
    let html = assert_failure(
        b.get(&cb).await,
        StatusCode::BAD_REQUEST,
        "federation.expired",
    )
    .await;
    assert!(
        html.contains("expired") && html.contains("Try again"),
        "{html}"
    );
    assert_eq!(f.app.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn denied_at_the_provider() {
    let f = fed(Mode::Oidc, json!({})).await;
    f.idp.set_fault(Some(Fault::Deny));
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    assert_eq!(query_param(&cb, "error").as_deref(), Some("access_denied"));
    let html = assert_failure(b.get(&cb).await, StatusCode::FORBIDDEN, "federation.denied").await;
    assert!(html.contains("Access was denied at Fixture ID"), "{html}");
    assert!(
        !html.contains("<b>The user said no"),
        "the provider's description is not shown raw"
    );
    assert!(html.contains("Try again"));
}

#[tokio::test]
async fn bad_id_tokens_are_refused() {
    for (fault, why) in [
        (Fault::WrongKey, "signed with the wrong key"),
        (Fault::WrongNonce, "another nonce"),
        (Fault::WrongAudience, "for another client"),
        (Fault::Expired, "expired"),
    ] {
        let f = fed(Mode::Oidc, json!({})).await;
        f.idp.set_fault(Some(fault));
        let b = f.app.browser();
        let cb = f.to_callback(&b).await;
        let r = b.get(&cb).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("federation.invalid_id_token"),
            "{why}: {html}"
        );
        assert!(html.contains("could not be verified"), "{why}");
        assert_eq!(f.app.store.count_users().await.unwrap(), 0, "{why}");
    }
}

#[tokio::test]
async fn a_provider_that_is_down_gets_a_clear_page_and_is_tried_again_later() {
    let f = fed(Mode::Oidc, json!({})).await;
    // Down before the first use: mcpgate started anyway (discovery is lazy).
    f.idp.set_fault(Some(Fault::Down));
    let b = f.app.browser();
    let html = b.open_authorize(&f.params()).await.text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("provider".into(), PROVIDER_ID.into()));
    let r = b.post_form("/v1/oauth/authorize", &form).await;
    let page = assert_failure(
        r,
        StatusCode::BAD_GATEWAY,
        "federation.provider_unavailable",
    )
    .await;
    assert!(
        page.contains("cannot be reached") && page.contains("Try again"),
        "{page}"
    );
    // Back up: it works.
    f.idp.set_fault(None);
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    // Down between the redirect and the code exchange.
    f.idp.set_fault(Some(Fault::Down));
    assert_failure(
        b.get(&cb).await,
        StatusCode::BAD_GATEWAY,
        "federation.provider_unavailable",
    )
    .await;
}

#[tokio::test]
async fn restrictions_decide_who_may_sign_in() {
    let cases = [
        (json!({"allowed_email_domains": ["corp.example"]}), false),
        (json!({"allowed_email_domains": ["example.com"]}), true),
        (json!({"allowed_emails": ["bob@example.com"]}), false),
        (json!({"allowed_emails": ["ANN@example.com"]}), true),
        (
            json!({"required_claim": {"name": "groups", "value": "admins"}}),
            false,
        ),
        (
            json!({"required_claim": {"name": "groups", "value": "staff"}}),
            true,
        ),
    ];
    for (tweak, allowed) in cases {
        let f = fed(Mode::Oidc, tweak.clone()).await;
        let b = f.app.browser();
        let cb = f.to_callback(&b).await;
        if allowed {
            f.finish(&b, &cb).await;
        } else {
            let html = assert_failure(
                b.get(&cb).await,
                StatusCode::FORBIDDEN,
                "federation.user_not_allowed",
            )
            .await;
            assert!(html.contains("not allowed"), "{tweak}: {html}");
            assert_eq!(f.app.store.count_users().await.unwrap(), 0, "{tweak}");
        }
    }
    // An unverified email does not pass an email rule.
    let f = fed(
        Mode::Oidc,
        json!({"allowed_email_domains": ["example.com"]}),
    )
    .await;
    let mut account = crate::federation_fixture::default_account();
    account["email_verified"] = json!(false);
    f.idp.set_account(account);
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    assert_failure(
        b.get(&cb).await,
        StatusCode::FORBIDDEN,
        "federation.user_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn without_create_users_only_linked_identities_sign_in() {
    let f = fed(Mode::Oidc, json!({"create_users": false})).await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let html = assert_failure(
        b.get(&cb).await,
        StatusCode::FORBIDDEN,
        "federation.no_account",
    )
    .await;
    assert!(html.contains("not linked"), "{html}");
    assert_eq!(f.app.store.count_users().await.unwrap(), 0);
    // An admin links the identity to an existing user.
    f.app.add_user("annie").await;
    mcpgate::federation::users::link(f.app.store.as_ref(), "annie", PROVIDER_ID, "4242", 0)
        .await
        .unwrap();
    let token = f.exchange(&f.sign_in().await).await;
    assert!(f.whoami(&token).await.contains("annie"));
    mcpgate::federation::users::unlink(f.app.store.as_ref(), PROVIDER_ID, "4242")
        .await
        .unwrap();
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    assert_failure(
        b.get(&cb).await,
        StatusCode::FORBIDDEN,
        "federation.no_account",
    )
    .await;
}

#[tokio::test]
async fn password_login_can_be_turned_off() {
    let f = fed_with(Mode::Oidc, json!({}), |s| s.password_login = false).await;
    let b = f.app.browser();
    let r = b.open_authorize(&f.params()).await;
    let html = r.text().await.unwrap();
    assert!(!html.contains("type=\"password\""), "{html}");
    assert!(html.contains("Sign in with Fixture ID"), "{html}");
    f.app.add_user("bob").await;
    let r = b.submit_login(&html, "bob", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("turned off"));
    // With it on (the default), both are offered.
    let f = fed(Mode::Oidc, json!({})).await;
    let html = f
        .app
        .browser()
        .open_authorize(&f.params())
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("type=\"password\"") && html.contains("Sign in with Fixture ID"));
}

#[tokio::test]
async fn an_unknown_provider_or_a_missing_state_is_refused() {
    let f = fed(Mode::Oidc, json!({})).await;
    let b = f.app.browser();
    let html = b.open_authorize(&f.params()).await.text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("provider".into(), "nope".into()));
    let r = b.post_form("/v1/oauth/authorize", &form).await;
    assert_failure(r, StatusCode::BAD_REQUEST, "federation.unknown_provider").await;
    let r = b.get("/oauth/callback?code=abc").await;
    assert_failure(r, StatusCode::BAD_REQUEST, "federation.bad_state").await;
    // The login form's CSRF check covers the provider button too.
    let form: Vec<(String, String)> = hidden_inputs(&html)
        .into_iter()
        .filter(|(k, _)| k != "csrf_token")
        .chain([("provider".to_string(), PROVIDER_ID.to_string())])
        .collect();
    let r = b.post_form("/v1/oauth/authorize", &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(f.idp.authorize_requests().is_empty());
}

#[tokio::test]
async fn secrets_stay_out_of_the_logs() {
    let logs = Logs::capture();
    let f: Fed = fed(Mode::Oidc, json!({})).await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let code = query_param(&cb, "code").unwrap();
    let state = query_param(&cb, "state").unwrap();
    let redirect = f.finish(&b, &cb).await;
    let token = f.exchange(&redirect).await;
    // And a failure.
    f.idp.set_fault(Some(Fault::WrongKey));
    let b2 = f.app.browser();
    let cb2 = f.to_callback(&b2).await;
    b2.get(&cb2).await;
    let text = logs.text();
    assert!(text.contains("federation.login"), "{text}");
    assert!(text.contains("federation.invalid_id_token"), "{text}");
    for secret in [CLIENT_SECRET, code.as_str(), state.as_str(), token.as_str()] {
        assert!(!text.contains(secret), "a secret in the logs: {secret}");
    }
}
