//! The view of the account page (`templates/account.html`), filled by
//! `crate::http::account`.

use serde::Serialize;

/// `GET /account` for a signed-in user.
#[derive(Debug, Serialize)]
pub struct AccountView {
    /// URL of [`super::STYLESHEET`].
    pub stylesheet_url: String,
    /// Name shown at the top of the page.
    pub server_name: String,
    /// Where the Revoke forms POST (this page).
    pub action_url: String,
    /// Where the Sign out form POSTs.
    pub logout_url: String,
    /// The `/connections` page, when some upstream uses per-user OAuth.
    pub connections_url: Option<String>,
    /// Who is signed in.
    pub username: String,
    /// The anti-CSRF token, posted back as `csrf_token`.
    pub csrf_token: String,
    /// A message after an action ("Revoked access for …").
    pub notice: Option<String>,
    /// The applications with a live grant, newest use first.
    pub apps: Vec<AppView>,
}

/// One application on the account page.
#[derive(Debug, Serialize)]
pub struct AppView {
    /// Posted back as `grant` by its Revoke button.
    pub grant_id: String,
    /// The client's registered name (a claim unless pre-registered).
    pub name: String,
    /// `dynamic`, `metadata_document` or `preregistered`.
    pub kind: String,
    /// For a client identified by its metadata document: the document's host.
    pub host: Option<String>,
    /// The granted scopes, space-separated.
    pub scopes: String,
    /// When the user granted access (UTC).
    pub granted: String,
    /// When the application last obtained a token (UTC).
    pub last_used: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::Pages;

    const HOSTILE: &str = r#"<script>alert("x")</script>&'"><img src=x onerror=alert(1)>"#;

    fn view(apps: Vec<AppView>) -> AccountView {
        AccountView {
            stylesheet_url: "/assets/mcpgate.css".into(),
            server_name: "mcpgate".into(),
            action_url: "/account".into(),
            logout_url: "/logout".into(),
            connections_url: None,
            username: "alice".into(),
            csrf_token: "csrf-1".into(),
            notice: None,
            apps,
        }
    }

    fn app(name: &str, kind: &str, host: Option<&str>) -> AppView {
        AppView {
            grant_id: "g1".into(),
            name: name.into(),
            kind: kind.into(),
            host: host.map(str::to_string),
            scopes: "mcp".into(),
            granted: "2026-12-01 09:30 UTC".into(),
            last_used: "2026-12-02 10:00 UTC".into(),
        }
    }

    #[test]
    fn an_application_is_named_by_its_domain_when_it_has_one() {
        let p = Pages::new().unwrap();
        let html = p
            .account(&view(vec![app(
                "Claimed Name",
                "metadata_document",
                Some("app.example.com"),
            )]))
            .unwrap();
        assert!(html.contains("<h2>app.example.com</h2>"), "{html}");
        assert!(html.contains("calls itself “Claimed Name”"), "{html}");
        let html = p
            .account(&view(vec![app("Claimed Name", "dynamic", None)]))
            .unwrap();
        assert!(html.contains("<h2>Claimed Name</h2>"), "{html}");
        assert!(html.contains("self-registered"), "{html}");
        let html = p
            .account(&view(vec![app("Ops Tool", "preregistered", None)]))
            .unwrap();
        assert!(html.contains("registered by the operator"), "{html}");
        let html = p.account(&view(vec![])).unwrap();
        assert!(html.contains("No application has access."), "{html}");
        assert!(
            !html.contains("Connected servers"),
            "no link without upstream OAuth"
        );
    }

    #[test]
    fn every_value_on_the_account_page_is_escaped() {
        let h = || HOSTILE.to_string();
        let mut v = view(vec![AppView {
            grant_id: h(),
            name: h(),
            kind: h(),
            host: Some(h()),
            scopes: h(),
            granted: h(),
            last_used: h(),
        }]);
        v.username = h();
        v.notice = Some(h());
        v.csrf_token = h();
        v.connections_url = Some(h());
        let html = Pages::new().unwrap().account(&v).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    }
}
