//! Server-rendered browser pages: sign-in, consent and error.
//!
//! The three pages are [minijinja] templates embedded in the binary
//! (`templates/*.html` at the crate root) and rendered by [`Pages`] from plain
//! view structs ([`LoginView`], [`ConsentView`], [`ErrorView`]). The HTTP layer
//! fills the views; this module knows nothing about requests or sessions.
//!
//! # Security properties
//! - Every value is HTML-escaped: the templates are registered under names
//!   ending in `.html`, which turns minijinja's auto-escaping on, and no
//!   template uses `|safe`. The characters `& < > " '` are escaped (see
//!   [`html_formatter`]), so values are safe both in text and inside the
//!   double-quoted attributes the templates use.
//! - The pages contain no inline CSS, no JavaScript and no external resources;
//!   their only subresource is the stylesheet [`STYLESHEET`], which the server
//!   serves at `{base}/assets/mcpgate.css`. They are meant to be sent with
//!   `Content-Security-Policy: default-src 'none'; style-src 'self';
//!   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'`.
//! - Hidden parameters whose names collide with the form's own fields
//!   (`action`, `csrf_token`, `decision`, `username`, `password`) are never
//!   re-posted, so a crafted authorization request cannot smuggle them in.
//!
//! # Form contract
//! Automated clients and tests scrape these pages, so the markup is stable:
//! - The login and consent pages each contain exactly one
//!   `<form method="post" action="{action_url}">`; the error page has none.
//! - Each form carries `<input type="hidden" name="action" value="login">` (or
//!   `consent`), `<input type="hidden" name="csrf_token" value="…">` and one
//!   `<input type="hidden" name="{k}" value="{v}">` per entry of `hidden`.
//! - Login: fields `username` and `password`, submit `<button type="submit">Sign in</button>`
//!   (both left out when `password_login` is false); then, per identity
//!   provider, `<button type="submit" name="provider" value="{id}" formnovalidate>`
//!   (the same form, so the CSRF token and the request go with it).
//! - Consent: `<button type="submit" name="decision" value="approve">Allow</button>`
//!   and `<button type="submit" name="decision" value="deny">Deny</button>`; then
//!   `<button type="submit" class="link" formaction="{logout_url}" formnovalidate>Sign out</button>`
//!   ("Not you?"), which posts the same form (CSRF token and request) to the
//!   sign-out endpoint.

mod account;
pub use account::{AccountView, AppView};

use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, Value};
use serde::Serialize;

/// The stylesheet shared by every page; serve it at `{base}/assets/mcpgate.css`
/// with `Content-Type: text/css; charset=utf-8`.
pub const STYLESHEET: &str = include_str!("../../assets/mcpgate.css");

const BASE: &str = include_str!("../../templates/base.html");
const LOGIN: &str = include_str!("../../templates/login.html");
const CONSENT: &str = include_str!("../../templates/consent.html");
const ERROR: &str = include_str!("../../templates/error.html");
// Per-user OAuth to upstreams (`crate::http::upstream_oauth`).
const CONNECT_LOGIN: &str = include_str!("../../templates/connect_login.html");
const CONNECTED: &str = include_str!("../../templates/connected.html");
const CONNECTIONS: &str = include_str!("../../templates/connections.html");
// The account page (`crate::http::account`).
const ACCOUNT: &str = include_str!("../../templates/account.html");
// The admin console (`crate::http::admin`).
const ADMIN_TEMPLATES: [(&str, &str); 7] = [
    (
        "admin_nav.html",
        include_str!("../../templates/admin_nav.html"),
    ),
    (
        "admin_users.html",
        include_str!("../../templates/admin_users.html"),
    ),
    (
        "admin_user.html",
        include_str!("../../templates/admin_user.html"),
    ),
    (
        "admin_open_mcp.html",
        include_str!("../../templates/admin_open_mcp.html"),
    ),
    (
        "admin_clients.html",
        include_str!("../../templates/admin_clients.html"),
    ),
    (
        "admin_upstreams.html",
        include_str!("../../templates/admin_upstreams.html"),
    ),
    (
        "admin_audit.html",
        include_str!("../../templates/admin_audit.html"),
    ),
];

/// The page renderer: a template environment with the embedded templates.
///
/// Build it once at start-up with [`Pages::new`] and share it (it is
/// `Send + Sync`); rendering does not mutate it.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

/// The sign-in page.
#[derive(Debug, Serialize)]
pub struct LoginView {
    /// URL of [`STYLESHEET`], e.g. `/assets/mcpgate.css`.
    pub stylesheet_url: String,
    /// Name shown at the top of the page, e.g. `mcpgate`.
    pub server_name: String,
    /// Where the form POSTs (the authorize endpoint path).
    pub action_url: String,
    /// The registered name of the client asking for access.
    pub client_name: String,
    /// The client's `client_id`.
    pub client_id: String,
    /// Host the client will be sent back to.
    pub redirect_host: String,
    /// The original authorization request parameters, re-posted as hidden inputs.
    pub hidden: Vec<(String, String)>,
    /// The anti-CSRF token, posted back as `csrf_token`.
    pub csrf_token: String,
    /// Pre-filled username after a failed attempt (`""` otherwise).
    pub username: String,
    /// Message shown above the form, e.g. "Wrong username or password.".
    pub error: Option<String>,
    /// Whether the username and password fields are shown.
    pub password_login: bool,
    /// One "Sign in with ..." button per identity provider.
    pub providers: Vec<ProviderButton>,
}

/// An identity provider on the sign-in page.
#[derive(Debug, Serialize)]
pub struct ProviderButton {
    /// Posted as `provider`.
    pub id: String,
    /// "Sign in with {display_name}".
    pub display_name: String,
}

/// The consent page, shown to a signed-in user.
#[derive(Debug, Serialize)]
pub struct ConsentView {
    /// URL of [`STYLESHEET`].
    pub stylesheet_url: String,
    /// Name shown at the top of the page.
    pub server_name: String,
    /// Where the form POSTs (the authorize endpoint path).
    pub action_url: String,
    /// The registered name of the client asking for access.
    pub client_name: String,
    /// The client's `client_id`.
    pub client_id: String,
    /// The client's home page, if registered; a link only for http(s) URLs.
    pub client_uri: Option<String>,
    /// Host the client will be sent back to.
    pub redirect_host: String,
    /// Whether the redirect goes to this computer (localhost); shows a warning.
    pub redirect_is_loopback: bool,
    /// The requested scopes with their human descriptions: those not
    /// approved before (incremental consent).
    pub scopes: Vec<ScopeView>,
    /// The requested scopes the user approved before for this client.
    pub granted_scopes: Vec<ScopeView>,
    /// Who is signed in.
    pub username: String,
    /// The original authorization request parameters, re-posted as hidden inputs.
    pub hidden: Vec<(String, String)>,
    /// The anti-CSRF token, posted back as `csrf_token`.
    pub csrf_token: String,
    /// Where the "Not you? Sign out" button posts the form.
    pub logout_url: String,
    /// How the client is known: `dynamic` (self-registered; its name is a
    /// claim), `metadata_document` or `preregistered`.
    pub client_kind: String,
    /// For a client identified by its metadata document: the document's
    /// host, shown instead of the name ("identified by its domain").
    pub client_host: Option<String>,
}

/// One requested scope on the consent page.
#[derive(Debug, Serialize)]
pub struct ScopeView {
    /// The scope token, e.g. `mcp:tools`.
    pub name: String,
    /// What granting it allows, in plain words.
    pub description: String,
}

/// The error page, for errors that cannot be sent back to the client.
#[derive(Debug, Serialize)]
pub struct ErrorView {
    /// URL of [`STYLESHEET`].
    pub stylesheet_url: String,
    /// Name shown at the top of the page.
    pub server_name: String,
    /// Headline, e.g. "This sign-in link cannot be used".
    pub title: String,
    /// The specific reason (an RFC 6749 `error_description`).
    pub message: String,
    /// The OAuth error code, e.g. `invalid_request`.
    pub code: Option<String>,
    /// When set, a "Try again" link to this URL.
    pub retry_url: Option<String>,
}

impl Pages {
    /// Builds the environment and compiles the embedded templates.
    ///
    /// Fails only if a template does not parse, which the tests rule out.
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        // A misspelt variable is a bug, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_formatter(html_formatter);
        env.add_template("base.html", BASE)?;
        env.add_template("login.html", LOGIN)?;
        env.add_template("consent.html", CONSENT)?;
        env.add_template("error.html", ERROR)?;
        env.add_template("connect_login.html", CONNECT_LOGIN)?;
        env.add_template("connected.html", CONNECTED)?;
        env.add_template("connections.html", CONNECTIONS)?;
        env.add_template("account.html", ACCOUNT)?;
        for (name, source) in ADMIN_TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// Renders the sign-in page.
    pub fn login(&self, v: &LoginView) -> Result<String, minijinja::Error> {
        self.render("login.html", v)
    }

    /// Renders the consent page.
    pub fn consent(&self, v: &ConsentView) -> Result<String, minijinja::Error> {
        self.render("consent.html", v)
    }

    /// Renders the error page.
    pub fn error(&self, v: &ErrorView) -> Result<String, minijinja::Error> {
        self.render("error.html", v)
    }

    /// Renders a page of the upstream connect flow (`connect_login.html`,
    /// `connected.html`, `connections.html`; views in
    /// `crate::http::upstream_oauth`).
    pub fn upstream_page<S: Serialize>(
        &self,
        name: &str,
        view: &S,
    ) -> Result<String, minijinja::Error> {
        self.render(name, view)
    }

    /// Renders the account page.
    pub fn account(&self, v: &AccountView) -> Result<String, minijinja::Error> {
        self.render("account.html", v)
    }

    /// Renders a page of the admin console (`admin_*.html`; views in
    /// `crate::http::admin`).
    pub fn admin_page<S: Serialize>(
        &self,
        name: &str,
        view: &S,
    ) -> Result<String, minijinja::Error> {
        self.render(name, view)
    }

    fn render<S: Serialize>(&self, name: &str, view: &S) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(view)
    }
}

/// Output formatter: under HTML auto-escaping, strings are escaped for
/// `& < > " '` only.
///
/// minijinja's default HTML escaping also turns `/` into `&#x2f;`, which is
/// harmless to browsers but makes URLs in `action`/`value` attributes
/// (`redirect_uri=https:&#x2f;&#x2f;…`) unreadable to simple scrapers. `/`
/// cannot end a double-quoted attribute or start a tag on its own, so
/// escaping the five characters above is sufficient for the contexts the
/// templates use (element text and double-quoted attributes). Everything else
/// (safe strings, numbers, none, undefined) goes to the default formatter.
pub fn html_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if matches!(state.auto_escape(), AutoEscape::Html)
        && !value.is_safe()
        && let Some(s) = value.as_str()
    {
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let rep = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#x27;",
                _ => continue,
            };
            out.write_str(&s[last..i])?;
            out.write_str(rep)?;
            last = i + 1;
        }
        out.write_str(&s[last..])?;
        return Ok(());
    }
    minijinja::escape_formatter(out, state, value)
}

#[cfg(test)]
mod tests;
