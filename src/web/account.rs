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
