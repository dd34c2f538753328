//! Usernames: case-insensitive and normalised.
//!
//! The rule: Unicode NFKC (UAX #15, compatibility composition: fullwidth
//! `ＣＡＲＯＬ` becomes `CAROL`, the ligature `ﬁ` becomes `fi`), then full
//! Unicode lowercase (`str::to_lowercase`), repeated until stable (lowering
//! can leave combining marks out of canonical order, which NFKC then fixes).
//! `Carol`, `CAROL` and `ＣＡＲＯＬ` are one user, `carol`, the form that is
//! stored, compared and shown. The rule applies wherever a username enters:
//! the sign-in form, the command line, first start, federation, lookups.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::ParseError;

/// A username in its normalised form (see the module docs). Values from
/// [`Username::parse`] also meet the rules for new names: 1 to
/// [`Username::MAX_CHARS`] characters, each a letter, a digit, one of
/// `. _ - @` (so email addresses are usernames), or a combining mark after
/// another character (lowercase `İ` is `i` + U+0307). A few compatibility
/// characters that NFKC turns into punctuation or spaces (`½` becomes
/// `1⁄2`) are therefore refused in new names; existing ones still sign in
/// ([`Username::for_lookup`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// The longest username, in characters (after normalisation).
    pub const MAX_CHARS: usize = 64;

    /// Normalises `raw` and checks the rules for usernames.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.chars().count() > 4 * Self::MAX_CHARS {
            return Err(invalid(raw, "it is too long"));
        }
        let name = normalize(raw);
        if name.is_empty() {
            return Err(ParseError::new("the username is empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(invalid(raw, "it is too long"));
        }
        let mut chars = name.chars().enumerate();
        if let Some((_, c)) =
            chars.find(|(i, c)| !allowed(*c) && (*i == 0 || !is_combining_mark(*c)))
        {
            let what = if c.is_control() {
                "it contains a control character".to_string()
            } else if c.is_whitespace() {
                "it contains a space".to_string()
            } else {
                format!("{c:?} is not allowed")
            };
            return Err(invalid(raw, &what));
        }
        Ok(Self(name))
    }

    /// The normalised form of a name someone typed to sign in or to name a
    /// user: `None` if it cannot name anyone (empty, control characters,
    /// far too long). Not held to the rules for new names, so that names
    /// created under older rules are still found.
    pub fn for_lookup(raw: &str) -> Option<Self> {
        if raw.chars().count() > 4 * Self::MAX_CHARS {
            return None;
        }
        let name = normalize(raw);
        (!name.is_empty() && !name.chars().any(char::is_control)).then_some(Self(name))
    }

    /// A name exactly as the database holds it, not checked or changed.
    /// Stored names are normalised at start-up (`mcpgate migrate`); only
    /// names left from before (colliding ones, which stop the server from
    /// starting) differ, and the command line must still find those.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    /// `raw` in normalised form, without the rules for new names: for
    /// names accepted under older rules (stored rows, configured lists).
    pub fn normalized(raw: &str) -> Self {
        Self(normalize(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

fn invalid(raw: &str, why: &str) -> ParseError {
    let shown: String = raw.chars().take(Username::MAX_CHARS).collect();
    ParseError::new(format!(
        "invalid username {shown:?}: {why}; use 1 to {} letters, digits and . _ - @",
        Username::MAX_CHARS
    ))
}

fn allowed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

/// NFKC, then lowercase, until stable (at most a few rounds; one in
/// practice).
fn normalize(raw: &str) -> String {
    let mut s: String = raw.nfkc().collect::<String>().to_lowercase();
    for _ in 0..4 {
        let next: String = s.nfkc().collect::<String>().to_lowercase();
        if next == s {
            break;
        }
        s = next;
    }
    s
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Username {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Username {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Username {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> String {
        Username::parse(s).unwrap().into_string()
    }

    #[test]
    fn case_and_width_variants_are_one_username() {
        assert_eq!(p("carol"), "carol");
        assert_eq!(p("Carol"), "carol");
        assert_eq!(p("CAROL"), "carol");
        assert_eq!(p("\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}"), "carol");
        assert_eq!(p("\u{fb01}ona"), "fiona", "the ligature fi");
        assert_eq!(p("\u{212a}elvin"), "kelvin", "the Kelvin sign");
        assert_eq!(p("J\u{f6}rg"), p("Jo\u{308}rg"), "composed or not");
        assert_eq!(p("STRA\u{1e9e}E"), "stra\u{df}e");
        assert_eq!(p("\u{130}stanbul"), "i\u{307}stanbul");
    }

    #[test]
    fn what_was_valid_before_stays_valid() {
        for ok in [
            "admin",
            "alice",
            "ann.example@example.com",
            "user_1",
            "a-b",
            "\u{e9}lodie",
            "\u{5f20}\u{4f1f}",
            "ann-2",
        ] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        assert!(Username::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn empty_overlong_control_and_other_characters_are_refused() {
        assert_eq!(Username::parse("").unwrap_err().0, "the username is empty");
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse(&"x".repeat(100_000)).is_err());
        let e = Username::parse("a\nb").unwrap_err().0;
        assert!(e.contains("control character"), "{e}");
        assert!(Username::parse("a\u{0}b").is_err());
        let e = Username::parse("bad name").unwrap_err().0;
        assert!(e.contains("invalid username \"bad name\""), "{e}");
        assert!(e.contains("1 to 64 letters, digits and . _ - @"), "{e}");
        for bad in ["a/b", "a:b", "a+b", "<script>", "a\u{202e}b", "a\u{200b}b"] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        // Fullwidth space becomes a space under NFKC: refused.
        assert!(Username::parse("a\u{3000}b").is_err());
    }

    #[test]
    fn lookups_normalise_without_the_rules_for_new_names() {
        assert_eq!(Username::for_lookup("A\u{bd}").unwrap(), "a1\u{2044}2");
        assert!(Username::parse("a\u{bd}").is_err());
        assert!(Username::for_lookup("").is_none());
        assert!(Username::for_lookup("a\nb").is_none());
        assert!(Username::for_lookup(&"x".repeat(300)).is_none());
        assert!(
            Username::parse("\u{307}a").is_err(),
            "a mark cannot come first"
        );
    }

    #[test]
    fn stored_and_configured_names_are_normalised_without_the_rules() {
        assert_eq!(Username::normalized("Bad Name"), "bad name");
        assert_eq!(Username::from_stored("Carol".into()), "Carol");
    }

    proptest! {
        #[test]
        fn normalising_twice_is_normalising_once(s in "\\PC{0,40}") {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
            if let Ok(u) = Username::parse(&s) {
                prop_assert_eq!(u.as_str(), once.as_str());
                let again = Username::parse(u.as_str());
                prop_assert_eq!(again.as_ref().map(Username::as_str), Ok(u.as_str()));
            }
        }

        #[test]
        fn parsing_never_panics(s in any::<String>()) {
            let _ = Username::parse(&s);
            let _ = Username::normalized(&s);
        }

        #[test]
        fn case_never_matters(s in "[A-Za-z0-9._@-]{1,64}") {
            prop_assert_eq!(
                Username::parse(&s).unwrap(),
                Username::parse(&s.to_uppercase()).unwrap()
            );
        }
    }
}
