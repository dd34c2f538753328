//! Sign-out at `POST /v1/oauth/logout` and `POST /logout`: the consent
//! page's "Not you? Sign out" button, the CSRF check, the end of the login
//! session, and the return to the sign-in page of the same request (and
//! nowhere else).

use reqwest::StatusCode;

use crate::helpers::{
    Browser, PASSWORD, TestApp, form_action, hidden_inputs, location, query_param, spawn_app,
};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

type Form = Vec<(String, String)>;

async fn app_with_client() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let client_id = app.register_public(REDIRECT).await;
    (app, client_id)
}

/// Signs alice in at `authorize` (a path) with `params`; returns the
/// consent page and the session cookie (`name=value`) set by the sign-in.
async fn signed_in(browser: &Browser, authorize: &str, params: &Form) -> (String, String) {
    let q = crate::helpers::serde_urlencoded_pairs(params);
    let r = browser.get(&format!("{authorize}?{q}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Allow access?</h1>"), "{html}");
    (html, cookie)
}

/// The `formaction` of the consent page's sign-out button.
fn sign_out_action(html: &str) -> String {
    let at = html.find("formaction=\"").expect("a sign-out button") + "formaction=\"".len();
    let rest = &html[at..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// GET the authorization request with only `cookie` (no jar): the page's `<h1>`.
async fn page_with_cookie(app: &TestApp, authorize: &str, params: &Form, cookie: &str) -> String {
    let q = crate::helpers::serde_urlencoded_pairs(params);
    let r = app
        .http
        .get(app.url(&format!("{authorize}?{q}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let start = html.find("<h1>").expect("h1") + 4;
    html[start..start + html[start..].find("</h1>").unwrap()].to_string()
}

fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_consent_page_has_a_sign_out_button_that_posts_the_form_to_logout() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let (html, _) = signed_in(&app.browser(), "/v1/oauth/authorize", &params).await;
    assert!(html.contains("Not you?"), "{html}");
    assert!(
        html.contains(
            r#"<button type="submit" class="link" formaction="/v1/oauth/logout" formnovalidate>Sign out</button>"#
        ),
        "{html}"
    );
    // Still one form, posting to the authorization endpoint.
    assert_eq!(html.matches("<form").count(), 1);
    assert_eq!(form_action(&html), "/v1/oauth/authorize");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_returns_to_the_sign_in_page_of_the_same_request() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let (html, cookie) = signed_in(&browser, "/v1/oauth/authorize", &params).await;

    let r = browser
        .post_form(&sign_out_action(&html), &hidden_inputs(&html))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r).contains("Max-Age=0"), "{}", set_cookie(&r));
    let back = location(&r);
    assert!(back.starts_with("/v1/oauth/authorize?"), "{back}");
    for (k, v) in &params {
        assert_eq!(query_param(&back, k).as_deref(), Some(v.as_str()), "{k}");
    }
    assert!(query_param(&back, "csrf_token").is_none(), "{back}");

    // The same request, now at the sign-in page.
    let r = browser.get(&back).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("<h1>Sign in</h1>"), "{page}");
    assert!(page.contains(&client_id));

    // The old session cookie no longer signs anyone in.
    assert_eq!(
        page_with_cookie(&app, "/v1/oauth/authorize", &params, &cookie).await,
        "Sign in"
    );
}

#[tokio::test]
async fn the_root_style_logout_returns_to_the_root_style_authorization_endpoint() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let (html, _) = signed_in(&browser, "/authorize", &params).await;
    assert_eq!(sign_out_action(&html), "/logout");
    let r = browser.post_form("/logout", &hidden_inputs(&html)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/authorize?"), "{}", location(&r));
}

#[tokio::test]
async fn a_sign_out_without_a_valid_csrf_token_is_refused_and_the_session_stays() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let (html, cookie) = signed_in(&browser, "/v1/oauth/authorize", &params).await;
    let form = hidden_inputs(&html);
    let without: Form = form
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .collect();
    let mut wrong = without.clone();
    wrong.push(("csrf_token".into(), "forged".into()));

    for (what, f) in [("missing", &without), ("wrong", &wrong)] {
        let r = browser.post_form("/v1/oauth/logout", f).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(r.headers().get("location").is_none(), "{what}");
        assert!(!set_cookie(&r).contains("Max-Age=0"), "{what}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("This sign-out form has expired or was not sent from this site")
                && page.contains("you were not signed out"),
            "{what}: {page}"
        );
    }

    // A cross-site POST: the real token, but no cookie (SameSite=Lax keeps
    // it from cross-site form posts).
    let r = app
        .http
        .post(app.url("/v1/oauth/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Still signed in.
    assert_eq!(
        page_with_cookie(&app, "/v1/oauth/authorize", &params, &cookie).await,
        "Allow access?"
    );
}

#[tokio::test]
async fn signing_out_without_a_pending_request_shows_the_signed_out_page() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);
    let browser = app.browser();
    let (html, cookie) = signed_in(&browser, "/v1/oauth/authorize", &params).await;
    let csrf: Form = hidden_inputs(&html)
        .into_iter()
        .filter(|(k, _)| k == "csrf_token")
        .collect();
    let r = browser.post_form("/v1/oauth/logout", &csrf).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("location").is_none());
    assert!(set_cookie(&r).contains("Max-Age=0"));
    let page = r.text().await.unwrap();
    assert!(page.contains("<h1>You are signed out</h1>"), "{page}");
    assert_eq!(
        page_with_cookie(&app, "/v1/oauth/authorize", &params, &cookie).await,
        "Sign in"
    );
}

#[tokio::test]
async fn the_return_target_is_never_taken_from_the_form() {
    let (app, client_id) = app_with_client().await;
    let params = app.auth_params(&client_id, REDIRECT);

    // Extra fields that look like return addresses are ignored.
    let browser = app.browser();
    let (html, _) = signed_in(&browser, "/v1/oauth/authorize", &params).await;
    let mut form = hidden_inputs(&html);
    for k in ["return_to", "next", "redirect", "continue"] {
        form.push((k.into(), "https://evil.example/".into()));
    }
    let r = browser.post_form("/v1/oauth/logout", &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(back.starts_with("/v1/oauth/authorize?"), "{back}");
    assert!(!back.contains("evil"), "{back}");

    // A request tampered to an unregistered redirect URI: signed out, but
    // sent nowhere.
    let browser = app.browser();
    let (html, _) = signed_in(&browser, "/v1/oauth/authorize", &params).await;
    let form: Form = hidden_inputs(&html)
        .into_iter()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k, "https://evil.example/cb".into())
            } else {
                (k, v)
            }
        })
        .collect();
    let r = browser.post_form("/v1/oauth/logout", &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("You are signed out"));
}
