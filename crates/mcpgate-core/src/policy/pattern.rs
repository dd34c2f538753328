//! Name patterns of `[[policy]]` rules: an exact name, or a glob whose only
//! wildcard is `*` (any run of characters, including none), e.g. `files_*`,
//! `crm_delete_*`, `file:///srv/private/*`.
//!
//! Matching works on bytes with one backtracking point (the classic
//! wildcard algorithm): linear in practice, no regex, no allocation.

use std::fmt;

/// Longest pattern accepted (names and URIs are matched against it).
pub const MAX_PATTERN_LEN: usize = 1024;

/// A checked name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    glob: bool,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    Empty,
    TooLong,
    /// A control character or whitespace (names and URIs have none).
    BadCharacter(char),
    /// `**`: `*` already matches any run; a doubled star suggests another
    /// glob dialect whose meaning mcpgate does not have.
    DoubleStar,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a pattern must not be empty"),
            Self::TooLong => write!(f, "a pattern is at most {MAX_PATTERN_LEN} bytes"),
            Self::BadCharacter(c) => write!(
                f,
                "a pattern must not contain whitespace or control characters (found {c:?})"
            ),
            Self::DoubleStar => {
                f.write_str("`**` is not a pattern here: `*` alone matches any run of characters")
            }
        }
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        if let Some(c) = text.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(PatternError::BadCharacter(c));
        }
        if text.contains("**") {
            return Err(PatternError::DoubleStar);
        }
        Ok(Self {
            text: text.into(),
            glob: text.contains('*'),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches: equal to an exact pattern, or matched by a
    /// glob (`*` matches any run of bytes, the rest literally).
    pub fn matches(&self, name: &str) -> bool {
        if self.glob {
            glob(self.text.as_bytes(), name.as_bytes())
        } else {
            *self.text == *name
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Wildcard match with `*` only. On a mismatch after a star, the star
/// takes one more byte and matching resumes there: at most one
/// backtracking point is kept, which is enough for `*`-only patterns.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut mark = 0usize;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some(pi);
                pi += 1;
                mark = si;
            }
            Some(&c) if c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some(sp) => {
                    pi = sp + 1;
                    mark += 1;
                    si = mark;
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::parse(p).unwrap().matches(s)
    }

    #[test]
    fn exact_names_match_only_themselves() {
        assert!(m("files_read", "files_read"));
        assert!(!m("files_read", "files_read2"));
        assert!(!m("files_read", "files_rea"));
        assert!(!m("files_read", "Files_read"));
    }

    #[test]
    fn stars_match_any_run() {
        assert!(m("files_*", "files_"));
        assert!(m("files_*", "files_read"));
        assert!(!m("files_*", "file_read"));
        assert!(m("crm_delete_*", "crm_delete_contact"));
        assert!(!m("crm_delete_*", "crm_update_contact"));
        assert!(m("*_delete_*", "crm_delete_x"));
        assert!(!m("*_delete_*", "crm_delete"));
        assert!(m("*", ""));
        assert!(m("*", "anything at all"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("a*b*c", "abbbc"));
        assert!(!m("a*b*c", "abbb"));
        assert!(m("file:///srv/private/*", "file:///srv/private/a/b.txt"));
        assert!(!m("file:///srv/private/*", "file:///srv/public/a.txt"));
        assert!(m("*.txt", "ä/ö.txt"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
        assert_eq!(Pattern::parse("a b"), Err(PatternError::BadCharacter(' ')));
        assert_eq!(
            Pattern::parse("a\u{7}"),
            Err(PatternError::BadCharacter('\u{7}'))
        );
        assert_eq!(Pattern::parse("files_**"), Err(PatternError::DoubleStar));
        assert_eq!(
            Pattern::parse(&"a".repeat(MAX_PATTERN_LEN + 1)),
            Err(PatternError::TooLong)
        );
    }

    /// A reference matcher: plain recursion over the pattern.
    fn reference(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
            Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(p in "[ab*]{1,8}", s in "[ab]{0,10}") {
            prop_assume!(!p.contains("**"));
            let pat = Pattern::parse(&p).unwrap();
            prop_assert_eq!(pat.matches(&s), reference(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn a_name_matches_itself_and_its_prefix_glob(s in "[a-z_]{1,12}", cut in 0usize..12) {
            prop_assert!(Pattern::parse(&s).unwrap().matches(&s));
            let cut = cut.min(s.len());
            let glob = format!("{}*", &s[..cut]);
            prop_assert!(Pattern::parse(&glob).unwrap().matches(&s));
        }
    }
}
