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

/// Property tests: no panic on any input, the repeated-parameter rule of
/// RFC 6749 §3.1 against a model, and encode → parse stability.
#[cfg(test)]
mod proptests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::oauth::ErrorCode;

    fn any_form() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "([a-c%+=&;]|%[0-9a-fA-F]{2}|.){0,60}",
            proptest::collection::vec(any::<char>(), 0..3000).prop_map(|v| v.into_iter().collect()),
        ]
    }

    /// Distinct names (`resource` excluded) with any values.
    fn distinct_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::btree_map(
            prop_oneof!["[a-z_]{1,12}", ".{1,6}"].prop_filter("not resource", |k| k != "resource"),
            prop_oneof!["[A-Za-z0-9 +%&=]{0,12}", ".{0,12}"],
            0..8,
        )
        .prop_map(|m: BTreeMap<String, String>| m.into_iter().collect())
    }

    fn encode(pairs: &[(String, String)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }

    proptest! {
        #[test]
        fn a_parameter_repeated_anywhere_is_always_refused(s in any_form()) {
            // The model: the first name seen twice, `resource` excepted.
            let mut seen = Vec::new();
            let mut first_repeat = None;
            for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
                if k != "resource" && seen.iter().any(|(sk, _): &(String, String)| *sk == k) {
                    first_repeat.get_or_insert_with(|| k.to_string());
                } else {
                    seen.push((k.into_owned(), v.into_owned()));
                }
            }
            let lenient = Params::parse_lenient(&s);
            prop_assert_eq!(lenient.repeated(), first_repeat.as_deref());
            prop_assert_eq!(lenient.pairs.clone(), seen);
            match (Params::parse(&s), first_repeat) {
                (Ok(_), None) => {}
                (Err(e), Some(k)) => {
                    prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
                    let quoted = format!("{k:?}");
                    prop_assert!(e.description.contains(&quoted), "names {}", quoted);
                }
                (r, k) => prop_assert!(false, "{:?} for the repeat {:?}", r.map(|_| ()), k),
            }
        }

        #[test]
        fn distinct_parameters_always_parse_and_encode_back_to_the_same(pairs in distinct_pairs()) {
            let p = Params::parse(&encode(&pairs)).unwrap();
            let got: Vec<(String, String)> =
                p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            prop_assert_eq!(&got, &pairs);
            for (k, v) in &pairs {
                prop_assert!(p.has(k));
                prop_assert_eq!(p.get(k), Some(v.as_str()).filter(|v| !v.is_empty()));
            }
            let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            let again = Params::parse(&p.encode_only(&names)).unwrap();
            prop_assert_eq!(again.pairs, p.pairs);
            prop_assert_eq!(Params::from_pairs(pairs.clone()).unwrap().pairs, pairs);
        }

        #[test]
        fn a_repeated_parameter_is_refused_and_the_lenient_parse_keeps_the_first(
            pairs in distinct_pairs().prop_filter("non-empty", |p| !p.is_empty()),
            which in any::<proptest::sample::Index>(),
            at in any::<proptest::sample::Index>(),
            second in ".{0,6}"
        ) {
            let (name, first) = pairs[which.index(pairs.len())].clone();
            let mut sent = pairs.clone();
            let after = pairs.iter().position(|(k, _)| *k == name).unwrap() + 1;
            let pos = after + at.index(sent.len() - after + 1);
            sent.insert(pos, (name.clone(), second));
            let e = Params::parse(&encode(&sent)).unwrap_err();
            prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
            let quoted = format!("{name:?}");
            prop_assert!(e.description.contains(&quoted), "names {}", quoted);
            let lenient = Params::parse_lenient(&encode(&sent));
            prop_assert_eq!(lenient.repeated(), Some(name.as_str()));
            prop_assert_eq!(lenient.get(&name), Some(first.as_str()).filter(|v| !v.is_empty()));
            prop_assert!(lenient.repeated_error().is_some());
        }

        #[test]
        fn resource_may_be_repeated_and_every_value_is_kept(
            pairs in distinct_pairs(),
            resources in proptest::collection::vec("[a-z:/.]{0,12}", 0..5)
        ) {
            let mut sent = pairs;
            sent.extend(resources.iter().map(|r| ("resource".to_string(), r.clone())));
            let p = Params::parse(&encode(&sent)).unwrap();
            let want: Vec<&str> = resources.iter().map(String::as_str).filter(|r| !r.is_empty()).collect();
            prop_assert_eq!(p.get_all("resource").collect::<Vec<_>>(), want);
        }
    }
}
