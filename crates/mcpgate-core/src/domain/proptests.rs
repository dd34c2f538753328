//! Property tests of the client-facing value parsers: client ids
//! (RFC 6749 §2.2), redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7.3), scopes
//! (RFC 6749 §3.3) and resource indicators (RFC 8707 §2). For each: no
//! panic on any input, parse → print → parse gives the same value, every
//! parsed value keeps the rules, and generated valid values always parse.
//! PKCE values are property-tested next to their code (`pkce.rs`).

use std::collections::BTreeSet;

use proptest::prelude::*;
use url::Url;

use super::{ClientId, RedirectUri, ResourceUri, Scope};

/// Any string, control characters and all of Unicode included, up to a
/// few thousand characters (past every length limit).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<char>(), 0..3000).prop_map(|v| v.into_iter().collect()),
    ]
}

/// Strings that look like URIs, so that the parsers get past their first
/// checks: a scheme, maybe `//`, then anything.
fn uri_like() -> impl Strategy<Value = String> {
    "(https?|HTTPS?|javascript|data|file|ftp):(//)?(user(:pw)?@)?.{0,60}"
}

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4})?(\\.[a-z][a-z0-9]{0,8}){1,2}"
}

fn port() -> impl Strategy<Value = String> {
    proptest::option::of(1u16..).prop_map(|p| p.map(|p| format!(":{p}")).unwrap_or_default())
}

fn path() -> impl Strategy<Value = String> {
    "(/[A-Za-z0-9_~-]{1,8}){0,4}"
}

fn query() -> impl Strategy<Value = String> {
    proptest::option::of("[a-z]{1,5}=[A-Za-z0-9]{0,5}(&[a-z]{1,5}=[A-Za-z0-9]{0,5}){0,2}")
        .prop_map(|q| q.map(|q| format!("?{q}")).unwrap_or_default())
}

fn https_uri() -> impl Strategy<Value = String> {
    (host(), port(), path(), query()).prop_map(|(h, p, path, q)| format!("https://{h}{p}{path}{q}"))
}

fn loopback_host() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("localhost"), Just("127.0.0.1"), Just("[::1]")]
}

fn loopback_uri() -> impl Strategy<Value = String> {
    (loopback_host(), port(), path(), query())
        .prop_map(|(h, p, path, q)| format!("http://{h}{p}{path}{q}"))
}

fn scope_token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,12}"
}

proptest! {
    // ---- client ids ----

    #[test]
    fn client_id_parsing_never_panics_and_keeps_its_rules(s in any_text()) {
        if let Ok(id) = ClientId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert!((1..=255).contains(&s.len()));
            prop_assert!(s.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
    }

    #[test]
    fn every_visible_ascii_client_id_parses_and_round_trips(s in "[!-~]{1,255}") {
        let id = ClientId::parse(&s).unwrap();
        prop_assert_eq!(id.to_string(), s.clone());
        prop_assert_eq!(ClientId::parse(id.as_str()).unwrap(), id.clone());
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<ClientId>(&json).unwrap(), id);
    }

    // ---- redirect URIs ----

    #[test]
    fn redirect_uri_parsing_never_panics_and_keeps_its_rules(
        s in prop_oneof![any_text(), uri_like(), https_uri(), loopback_uri()]
    ) {
        let Ok(r) = RedirectUri::parse(&s) else { return Ok(()) };
        prop_assert_eq!(r.as_str(), s.as_str());
        prop_assert!(!s.is_empty() && s.len() <= 2000);
        prop_assert!(!s.contains('#'), "a parsed redirect URI has no fragment: {:?}", s);
        prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
        let url = Url::parse(&s).unwrap();
        prop_assert!(url.fragment().is_none());
        prop_assert!(url.username().is_empty() && url.password().is_none());
        prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()));
        prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && r.is_loopback()));
        // parse → print → parse
        prop_assert_eq!(RedirectUri::parse(&r.to_string()).unwrap(), r.clone());
        let json = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<RedirectUri>(&json).unwrap(), r.clone());
        prop_assert!(r.matches(&r));
    }

    #[test]
    fn valid_https_and_loopback_redirect_uris_always_parse(
        s in prop_oneof![https_uri(), loopback_uri()]
    ) {
        let r = RedirectUri::parse(&s);
        prop_assert!(r.is_ok(), "{:?}: {:?}", s, r);
    }

    #[test]
    fn fragments_user_info_and_non_loopback_http_are_always_refused(
        base in https_uri(), frag in "[a-z]{0,5}", user in "[a-z]{1,5}", h in host()
    ) {
        let with_fragment = format!("{base}#{frag}");
        prop_assert!(RedirectUri::parse(&with_fragment).is_err(), "a fragment");
        let with_user = base.replacen("https://", &format!("https://{user}@"), 1);
        prop_assert!(RedirectUri::parse(&with_user).is_err(), "user info");
        let plain_http = format!("http://{h}/cb");
        prop_assert!(RedirectUri::parse(&plain_http).is_err(), "http off loopback");
    }

    #[test]
    fn a_loopback_redirect_uri_matches_on_any_port_and_nothing_else(
        h in loopback_host(), other_h in loopback_host(),
        p1 in port(), p2 in port(),
        path in path(), other_path in path(), q in query()
    ) {
        let registered = RedirectUri::parse(&format!("http://{h}{p1}{path}{q}")).unwrap();
        let same = RedirectUri::parse(&format!("http://{h}{p2}{path}{q}")).unwrap();
        prop_assert!(registered.matches(&same));
        let elsewhere = RedirectUri::parse(&format!("http://{other_h}{p2}{other_path}{q}")).unwrap();
        prop_assert_eq!(
            registered.matches(&elsewhere),
            h == other_h && registered.path() == elsewhere.path()
        );
        // https on the same host never matches a loopback registration.
        let tls = RedirectUri::parse(&format!("https://{h}{p2}{path}{q}")).unwrap();
        prop_assert!(!registered.matches(&tls) && !tls.matches(&registered));
    }

    #[test]
    fn an_https_redirect_uri_matches_only_itself_as_a_string(a in https_uri(), b in https_uri()) {
        let (ra, rb) = (RedirectUri::parse(&a).unwrap(), RedirectUri::parse(&b).unwrap());
        prop_assert_eq!(ra.matches(&rb), a == b);
    }

    #[test]
    fn params_are_appended_after_the_registered_query(
        s in prop_oneof![https_uri(), loopback_uri()],
        params in proptest::collection::vec((".{0,8}", ".{0,8}"), 0..4)
    ) {
        let r = RedirectUri::parse(&s).unwrap();
        let out = r.with_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let url = Url::parse(&out).unwrap();
        prop_assert!(url.fragment().is_none());
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let original = Url::parse(&s).unwrap().query_pairs().count();
        prop_assert_eq!(&pairs[original..], &params[..]);
    }

    // ---- scopes ----

    #[test]
    fn scope_parsing_never_panics_and_keeps_its_rules(
        s in prop_oneof![any_text(), "[ -~\t]{0,40}"]
    ) {
        let Ok(scope) = Scope::parse(&s) else { return Ok(()) };
        let tokens: Vec<&str> = scope.tokens().collect();
        prop_assert!(!tokens.is_empty());
        for t in &tokens {
            prop_assert!(!t.is_empty());
            prop_assert!(t.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)));
        }
        // No duplicates, in a canonical order.
        prop_assert!(tokens.windows(2).all(|w| w[0] < w[1]));
        // parse → print → parse
        let printed = scope.to_string();
        prop_assert_eq!(Scope::parse(&printed).unwrap(), scope.clone());
        prop_assert_eq!(Scope::parse(&printed).unwrap().to_string(), printed);
    }

    #[test]
    fn valid_scopes_parse_to_the_set_of_their_tokens_whatever_the_order_and_spacing(
        tokens in proptest::collection::vec(scope_token(), 1..8),
        gaps in proptest::collection::vec(1usize..4, 8),
        shuffle in any::<proptest::sample::Index>()
    ) {
        let joined: String = tokens
            .iter()
            .zip(&gaps)
            .map(|(t, g)| format!("{}{t}", " ".repeat(*g)))
            .collect();
        let scope = Scope::parse(&joined).unwrap();
        let want: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        prop_assert_eq!(scope.tokens().collect::<BTreeSet<_>>(), want);
        let mut rotated = tokens.clone();
        rotated.rotate_left(shuffle.index(tokens.len()));
        rotated.push(tokens[0].clone());
        prop_assert_eq!(Scope::from_tokens(rotated).unwrap(), scope.clone());
        let json = serde_json::to_string(&scope).unwrap();
        prop_assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
    }

    #[test]
    fn a_scope_with_one_bad_character_is_refused(
        tokens in proptest::collection::vec(scope_token(), 0..4),
        bad in prop_oneof![Just('"'), Just('\\'), Just('\t'), Just('\u{7f}'), Just('\u{e9}'), Just('\0')]
    ) {
        let s = format!("{} a{bad}b", tokens.join(" "));
        prop_assert!(Scope::parse(&s).is_err());
    }

    // ---- resource indicators ----

    #[test]
    fn resource_parsing_never_panics_and_keeps_its_rules(
        s in prop_oneof![any_text(), uri_like()], other in prop_oneof![any_text(), uri_like()]
    ) {
        let Ok(r) = ResourceUri::parse(&s) else { return Ok(()) };
        prop_assert_eq!(r.as_str(), s.as_str());
        prop_assert!(!s.contains('#'));
        prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
        prop_assert!(matches!(Url::parse(&s).unwrap().scheme(), "http" | "https"));
        prop_assert_eq!(ResourceUri::parse(&r.to_string()).unwrap(), r.clone());
        let _ = r.names(&other);
    }

    #[test]
    fn a_resource_names_itself_and_its_tolerated_variants_only(
        scheme in prop_oneof![Just("http"), Just("https")],
        h in host(), p in port(), path in "(/[a-z0-9]{1,6}){1,3}", slash in any::<bool>(),
        other_h in host()
    ) {
        let canonical = format!("{scheme}://{h}{p}{path}{}", if slash { "/" } else { "" });
        let r = ResourceUri::parse(&canonical).unwrap();
        let v = |host: &str, rest: &str| format!("{scheme}://{host}{p}{path}{rest}");
        prop_assert!(r.names(&canonical), "{:?} names itself", canonical);
        let upper = format!("{}://{}{p}{path}", scheme.to_uppercase(), h.to_uppercase());
        prop_assert!(r.names(&upper), "{:?} names {:?}", canonical, upper);
        prop_assert!(r.names(&v(&h, "")), "without a trailing slash");
        prop_assert!(r.names(&v(&h, "/")), "with a trailing slash");
        prop_assert!(!r.names(&v(&h, "//")), "two trailing slashes");
        prop_assert!(!r.names(&v(&h, "?x=1")), "a query");
        prop_assert_eq!(r.names(&v(&other_h, "")), other_h == h);
        let upper_path = format!("{scheme}://{h}{p}{}", path.to_uppercase());
        if path.bytes().any(|b| b.is_ascii_lowercase()) {
            prop_assert!(!r.names(&upper_path), "the path's case matters");
        }
        let other_scheme = if scheme == "http" { "https" } else { "http" };
        let other = format!("{other_scheme}://{h}{p}{path}");
        prop_assert!(!r.names(&other), "another scheme");
    }
}
