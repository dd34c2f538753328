//! Unit tests of the page rendering: escaping of hostile values, layouts.

use super::*;

const HOSTILE: &str = r#"<script>alert("x")</script>&'"><img src=x onerror=alert(1)>"#;

fn hv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn login_view() -> LoginView {
    LoginView {
        stylesheet_url: "/assets/mcpgate.css".into(),
        server_name: "mcpgate".into(),
        action_url: "/authorize".into(),
        client_name: "Claude Desktop".into(),
        client_id: "c_123".into(),
        redirect_host: "app.example.com".into(),
        hidden: hv(&[
            ("response_type", "code"),
            ("client_id", "c_123"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("state", "s-1"),
            ("code_challenge", "abcDEF_-123"),
            ("code_challenge_method", "S256"),
        ]),
        csrf_token: "csrf-tok-1".into(),
        username: String::new(),
        error: None,
        password_login: true,
        providers: Vec::new(),
    }
}

#[test]
fn the_consent_page_says_how_the_client_is_identified() {
    let html = pages().consent(&consent_view()).expect("render");
    assert!(html.contains("registered itself"), "{html}");
    assert!(html.contains("Claude Desktop"), "{html}");
    let v = ConsentView {
        client_kind: "metadata_document".into(),
        client_host: Some("chatgpt.com".into()),
        client_name: "ChatGPT".into(),
        ..consent_view()
    };
    let html = pages().consent(&v).expect("render");
    assert!(
        html.contains("<strong class=\"client-host\">chatgpt.com</strong>"),
        "{html}"
    );
    assert!(html.contains("identified by its domain"), "{html}");
    assert!(!html.contains("registered itself"), "{html}");
    let v = ConsentView {
        client_kind: "preregistered".into(),
        ..consent_view()
    };
    let html = pages().consent(&v).expect("render");
    assert!(html.contains("registered by the operator"), "{html}");
}

#[test]
fn an_incremental_consent_lists_the_new_scopes_and_the_granted_ones_apart() {
    let html = pages().consent(&consent_view()).expect("render");
    assert!(html.contains("It will be able to"), "{html}");
    assert!(!html.contains("already allowed"), "{html}");
    let v = ConsentView {
        scopes: vec![ScopeView {
            name: "files:write".into(),
            description: "Change your files".into(),
        }],
        granted_scopes: vec![ScopeView {
            name: "mcp".into(),
            description: "Use the tools".into(),
        }],
        ..consent_view()
    };
    let html = pages().consent(&v).expect("render");
    assert!(html.contains("It will also be able to"), "{html}");
    let (new, granted) = html
        .split_once("already allowed")
        .expect("the granted part");
    assert!(
        new.contains("<code>files:write</code> Change your files"),
        "{html}"
    );
    assert!(!new.contains("<code>mcp</code>"), "{html}");
    assert!(granted.contains("<code>mcp</code> Use the tools"), "{html}");
    assert!(!granted.contains("files:write"), "{html}");
}

fn consent_view() -> ConsentView {
    ConsentView {
        stylesheet_url: "/assets/mcpgate.css".into(),
        server_name: "mcpgate".into(),
        action_url: "/authorize".into(),
        client_name: "Claude Desktop".into(),
        client_id: "c_123".into(),
        client_uri: None,
        redirect_host: "app.example.com".into(),
        redirect_is_loopback: false,
        scopes: vec![
            ScopeView {
                name: "mcp:read".into(),
                description: "Read your notes".into(),
            },
            ScopeView {
                name: "mcp:write".into(),
                description: "Change your notes".into(),
            },
        ],
        granted_scopes: Vec::new(),
        username: "alice".into(),
        hidden: hv(&[
            ("client_id", "c_123"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("state", "s-1"),
        ]),
        csrf_token: "csrf-tok-2".into(),
        logout_url: "/logout".into(),
        client_kind: "dynamic".into(),
        client_host: None,
    }
}

fn error_view() -> ErrorView {
    ErrorView {
        stylesheet_url: "/assets/mcpgate.css".into(),
        server_name: "mcpgate".into(),
        title: "This sign-in link cannot be used".into(),
        message: "redirect_uri is not registered for this client".into(),
        code: None,
        retry_url: None,
    }
}

fn pages() -> Pages {
    Pages::new().expect("templates compile")
}

/// Returns the value of every `<input type="hidden" name="{name}" value="…">`.
fn hidden_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!(r#"<input type="hidden" name="{name}" value=""#);
    html.match_indices(&prefix)
        .map(|(i, _)| {
            let rest = &html[i + prefix.len()..];
            let end = rest.find("\">").expect("closed input");
            &rest[..end]
        })
        .collect()
}

fn assert_document(html: &str, title_prefix: &str) {
    assert!(html.starts_with("<!doctype html>\n"), "{html}");
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains(r#"<meta charset="utf-8">"#));
    assert!(
        html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    assert!(html.contains(&format!("<title>{title_prefix}")), "{html}");
    assert!(html.contains(r#"<link rel="stylesheet" href="/assets/mcpgate.css">"#));
    // No inline styles or scripts: the CSP would block them.
    for banned in ["<script", "<style", "style=", "javascript:"] {
        assert!(!html.contains(banned), "found {banned:?} in {html}");
    }
    // No event-handler attributes (` onclick=` and the like).
    for (i, _) in html.match_indices(" on") {
        let word: String = html[i + 1..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        assert!(
            !html[i + 1 + word.len()..].starts_with('='),
            "event handler {word} in {html}"
        );
    }
}

fn assert_one_form(html: &str) {
    assert_eq!(html.matches("<form").count(), 1, "{html}");
    assert_eq!(
        html.matches(r#"<form method="post" action="/authorize">"#)
            .count(),
        1
    );
    assert_eq!(html.matches("</form>").count(), 1);
}

#[test]
fn login_page_follows_the_form_contract() {
    let html = pages().login(&login_view()).expect("render");
    assert_document(&html, "Sign in");
    assert_one_form(&html);
    assert_eq!(hidden_values(&html, "action"), ["login"]);
    assert_eq!(hidden_values(&html, "csrf_token"), ["csrf-tok-1"]);
    for (k, v) in &login_view().hidden {
        assert_eq!(hidden_values(&html, k), [v.as_str()], "param {k}");
    }
    assert!(html.contains(r#"<input name="username" autocomplete="username" required autofocus"#));
    assert!(html.contains(r#"value="""#), "username empty by default");
    assert!(html.contains(
        r#"<input type="password" name="password" autocomplete="current-password" required"#
    ));
    assert!(html.contains(r#"<label for="username">"#) && html.contains(r#"id="username""#));
    assert!(html.contains(r#"<label for="password">"#) && html.contains(r#"id="password""#));
    assert!(html.contains(r#"<button type="submit">Sign in</button>"#));
    // Says who is asking and where the user will end up.
    assert!(html.contains("Claude Desktop"));
    assert!(html.contains("app.example.com"));
    assert!(!html.contains(r#"class="error""#));
    assert!(!html.contains(">none"), "None must not render as text");
}

#[test]
fn login_page_shows_error_and_prefills_username() {
    let mut v = login_view();
    v.username = "alice".into();
    v.error = Some("Wrong username or password.".into());
    let html = pages().login(&v).expect("render");
    assert!(html.contains(r#"<p class="error" role="alert">Wrong username or password.</p>"#));
    assert!(html.contains(r#"type="text" value="alice""#));
    // The password is never echoed back.
    assert!(!html.contains(r#"name="password" value"#));
}

#[test]
fn consent_page_follows_the_form_contract() {
    let html = pages().consent(&consent_view()).expect("render");
    assert_document(&html, "Allow access?");
    assert_one_form(&html);
    assert_eq!(hidden_values(&html, "action"), ["consent"]);
    assert_eq!(hidden_values(&html, "csrf_token"), ["csrf-tok-2"]);
    assert_eq!(
        hidden_values(&html, "redirect_uri"),
        ["https://app.example.com/cb"]
    );
    assert_eq!(hidden_values(&html, "state"), ["s-1"]);
    assert!(
        html.contains(r#"<button type="submit" name="decision" value="approve">Allow</button>"#)
    );
    assert!(html.contains(r#"<button type="submit" name="decision" value="deny">Deny</button>"#));
    assert!(html.contains(
        r#"Not you? <button type="submit" class="link" formaction="/logout" formnovalidate>Sign out</button>"#
    ));
    assert!(html.contains(r#"<strong class="client-name">Claude Desktop</strong>"#));
    assert!(html.contains("<code>c_123</code>"));
    assert!(html.contains("You will be sent back to <strong>app.example.com</strong>."));
    assert!(html.contains("<strong>alice</strong>"));
    assert!(html.contains("<code>mcp:read</code> Read your notes"));
    assert!(html.contains("<code>mcp:write</code> Change your notes"));
    assert!(!html.contains("localhost"), "no loopback warning");
    assert!(!html.contains(r#"class="warning""#));
    assert!(!html.contains("Website"));
    assert!(!html.contains(">none"), "None must not render as text");
}

#[test]
fn consent_page_loopback_warning_and_client_uri() {
    let mut v = consent_view();
    v.redirect_is_loopback = true;
    v.redirect_host = "127.0.0.1:33418".into();
    v.client_uri = Some("https://client.example/about".into());
    let html = pages().consent(&v).expect("render");
    assert!(html.contains(r#"<p class="warning" role="note">"#));
    assert!(html.contains("an application running on this computer (localhost)"));
    assert!(html.contains("<strong>127.0.0.1:33418</strong>"));
    assert!(html.contains(
        r#"<a href="https://client.example/about" rel="noopener noreferrer">https://client.example/about</a>"#
    ));

    // A non-http(s) client_uri is shown as text, never as a link.
    v.client_uri = Some("javascript:alert(1)".into());
    let html = pages().consent(&v).expect("render");
    assert!(html.contains("<dd>javascript:alert(1)</dd>"));
    assert!(!html.contains(r#"href="javascript"#));
}

#[test]
fn print_sample_pages() {
    // `cargo test --lib web::tests::print_sample_pages -- --nocapture` shows the markup.
    let p = pages();
    let mut c = consent_view();
    c.redirect_is_loopback = true;
    println!("{}", p.login(&login_view()).expect("render"));
    println!("{}", p.consent(&c).expect("render"));
    println!("{}", p.error(&error_view()).expect("render"));
}

#[test]
fn consent_page_without_scopes() {
    let mut v = consent_view();
    v.scopes.clear();
    let html = pages().consent(&v).expect("render");
    assert!(!html.contains(r#"<ul class="scopes">"#));
    assert!(html.contains("No specific permissions were requested."));
}

#[test]
fn reserved_hidden_names_are_not_reposted() {
    let extra = hv(&[
        ("action", "consent"),
        ("csrf_token", "attacker"),
        ("decision", "approve"),
        ("username", "mallory"),
        ("password", "x"),
    ]);
    let mut l = login_view();
    l.hidden.extend(extra.iter().cloned());
    let html = pages().login(&l).expect("render");
    assert_eq!(hidden_values(&html, "action"), ["login"]);
    assert_eq!(hidden_values(&html, "csrf_token"), ["csrf-tok-1"]);
    for k in ["decision", "username", "password"] {
        assert!(hidden_values(&html, k).is_empty(), "{k} re-posted");
    }

    let mut c = consent_view();
    c.hidden.extend(extra);
    let html = pages().consent(&c).expect("render");
    assert_eq!(hidden_values(&html, "action"), ["consent"]);
    assert_eq!(hidden_values(&html, "csrf_token"), ["csrf-tok-2"]);
    for k in ["decision", "username", "password"] {
        assert!(hidden_values(&html, k).is_empty(), "{k} re-posted");
    }
}

#[test]
fn error_page_minimal() {
    let html = pages().error(&error_view()).expect("render");
    assert_document(&html, "This sign-in link cannot be used");
    assert!(!html.contains("<form"));
    assert!(html.contains("<h1>This sign-in link cannot be used</h1>"));
    assert!(html.contains("redirect_uri is not registered for this client"));
    assert!(html.contains("You can close this page and return to the application."));
    assert!(!html.contains("<code>"), "no code when unset");
    assert!(!html.contains("Try again"), "no retry link when unset");
    assert!(!html.contains(">none"), "None must not render as text");
}

#[test]
fn error_page_with_code_and_retry() {
    let mut v = error_view();
    v.code = Some("invalid_request".into());
    v.retry_url = Some("/authorize?client_id=c_123&state=s".into());
    let html = pages().error(&v).expect("render");
    assert!(html.contains("<code>invalid_request</code>"));
    assert!(html.contains(
        r#"<a class="button" href="/authorize?client_id=c_123&amp;state=s">Try again</a>"#
    ));
}

fn assert_escaped(html: &str) {
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(html.contains("&amp;&#x27;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let h = || HOSTILE.to_owned();
    let p = pages();

    let login = LoginView {
        stylesheet_url: h(),
        server_name: h(),
        action_url: h(),
        client_name: h(),
        client_id: h(),
        redirect_host: h(),
        hidden: vec![(h(), h())],
        csrf_token: h(),
        username: h(),
        error: Some(h()),
        password_login: true,
        providers: vec![ProviderButton {
            id: h(),
            display_name: h(),
        }],
    };
    let html = p.login(&login).expect("render");
    assert_escaped(&html);
    // Every field was rendered (escaped) somewhere.
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;";
    assert_eq!(html.matches(escaped).count(), 15, "{html}");

    let consent = ConsentView {
        stylesheet_url: h(),
        server_name: h(),
        action_url: h(),
        client_name: h(),
        client_id: h(),
        client_uri: Some(h()),
        redirect_host: h(),
        redirect_is_loopback: true,
        scopes: vec![ScopeView {
            name: h(),
            description: h(),
        }],
        granted_scopes: vec![ScopeView {
            name: h(),
            description: h(),
        }],
        username: h(),
        hidden: vec![(h(), h())],
        csrf_token: h(),
        logout_url: h(),
        client_kind: h(),
        client_host: None,
    };
    let html = p.consent(&consent).expect("render");
    assert_escaped(&html);
    // The name twice: the lead and the "registered itself" note.
    assert_eq!(html.matches(escaped).count(), 19, "{html}");
    let consent = ConsentView {
        client_host: Some(h()),
        ..consent
    };
    let html = p.consent(&consent).expect("render");
    assert_escaped(&html);

    let error = ErrorView {
        stylesheet_url: h(),
        server_name: h(),
        title: h(),
        message: h(),
        code: Some(h()),
        retry_url: Some(h()),
    };
    let html = p.error(&error).expect("render");
    assert_escaped(&html);
    assert_eq!(html.matches(escaped).count(), 8, "{html}");
}

#[test]
fn formatter_escapes_only_what_html_needs() {
    let mut env = Environment::new();
    env.set_formatter(html_formatter);
    env.add_template("t.html", "{{ s }}|{{ n }}|{{ s|safe }}")
        .expect("template");
    env.add_template("t.txt", "{{ s }}").expect("template");
    let ctx = minijinja::context! { s => "a/b&<>\"'", n => 42 };
    let html = env.get_template("t.html").and_then(|t| t.render(&ctx));
    assert_eq!(
        html.expect("render"),
        "a/b&amp;&lt;&gt;&quot;&#x27;|42|a/b&<>\"'"
    );
    let txt = env.get_template("t.txt").and_then(|t| t.render(&ctx));
    assert_eq!(txt.expect("render"), "a/b&<>\"'");
}

#[test]
fn pages_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pages>();
}

#[test]
fn stylesheet_is_small_and_self_contained() {
    // One small stylesheet for every page: sign-in, consent, connections,
    // the account page and the admin console.
    assert!(STYLESHEET.lines().count() <= 170);
    assert!(STYLESHEET.contains("prefers-color-scheme: dark"));
    assert!(STYLESHEET.contains("max-width: 28rem"));
    assert!(!STYLESHEET.contains("@import"));
    assert!(!STYLESHEET.contains("url("));
}
