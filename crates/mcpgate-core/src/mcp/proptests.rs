//! Property tests of what the MCP endpoint reads from a client and writes
//! back: the `Authorization: Bearer` header (RFC 6750 §2.1), the query
//! string check, the token shape check, and the `WWW-Authenticate`
//! challenges (RFC 6750 §3, RFC 9728 §5.1). The doctor's parser of those
//! challenges is property-tested against these in `src/doctor/http`.

use proptest::prelude::*;

use super::bearer::{BearerError, check_query, check_shape, token_from_header};

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(Bearer|bearer|BEARER|Basic|DPoP)?[ \t]{0,3}.{0,40}",
        proptest::collection::vec(any::<char>(), 0..3000).prop_map(|v| v.into_iter().collect()),
    ]
}

/// RFC 6750 §2.1 b64token.
fn b64token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{1,80}=*"
}

fn bearer_scheme() -> impl Strategy<Value = String> {
    "[Bb][Ee][Aa][Rr][Ee][Rr]"
}

fn errors() -> impl Strategy<Value = BearerError> {
    prop_oneof![
        Just(BearerError::Missing),
        any::<String>().prop_map(BearerError::InvalidRequest),
        any::<String>().prop_map(BearerError::InvalidToken),
        any::<String>().prop_map(BearerError::InsufficientScope),
    ]
}

proptest! {
    #[test]
    fn header_parsing_never_panics_and_a_token_is_never_blank(h in any_text()) {
        if let Ok(token) = token_from_header(Some(&h)) {
            prop_assert!(!token.is_empty());
            prop_assert_eq!(token, token.trim());
            let value = h.trim();
            prop_assert!(value.len() > 7 && value[..6].eq_ignore_ascii_case("bearer"));
            prop_assert!(value[6..].starts_with(' '));
        }
    }

    #[test]
    fn the_token_of_bearer_x_is_x(
        scheme in bearer_scheme(), token in b64token(),
        lead in "[ ]{0,3}", gap in "[ ]{1,3}", trail in "[ ]{0,3}"
    ) {
        let header = format!("{lead}{scheme}{gap}{token}{trail}");
        prop_assert_eq!(token_from_header(Some(&header)), Ok(token.as_str()));
    }

    #[test]
    fn another_scheme_counts_as_no_credentials(
        scheme in "[A-Za-z][A-Za-z0-9-]{0,10}".prop_filter("not bearer", |s| !s.eq_ignore_ascii_case("bearer")),
        rest in "( .{0,20})?"
    ) {
        let header = format!("{scheme}{rest}");
        prop_assert_eq!(token_from_header(Some(&header)), Err(BearerError::Missing));
    }

    #[test]
    fn a_query_is_refused_exactly_when_it_carries_access_token(q in any_text()) {
        let carries = url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token");
        prop_assert_eq!(check_query(Some(&q)).is_err(), carries);
    }

    #[test]
    fn access_token_anywhere_in_a_query_is_refused(
        before in proptest::collection::vec(("[a-z_]{1,8}", "[a-z0-9%]{0,8}"), 0..4),
        after in proptest::collection::vec(("[a-z_]{1,8}", "[a-z0-9%]{0,8}"), 0..4),
        token in b64token(), encoded in any::<bool>()
    ) {
        let name = if encoded { "access%5Ftoken" } else { "access_token" };
        let part = |v: &[(String, String)]| v.iter().map(|(k, v)| format!("{k}={v}&")).collect::<String>();
        let q = format!("{}{name}={token}&{}", part(&before), part(&after));
        prop_assert!(check_query(Some(&q)).is_err());
    }

    #[test]
    fn the_shape_check_never_panics_and_takes_every_issued_shape(
        s in any_text(), hex in "[0-9a-f]{32}"
    ) {
        let _ = check_shape(&s);
        let issued = format!("mcp_{hex}");
        prop_assert!(check_shape(&issued).is_ok(), "{}", issued);
        let upper = format!("mcp_{}", hex.to_uppercase());
        let has_letters = hex.bytes().any(|b| b.is_ascii_alphabetic());
        prop_assert_eq!(check_shape(&upper).is_ok(), !has_letters);
    }

    #[test]
    fn a_challenge_is_always_a_valid_header_with_its_quotes_balanced(
        e in errors(), metadata in any::<String>(), scope in any::<String>()
    ) {
        let c = e.challenge(&metadata, &scope);
        prop_assert!(c.starts_with("Bearer "));
        prop_assert!(c.chars().all(|ch| (' '..='~').contains(&ch)), "{:?}", c);
        prop_assert!(!c.contains('\\'));
        let quotes = c.matches('"').count();
        prop_assert_eq!(quotes, if e == BearerError::Missing { 4 } else { 8 });
        prop_assert!(c.contains(" resource_metadata=\"") && c.contains(", scope=\""));
    }
}
