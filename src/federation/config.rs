//! `[[identity_provider]]` entries of `mcpgate.toml`.
//!
//! ```toml
//! [[identity_provider]]
//! id = "google"                     # in URLs, logs and linked identities
//! kind = "oidc"                     # or "oauth2" (no ID token: GitHub style)
//! display_name = "Google"
//! issuer = "https://accounts.google.com"
//! client_id = "1234.apps.googleusercontent.com"
//! client_secret_env = "GOOGLE_CLIENT_SECRET"   # or client_secret_file
//! allowed_email_domains = ["example.com"]
//! ```
//!
//! Secrets are never in the file itself: `client_secret_file` or
//! `client_secret_env` name where to read it at start-up.

use std::path::PathBuf;

use mcpgate_core::federation::{ClaimRule, Restrictions};
use mcpgate_core::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenID Connect: discovery from `issuer`, ID token validation.
    Oidc,
    /// Plain OAuth 2.0: explicit endpoints and a user-info request.
    Oauth2,
}

/// How mcpgate authenticates to the provider's token endpoint
/// (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    #[default]
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredClaim {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderConfig {
    /// Letters, digits, `-`, `_` (at most 32): names the provider in
    /// logs and linked identities. Never change it once users have signed in.
    pub id: String,
    pub kind: ProviderKind,
    /// Shown on the button: "Sign in with {display_name}". Default: the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// OIDC: the issuer URL (its `/.well-known/openid-configuration` is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OAuth 2.0: the provider's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    /// File holding the client secret (surrounding whitespace is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Scopes to request. Default: `openid email profile` (OIDC),
    /// `read:user user:email` (OAuth 2.0, GitHub's names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// OAuth 2.0: an endpoint listing the account's email addresses
    /// (GitHub's `https://api.github.com/user/emails`: `[{email, primary,
    /// verified}]`). When set, the email is the primary verified address
    /// from it, which the user-info endpoint may not show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails_endpoint: Option<String>,
    /// OAuth 2.0 user-info fields (defaults match GitHub's `/user`).
    #[serde(default = "default_subject_field")]
    pub subject_field: String,
    #[serde(default = "default_email_field")]
    pub email_field: String,
    #[serde(default = "default_username_field")]
    pub username_field: String,
    #[serde(default = "default_name_field")]
    pub name_field: String,
    /// Only emails in these domains may sign in (exact domain match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_email_domains: Vec<String>,
    /// Only these emails may sign in (with `allowed_email_domains`: either).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_emails: Vec<String>,
    /// Only identities with this claim value may sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_claim: Option<RequiredClaim>,
    /// Create a local user on first sign-in (otherwise an admin links
    /// identities with `mcpgate user link`).
    #[serde(default = "yes")]
    pub create_users: bool,
    /// A claim (ID token or user info) holding the user's groups: a list
    /// of strings (or one string). At each sign-in through this provider
    /// the user's groups from it are replaced (local groups stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// Prepended to each group from `groups_claim` (e.g. `"okta:"`), so
    /// that they cannot be mistaken for local groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_prefix: Option<String>,
}

fn default_subject_field() -> String {
    "id".into()
}
fn default_email_field() -> String {
    "email".into()
}
fn default_username_field() -> String {
    "login".into()
}
fn default_name_field() -> String {
    "name".into()
}
fn yes() -> bool {
    true
}

impl IdentityProviderConfig {
    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    pub fn scopes(&self) -> Vec<String> {
        match (&self.scopes, self.kind) {
            (Some(s), _) => s.clone(),
            (None, ProviderKind::Oidc) => vec!["openid".into(), "email".into(), "profile".into()],
            (None, ProviderKind::Oauth2) => vec!["read:user".into(), "user:email".into()],
        }
    }

    pub fn restrictions(&self) -> Restrictions {
        Restrictions {
            allowed_email_domains: self
                .allowed_email_domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect(),
            allowed_emails: self
                .allowed_emails
                .iter()
                .map(|e| e.trim().to_ascii_lowercase())
                .collect(),
            required_claim: self.required_claim.as_ref().map(|c| ClaimRule {
                name: c.name.clone(),
                value: c.value.clone(),
            }),
        }
    }

    /// Reads the client secret from its file or environment variable.
    pub fn load_secret(&self) -> Result<Option<Secret<String>>, String> {
        let raw = match (&self.client_secret_file, &self.client_secret_env) {
            (Some(path), None) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "identity_provider {:?}: cannot read client_secret_file {}: {e}",
                    self.id,
                    path.display()
                )
            })?,
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                format!(
                    "identity_provider {:?}: the environment variable {var} (client_secret_env) is not set",
                    self.id
                )
            })?,
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => unreachable_both(&self.id)?,
        };
        let secret = raw.trim().to_string();
        if secret.is_empty() {
            return Err(format!(
                "identity_provider {:?}: the client secret is empty",
                self.id
            ));
        }
        Ok(Some(Secret::new(secret)))
    }
}

fn unreachable_both(id: &str) -> Result<String, String> {
    Err(format!(
        "identity_provider {id:?}: set client_secret_file or client_secret_env, not both"
    ))
}

fn http_url(id: &str, field: &str, value: Option<&str>) -> Result<(), String> {
    let Some(v) = value else {
        return Err(format!("identity_provider {id:?}: {field} is required"));
    };
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(format!(
            "identity_provider {id:?}: {field} {v:?} is not an http(s) URL"
        )),
    }
}

/// Checks the entries (everything but reading secrets, done at start-up).
pub fn validate(providers: &[IdentityProviderConfig], password_login: bool) -> Result<(), String> {
    if !password_login && providers.is_empty() {
        return Err(
            "password_login = false needs at least one [[identity_provider]]: nobody could sign in"
                .into(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for p in providers {
        let id = &p.id;
        if id.is_empty()
            || id.len() > 32
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "identity_provider id {id:?}: use 1 to 32 letters, digits, - and _"
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(format!("identity_provider id {id:?} is used twice"));
        }
        if p.client_id.trim().is_empty() {
            return Err(format!("identity_provider {id:?}: client_id is required"));
        }
        if p.client_secret_file.is_some() && p.client_secret_env.is_some() {
            unreachable_both(id)?;
        }
        match p.kind {
            ProviderKind::Oidc => {
                http_url(id, "issuer", p.issuer.as_deref())?;
                for (f, v) in [
                    ("authorization_endpoint", &p.authorization_endpoint),
                    ("token_endpoint", &p.token_endpoint),
                    ("userinfo_endpoint", &p.userinfo_endpoint),
                    ("emails_endpoint", &p.emails_endpoint),
                ] {
                    if v.is_some() {
                        return Err(format!(
                            "identity_provider {id:?}: {f} is discovered for kind = \"oidc\"; remove it (or use kind = \"oauth2\")"
                        ));
                    }
                }
                if !p.scopes().iter().any(|s| s == "openid") {
                    return Err(format!(
                        "identity_provider {id:?}: the scopes of an OpenID Connect provider must include \"openid\""
                    ));
                }
            }
            ProviderKind::Oauth2 => {
                if p.issuer.is_some() {
                    return Err(format!(
                        "identity_provider {id:?}: issuer is for kind = \"oidc\"; an oauth2 provider lists authorization_endpoint, token_endpoint and userinfo_endpoint"
                    ));
                }
                http_url(
                    id,
                    "authorization_endpoint",
                    p.authorization_endpoint.as_deref(),
                )?;
                http_url(id, "token_endpoint", p.token_endpoint.as_deref())?;
                http_url(id, "userinfo_endpoint", p.userinfo_endpoint.as_deref())?;
                if p.emails_endpoint.is_some() {
                    http_url(id, "emails_endpoint", p.emails_endpoint.as_deref())?;
                }
            }
        }
        if let Some(c) = &p.required_claim
            && c.name.is_empty()
        {
            return Err(format!(
                "identity_provider {id:?}: required_claim needs a name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Vec<IdentityProviderConfig> {
        #[derive(Deserialize)]
        struct F {
            identity_provider: Vec<IdentityProviderConfig>,
        }
        toml::from_str::<F>(toml_text).unwrap().identity_provider
    }

    #[test]
    fn valid_entries_pass_and_defaults_apply() {
        let p = parse(
            r#"
[[identity_provider]]
id = "google"
kind = "oidc"
issuer = "https://accounts.google.com"
client_id = "abc"
client_secret_env = "X"
[[identity_provider]]
id = "github"
kind = "oauth2"
authorization_endpoint = "https://github.com/login/oauth/authorize"
token_endpoint = "https://github.com/login/oauth/access_token"
userinfo_endpoint = "https://api.github.com/user"
client_id = "def"
"#,
        );
        validate(&p, true).unwrap();
        assert_eq!(p[0].scopes(), ["openid", "email", "profile"]);
        assert_eq!(p[1].subject_field, "id");
        assert_eq!(p[1].username_field, "login");
        assert!(p[1].create_users);
        assert_eq!(p[1].display_name(), "github");
    }

    #[test]
    fn mistakes_are_named() {
        let base = r#"
[[identity_provider]]
id = "a"
client_id = "c"
"#;
        let unknown = toml::from_str::<toml::Table>(&format!("{base}kind = \"saml\""))
            .unwrap()
            .get("identity_provider")
            .cloned()
            .unwrap();
        let e = unknown
            .try_into::<Vec<IdentityProviderConfig>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("saml") || e.contains("unknown variant"), "{e}");
        let p = parse(&format!("{base}kind = \"oidc\""));
        assert!(
            validate(&p, true)
                .unwrap_err()
                .contains("issuer is required")
        );
        let p = parse(&format!(
            "{base}kind = \"oidc\"\nissuer = \"https://x\"\n{base}kind = \"oidc\"\nissuer = \"https://x\""
        ));
        assert!(validate(&p, true).unwrap_err().contains("used twice"));
        let p = parse(&format!(
            "{base}kind = \"oauth2\"\nauthorization_endpoint = \"https://x/a\""
        ));
        assert!(
            validate(&p, true)
                .unwrap_err()
                .contains("token_endpoint is required")
        );
        assert!(
            validate(&[], false)
                .unwrap_err()
                .contains("nobody could sign in")
        );
        let p = parse(&format!(
            "{base}kind = \"oidc\"\nissuer = \"https://x\"\nclient_secret_file = \"/nonexistent/secret\""
        ));
        validate(&p, true).unwrap();
        assert!(
            p[0].load_secret()
                .unwrap_err()
                .contains("cannot read client_secret_file")
        );
    }
}
