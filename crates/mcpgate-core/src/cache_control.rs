//! What a response's `Cache-Control` header says about keeping it
//! (RFC 9111 §5.2.2), for the caches of documents mcpgate fetches from
//! clients: metadata documents ([`crate::oauth::cimd::fresh_until`]) and
//! JWK Sets ([`crate::oauth::client_assertion::jwks_ttl`]). Each cache
//! applies its own bounds and defaults.

/// The directives that decide a fetched document's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// `no-store` or `no-cache` (whatever else the header says).
    NoStore,
    /// `max-age` in seconds (quoted values accepted).
    MaxAge(i64),
    /// A `max-age` whose value is not a number.
    Malformed,
    /// Neither: no header, or only other directives.
    Unspecified,
}

/// Reads the lifetime directives of a `Cache-Control` header value.
pub fn lifetime(cache_control: Option<&str>) -> Lifetime {
    let mut max_age = Lifetime::Unspecified;
    for directive in cache_control.unwrap_or("").split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("no-store" | "no-cache", _) => return Lifetime::NoStore,
            ("max-age", Some(v)) => {
                max_age = v.parse().map_or(Lifetime::Malformed, Lifetime::MaxAge);
            }
            _ => {}
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_in_any_case_and_order() {
        assert_eq!(lifetime(None), Lifetime::Unspecified);
        assert_eq!(lifetime(Some("public")), Lifetime::Unspecified);
        assert_eq!(
            lifetime(Some("public, Max-Age=\"60\"")),
            Lifetime::MaxAge(60)
        );
        assert_eq!(lifetime(Some("max-age=60, no-cache")), Lifetime::NoStore);
        assert_eq!(lifetime(Some("max-age=x")), Lifetime::Malformed);
    }
}
