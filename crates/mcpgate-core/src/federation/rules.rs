//! Who may sign in through a provider, and as which local username.

use serde_json::{Map, Value};

/// What a provider vouched for, after the ID token (or the user-info
/// response) was verified.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The provider's stable identifier of the account (`sub`, or GitHub's
    /// numeric `id`).
    pub subject: String,
    pub email: Option<String>,
    /// `email_verified` when the provider sends it (OpenID Connect Core
    /// 1.0 §5.1).
    pub email_verified: Option<bool>,
    /// `preferred_username` (OIDC) or the login name (GitHub's `login`).
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    /// Every claim received (ID token and user-info), for `required_claim`.
    pub claims: Map<String, Value>,
}

/// A claim that must be present with a value: a string claim equal to
/// `value`, an array claim containing it, or a boolean or number whose
/// text is `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    pub name: String,
    pub value: String,
}

/// A provider's restrictions. Empty lists mean "no restriction". When both
/// email lists are set, an email that matches either is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// Lowercase domains, e.g. `example.com` (exact match of the part after `@`).
    pub allowed_email_domains: Vec<String>,
    /// Lowercase email addresses.
    pub allowed_emails: Vec<String>,
    pub required_claim: Option<ClaimRule>,
}

impl Restrictions {
    /// Whether the identity may sign in; the error is a reason for the log
    /// (it names the rule, not the whole identity).
    pub fn check(&self, id: &Identity) -> Result<(), String> {
        if !self.allowed_email_domains.is_empty() || !self.allowed_emails.is_empty() {
            let Some(email) = id.email.as_deref().map(str::to_ascii_lowercase) else {
                return Err("the provider sent no email address, and email rules apply".into());
            };
            if id.email_verified == Some(false) {
                return Err("the provider says the email address is not verified".into());
            }
            let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            let by_domain = self.allowed_email_domains.iter().any(|d| d == domain);
            let by_address = self.allowed_emails.contains(&email);
            if !by_domain && !by_address {
                return Err(format!(
                    "email domain {domain:?} is not in allowed_email_domains and the address is not in allowed_emails"
                ));
            }
        }
        if let Some(rule) = &self.required_claim
            && !claim_matches(id.claims.get(&rule.name), &rule.value)
        {
            return Err(format!(
                "required claim {:?} does not have the value {:?}",
                rule.name, rule.value
            ));
        }
        Ok(())
    }
}

fn claim_matches(claim: Option<&Value>, want: &str) -> bool {
    match claim {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(items)) => items.iter().any(|i| claim_matches(Some(i), want)),
        Some(Value::Bool(b)) => b.to_string() == want,
        Some(Value::Number(n)) => n.to_string() == want,
        _ => false,
    }
}

/// Longest username derived from an identity (usernames may have 64
/// characters; room is left for a `-NN` suffix).
const BASE_MAX: usize = 56;

/// The username a new federated user starts from: the preferred username
/// (or login), else the email address, else `user`; normalised like every
/// username (`crate::domain::Username`: NFKC, then lowercase) and reduced to
/// the characters usernames allow (letters, digits, `. _ - @`).
pub fn username_base(id: &Identity) -> String {
    let raw = id
        .preferred_username
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or(id.email.as_deref().filter(|s| !s.trim().is_empty()))
        .unwrap_or("user");
    let normal = crate::domain::Username::normalized(raw.trim());
    let cleaned: String = normal
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '-'
            }
        })
        .take(BASE_MAX)
        .collect();
    if cleaned.chars().all(|c| c == '-') {
        "user".into()
    } else {
        cleaned
    }
}

/// The `n`th candidate (from 1): `base`, `base-2`, `base-3`, ...
pub fn username_candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(email: Option<&str>, verified: Option<bool>) -> Identity {
        Identity {
            subject: "s1".into(),
            email: email.map(str::to_string),
            email_verified: verified,
            ..Identity::default()
        }
    }

    proptest::proptest! {
        #[test]
        fn every_candidate_is_a_valid_username_in_normal_form(name in "\\PC{0,80}", n in 1u32..60) {
            let id = Identity { preferred_username: Some(name), ..Identity::default() };
            let c = username_candidate(&username_base(&id), n);
            let parsed = crate::domain::Username::parse(&c);
            proptest::prop_assert!(parsed.is_ok(), "{:?}: {:?}", c, parsed);
            let parsed = parsed.unwrap().into_string();
            proptest::prop_assert_eq!(parsed, c);
        }
    }

    #[test]
    fn a_username_base_is_normalised() {
        let id = Identity {
            preferred_username: Some("\u{ff21}nn.Example".into()),
            ..Identity::default()
        };
        assert_eq!(username_base(&id), "ann.example");
    }

    #[test]
    fn no_restrictions_allow_everyone() {
        assert!(Restrictions::default().check(&identity(None, None)).is_ok());
    }

    #[test]
    fn email_domain_and_list_rules() {
        let r = Restrictions {
            allowed_email_domains: vec!["example.com".into()],
            allowed_emails: vec!["guest@other.org".into()],
            required_claim: None,
        };
        assert!(
            r.check(&identity(Some("Ann@Example.com"), Some(true)))
                .is_ok()
        );
        assert!(r.check(&identity(Some("guest@other.org"), None)).is_ok());
        assert!(
            r.check(&identity(Some("eve@other.org"), Some(true)))
                .is_err()
        );
        assert!(
            r.check(&identity(Some("eve@example.com.evil"), None))
                .is_err()
        );
        assert!(
            r.check(&identity(Some("ann@sub.example.com"), None))
                .is_err()
        );
        // An unverified address does not count, whatever it says.
        let e = r
            .check(&identity(Some("ann@example.com"), Some(false)))
            .unwrap_err();
        assert!(e.contains("not verified"));
        assert!(
            r.check(&identity(None, None))
                .unwrap_err()
                .contains("no email")
        );
    }

    #[test]
    fn claim_rule_matches_strings_arrays_and_scalars() {
        let rule = |v: &str| Restrictions {
            required_claim: Some(ClaimRule {
                name: "groups".into(),
                value: v.into(),
            }),
            ..Restrictions::default()
        };
        let mut id = identity(None, None);
        id.claims = json!({"groups": ["staff", "admins"], "tier": 3, "ok": true})
            .as_object()
            .unwrap()
            .clone();
        assert!(rule("admins").check(&id).is_ok());
        assert!(rule("guests").check(&id).is_err());
        let scalar = |name: &str, v: &str| Restrictions {
            required_claim: Some(ClaimRule {
                name: name.into(),
                value: v.into(),
            }),
            ..Restrictions::default()
        };
        assert!(scalar("tier", "3").check(&id).is_ok());
        assert!(scalar("ok", "true").check(&id).is_ok());
        assert!(scalar("missing", "x").check(&id).is_err());
    }

    #[test]
    fn usernames_come_from_the_login_then_the_email() {
        let mut id = identity(Some("ann@example.com"), None);
        assert_eq!(username_base(&id), "ann@example.com");
        id.preferred_username = Some("Ann Smith!".into());
        assert_eq!(username_base(&id), "ann-smith-");
        assert_eq!(username_base(&identity(None, None)), "user");
        id.preferred_username = Some("x".repeat(80));
        assert_eq!(username_base(&id).len(), BASE_MAX);
        assert_eq!(username_candidate("ann", 1), "ann");
        assert_eq!(username_candidate("ann", 3), "ann-3");
    }
}
