use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A set of scope tokens (RFC 6749 §3.3): space-delimited, each token made of
/// `%x21 / %x23-5B / %x5D-7E`. Order and repetition carry no meaning, so the
/// set is kept sorted; `Display` gives the canonical space-joined form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a non-empty scope string. An empty or blank string is an error:
    /// callers decide what a missing scope means (usually the default).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(ParseError::new(format!(
                    "scope token {token:?} contains a character that RFC 6749 §3.3 does not allow"
                )));
            }
            set.insert(token.to_string());
        }
        if set.is_empty() {
            return Err(ParseError::new("scope is empty"));
        }
        Ok(Self(set))
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(
        tokens: I,
    ) -> Result<Self, ParseError> {
        let joined: Vec<String> = tokens.into_iter().map(Into::into).collect();
        Self::parse(&joined.join(" "))
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Tokens of `self` that are not in `allowed`.
    pub fn not_in<'a>(&'a self, allowed: &'a [String]) -> Vec<&'a str> {
        self.tokens()
            .filter(|t| !allowed.iter().any(|a| a == t))
            .collect()
    }

    /// The set without `token`; `None` if nothing else is left.
    pub fn without(&self, token: &str) -> Option<Scope> {
        let rest: BTreeSet<String> = self.0.iter().filter(|t| *t != token).cloned().collect();
        (!rest.is_empty()).then_some(Scope(rest))
    }

    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.tokens().collect();
        f.write_str(&v.join(" "))
    }
}

impl TryFrom<String> for Scope {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Scope> for String {
    fn from(value: Scope) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sets_ignoring_order_and_repeats() {
        let a = Scope::parse("mcp offline_access mcp").unwrap();
        let b = Scope::parse("offline_access  mcp").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "mcp offline_access");
    }

    #[test]
    fn refuses_empty_and_illegal_characters() {
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("   ").is_err());
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("caf\u{e9}").is_err());
    }

    #[test]
    fn subset_and_difference() {
        let all = Scope::parse("mcp admin").unwrap();
        let one = Scope::parse("mcp").unwrap();
        assert!(one.is_subset_of(&all));
        assert!(!all.is_subset_of(&one));
        assert_eq!(all.not_in(&["mcp".to_string()]), vec!["admin"]);
        assert_eq!(all.without("admin"), Some(one.clone()));
        assert_eq!(one.without("mcp"), None);
        assert_eq!(one.without("other"), Some(one.clone()));
    }
}
