//! Request parameters (query string or `application/x-www-form-urlencoded`
//! body) with the rule of RFC 6749 §3.1 and §3.2: "Request and response
//! parameters MUST NOT be included more than once". Parameters sent without
//! a value are treated as omitted (§3.1).

use super::OAuthError;

/// Parameters that may be sent more than once: `resource` (RFC 8707 §2).
const REPEATABLE: [&str; 1] = ["resource"];

#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The first parameter that was repeated, when parsed leniently.
    repeated: Option<String>,
}

impl Params {
    /// Parses an urlencoded string. Fails if a parameter is repeated.
    pub fn parse(encoded: &str) -> Result<Self, OAuthError> {
        let p = Self::parse_lenient(encoded);
        match p.repeated {
            Some(k) => Err(OAuthError::invalid_request(format!(
                "the parameter {k:?} was sent more than once"
            ))),
            None => Ok(p),
        }
    }

    /// Parses without failing on a repeated parameter: the first value is
    /// kept and the name is remembered ([`Params::repeated`]), so that the
    /// authorization endpoint can report the error to a verified redirect
    /// URI (RFC 6749 §4.1.2.1) instead of a page.
    pub fn parse_lenient(encoded: &str) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut repeated = None;
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if !REPEATABLE.contains(&k.as_ref()) && pairs.iter().any(|(pk, _)| *pk == k) {
                repeated.get_or_insert_with(|| k.into_owned());
                continue;
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Self { pairs, repeated }
    }

    /// The first repeated parameter, if any (only after `parse_lenient`).
    pub fn repeated(&self) -> Option<&str> {
        self.repeated.as_deref()
    }

    /// The error for a repeated parameter.
    pub fn repeated_error(&self) -> Option<OAuthError> {
        self.repeated.as_ref().map(|k| {
            OAuthError::invalid_request(format!("the parameter {k:?} was sent more than once"))
        })
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, OAuthError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(&k.into(), &v.into());
        }
        Self::parse(&s.finish())
    }

    /// The value of `name`, or `None` if absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent, even with an empty value.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The value of a required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is missing")))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Re-encodes the parameters, keeping only `names` (used to carry an
    /// authorization request through the login and consent forms).
    pub fn encode_only(&self, names: &[&str]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.iter().filter(|(k, _)| names.contains(k)) {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let e = Params::parse("a=1&b=2&a=3").unwrap_err();
        assert_eq!(e.code, super::super::ErrorCode::InvalidRequest);
        assert!(e.description.contains("\"a\""));
    }

    #[test]
    fn empty_values_count_as_absent_but_are_seen() {
        let p = Params::parse("scope=&state=xyz").unwrap();
        assert_eq!(p.get("scope"), None);
        assert!(p.has("scope"));
        assert_eq!(p.get("state"), Some("xyz"));
        assert!(p.require("scope").is_err());
    }

    #[test]
    fn decodes_plus_and_percent() {
        let p = Params::parse("scope=mcp+extra&r=https%3A%2F%2Fx").unwrap();
        assert_eq!(p.get("scope"), Some("mcp extra"));
        assert_eq!(p.get("r"), Some("https://x"));
    }
}
