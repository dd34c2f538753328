//! Sign-in through a plain OAuth 2.0 provider without ID tokens (the
//! fixture in GitHub's style: a numeric `id` and a `login` at `/user`).

use reqwest::StatusCode;
use serde_json::json;

use crate::federation_fixture::{Fault, Mode};
use crate::federation_support::{PROVIDER_ID, assert_failure, fed};

#[tokio::test]
async fn github_style_sign_in_finishes_the_mcp_flow() {
    for auth in ["basic", "post"] {
        let f = fed(Mode::OAuth2, json!({"client_auth": auth})).await;
        let redirect = f.sign_in().await;
        let token = f.exchange(&redirect).await;
        assert!(f.whoami(&token).await.contains("ann"), "{auth}");
        // GitHub's numeric id is the subject.
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
        let req = &f.idp.authorize_requests()[0];
        assert!(
            !req.contains_key("nonce"),
            "no OIDC nonce for plain OAuth 2.0"
        );
        assert_eq!(req["code_challenge_method"], "S256");
        assert_eq!(req["scope"], "read:user user:email");
        assert!(f.idp.redirect_uris().iter().all(|u| *u == f.callback_url()));
        // Again: the same user.
        f.sign_in().await;
        assert_eq!(f.app.store.count_users().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_user_info_without_the_subject_field_is_refused() {
    let f = fed(Mode::OAuth2, json!({})).await;
    f.idp
        .set_account(json!({"sub": "not-a-number", "preferred_username": "x"}));
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    let html = assert_failure(
        b.get(&cb).await,
        StatusCode::BAD_REQUEST,
        "federation.invalid_userinfo",
    )
    .await;
    assert!(html.contains("usable account"), "{html}");
}

#[tokio::test]
async fn email_rules_apply_to_oauth2_providers() {
    let f = fed(
        Mode::OAuth2,
        json!({"allowed_email_domains": ["corp.example"]}),
    )
    .await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    assert_failure(
        b.get(&cb).await,
        StatusCode::FORBIDDEN,
        "federation.user_not_allowed",
    )
    .await;
    // A private email (GitHub's null) cannot pass an email rule.
    let f = fed(
        Mode::OAuth2,
        json!({"allowed_email_domains": ["example.com"]}),
    )
    .await;
    let mut account = crate::federation_fixture::default_account();
    account["email"] = json!(null);
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
async fn a_refused_code_and_a_provider_that_is_down() {
    let f = fed(Mode::OAuth2, json!({})).await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    // A code the provider never issued: the provider refuses it.
    let code = crate::helpers::query_param(&cb, "code").unwrap();
    let forged = cb.replace(&code, "forged-code");
    assert_failure(
        b.get(&forged).await,
        StatusCode::BAD_REQUEST,
        "federation.code_exchange_failed",
    )
    .await;
    let b = f.app.browser();
    let cb = f.to_callback(&b).await;
    f.idp.set_fault(Some(Fault::Down));
    assert_failure(
        b.get(&cb).await,
        StatusCode::BAD_GATEWAY,
        "federation.provider_unavailable",
    )
    .await;
}

#[tokio::test]
async fn the_primary_verified_email_comes_from_the_emails_endpoint() {
    let settings = json!({
        "emails_endpoint": "{idp}/user/emails",
        "allowed_email_domains": ["corp.example"],
    });
    // The public email (/user) is private (null); the list has an
    // unverified address and a verified primary one in the allowed domain.
    let mut account = crate::federation_fixture::default_account();
    account["email"] = json!(null);
    account["emails"] = json!([
        {"email": "ann@other.example", "primary": false, "verified": false},
        {"email": "ann@corp.example", "primary": true, "verified": true},
    ]);
    let f = fed(Mode::OAuth2, settings.clone()).await;
    f.idp.set_account(account.clone());
    let token = f.exchange(&f.sign_in().await).await;
    assert!(f.whoami(&token).await.contains("ann"));
    let link = f
        .app
        .store
        .identity(PROVIDER_ID, "4242")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.email.as_deref(), Some("ann@corp.example"));
    // An unverified primary address does not count.
    account["emails"] = json!([{"email": "ann@corp.example", "primary": true, "verified": false}]);
    let f = fed(Mode::OAuth2, settings).await;
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
