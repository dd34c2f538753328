use serde::{Deserialize, Serialize};

use super::ParseError;

/// A resource indicator (RFC 8707 §2): an absolute `http(s)` URI with no
/// fragment. mcpgate protects exactly one resource, the MCP endpoint; a
/// requested value names it if it is equal to it except for the case of the
/// scheme and host and one trailing slash ([`ResourceUri::names`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceUri(String);

impl ResourceUri {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let url = url::Url::parse(s)
            .map_err(|e| ParseError::new(format!("resource {s:?} is not an absolute URI ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ParseError::new(format!(
                "resource {s:?} must be an http or https URI"
            )));
        }
        if s.contains('#') {
            return Err(ParseError::new(format!(
                "resource {s:?} has a fragment, which RFC 8707 §2 forbids"
            )));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new(format!(
                "resource {s:?} contains white space or control characters"
            )));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the requested URI `other` names this (canonical) resource.
    /// One trailing slash is dropped on both sides, so a resource always
    /// names itself.
    pub fn names(&self, other: &str) -> bool {
        let (a_auth, a_rest) = split_authority(&self.0);
        let (b_auth, b_rest) = split_authority(other);
        a_auth.eq_ignore_ascii_case(b_auth) && tolerant_rest(a_rest) == tolerant_rest(b_rest)
    }
}

/// Path and query without one trailing slash; an empty path is `/`.
fn tolerant_rest(rest: &str) -> &str {
    let rest = if rest.len() > 1 {
        rest.strip_suffix('/').unwrap_or(rest)
    } else {
        rest
    };
    if rest.is_empty() { "/" } else { rest }
}

/// Splits `scheme://authority` from the rest (path and query).
fn split_authority(s: &str) -> (&str, &str) {
    let after_scheme = s.find("://").map_or(0, |i| i + 3);
    match s[after_scheme..].find(['/', '?']) {
        Some(i) => s.split_at(after_scheme + i),
        None => (s, ""),
    }
}

impl std::fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ResourceUri {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ResourceUri> for String {
    fn from(value: ResourceUri) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tolerates_case_and_one_trailing_slash_only() {
        let r = ResourceUri::parse("https://api.example.com/v1/ai/mcp").unwrap();
        assert!(r.names("https://api.example.com/v1/ai/mcp"));
        assert!(r.names("https://api.example.com/v1/ai/mcp/"));
        assert!(r.names("HTTPS://API.Example.COM/v1/ai/mcp"));
        assert!(!r.names("https://api.example.com/v1/ai/MCP"));
        assert!(!r.names("https://api.example.com/v1/ai/mcp//"));
        assert!(!r.names("https://api.example.com:443/v1/ai/mcp"));
        assert!(!r.names("https://api.example.com/v1/ai/mcp?x=1"));
        assert!(!r.names("https://api.example.com/v1/ai/../ai/mcp"));
        assert!(!r.names("https://other.example.com/v1/ai/mcp"));
        assert!(!r.names("http://api.example.com/v1/ai/mcp"));
    }

    /// Found by the property tests: a resource with a trailing slash did not
    /// name itself, since the slash was dropped on one side only.
    #[test]
    fn a_resource_with_a_trailing_slash_names_itself_and_its_slashless_form() {
        let r = ResourceUri::parse("http://a.a/a/").unwrap();
        assert!(r.names("http://a.a/a/"));
        assert!(r.names("http://a.a/a"));
        assert!(!r.names("http://a.a/a//"));
    }

    #[test]
    fn parse_refuses_fragments_and_other_schemes() {
        assert!(ResourceUri::parse("https://a.example/mcp#x").is_err());
        assert!(ResourceUri::parse("urn:example:mcp").is_err());
        assert!(ResourceUri::parse("mcp").is_err());
    }
}
