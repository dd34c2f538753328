//! Property tests of the doctor's `WWW-Authenticate` parser
//! ([`super::bearer_params`], RFC 9110 §11.6.1, RFC 6750 §3): no panic on
//! any value; the challenges mcpgate builds (`BearerError::challenge`) read
//! back as built; in any list of challenges, the Bearer one's parameters
//! are found, and a list without one gives `None`.

use mcpgate_core::mcp::bearer::BearerError;
use proptest::prelude::*;

use super::bearer_params;

/// RFC 9110 §5.6.2 tokens.
fn token() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}"
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A parameter as sent (name in any case, value quoted or a token) and as
/// the parser gives it back (name lowercased, value unquoted).
fn param() -> impl Strategy<Value = (String, (String, String))> {
    (
        "[A-Za-z_][A-Za-z0-9_-]{0,12}",
        prop_oneof![
            token().prop_map(|t| (t.clone(), t)),
            "[ -~]{0,20}".prop_map(|v| (quoted(&v), v)),
        ],
        "[ ]{0,2}",
    )
        .prop_map(|(k, (sent, got), sp)| {
            (format!("{k}{sp}={sp}{sent}"), (k.to_ascii_lowercase(), got))
        })
}

/// A challenge of another scheme: its quoted values may say "bearer".
fn other_challenge() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,20}".prop_map(|realm| format!("Basic realm={}", quoted(&realm))),
        "(, ?bearer ?|bearer, ){1,2}[ -~]{0,8}"
            .prop_map(|realm| format!("Basic realm={}", quoted(&realm))),
        Just("Negotiate".to_string()),
        "[A-Za-z0-9+/]{4,12}={0,2}".prop_map(|t| format!("Negotiate {t}")),
        "[A-Za-z0-9]{1,8}".prop_map(|a| format!("DPoP algs=\"{a}\", error=\"bearer, x\"")),
    ]
}

fn errors() -> impl Strategy<Value = BearerError> {
    let text = || "[ -~]{0,30}";
    prop_oneof![
        Just(BearerError::Missing),
        text().prop_map(BearerError::InvalidRequest),
        text().prop_map(BearerError::InvalidToken),
        text().prop_map(BearerError::InsufficientScope),
    ]
}

/// What `BearerError::challenge` does to a value: RFC 6750 quoted-strings
/// without `"` and `\`, printable ASCII only.
fn quote_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                '\''
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn parsing_any_header_value_never_panics(
        v in prop_oneof![
            any::<String>(),
            "(Bearer|bearer|Basic|,| |\"|\\\\|=|[a-z]){0,40}",
            proptest::collection::vec(any::<char>(), 0..3000).prop_map(|v| v.into_iter().collect()),
        ]
    ) {
        let _ = bearer_params(&v);
    }

    #[test]
    fn the_challenges_mcpgate_builds_read_back_as_built(
        e in errors(), metadata in any::<String>(), scope in any::<String>()
    ) {
        let header = e.challenge(&metadata, &scope);
        let mut want = Vec::new();
        if e != BearerError::Missing {
            want.push(("error".to_string(), e.to_string()));
            want.push(("error_description".to_string(), quote_safe(e.description())));
        }
        want.push(("resource_metadata".to_string(), quote_safe(&metadata)));
        want.push(("scope".to_string(), quote_safe(&scope)));
        prop_assert_eq!(bearer_params(&header), Some(want), "{}", header);
    }

    #[test]
    fn the_bearer_challenge_is_found_among_others(
        before in proptest::collection::vec(other_challenge(), 0..3),
        scheme in "[Bb][Ee][Aa][Rr][Ee][Rr]",
        params in proptest::collection::vec(param(), 0..5),
        after in proptest::collection::vec(other_challenge(), 0..3),
    ) {
        let sent: Vec<&str> = params.iter().map(|(s, _)| s.as_str()).collect();
        let bearer = if sent.is_empty() {
            scheme.clone()
        } else {
            format!("{scheme} {}", sent.join(", "))
        };
        let header = before.iter().chain([&bearer]).chain(&after).cloned().collect::<Vec<_>>().join(", ");
        let want: Vec<(String, String)> = params.into_iter().map(|(_, p)| p).collect();
        prop_assert_eq!(bearer_params(&header), Some(want), "{}", header);
    }

    #[test]
    fn a_header_without_a_bearer_challenge_has_no_bearer_parameters(
        challenges in proptest::collection::vec(other_challenge(), 1..4)
    ) {
        let header = challenges.join(", ");
        prop_assert_eq!(bearer_params(&header), None, "{}", header);
    }
}
