//! Property tests of client registration (RFC 7591 §2, §3.2): no panic on
//! any JSON; every valid request generated here is accepted; what is
//! accepted keeps the rules; and the §3.2.1 response, sent back as a
//! registration request, gives the same metadata (parse → print → parse).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::domain::ClientId;

fn scopes() -> Vec<String> {
    vec!["mcp".into(), "offline_access".into(), "admin".into()]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects with the registration fields, each maybe of the wrong type.
fn any_request() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("redirect_uris"),
        Just("token_endpoint_auth_method"),
        Just("grant_types"),
        Just("response_types"),
        Just("scope"),
        Just("client_name"),
        Just("client_uri"),
        Just("contacts"),
        Just("application_type"),
        Just("software_id"),
    ];
    proptest::collection::vec((field, json_value()), 0..8).prop_map(|fields| {
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    })
}

fn redirect_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        "https://[a-z]{1,8}\\.example(/[a-z0-9]{1,6}){0,2}",
        "http://(localhost|127\\.0\\.0\\.1|\\[::1\\])(:[1-9][0-9]{0,3})?/[a-z]{0,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty())
}

/// A valid registration request.
fn valid_request() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(redirect_uri(), 1..=20),
        proptest::option::of(prop_oneof![
            Just("none"),
            Just("client_secret_basic"),
            Just("client_secret_post")
        ]),
        any::<bool>(),
        proptest::option::of(proptest::sample::subsequence(scopes(), 1..=3)),
        proptest::option::of(text()),
        proptest::option::of("https://[a-z]{1,8}\\.example/[a-z]{0,6}"),
        proptest::collection::vec("[a-z]{1,8}@[a-z]{1,8}\\.example", 0..3),
        proptest::option::of(prop_oneof![Just("web"), Just("native")]),
    )
        .prop_map(
            |(uris, method, refresh, scope, name, client_uri, contacts, app)| {
                let mut m = Map::new();
                m.insert("redirect_uris".into(), json!(uris));
                if let Some(method) = method {
                    m.insert("token_endpoint_auth_method".into(), json!(method));
                }
                let mut grants = vec!["authorization_code"];
                if refresh {
                    grants.push("refresh_token");
                }
                m.insert("grant_types".into(), json!(grants));
                m.insert("response_types".into(), json!(["code"]));
                if let Some(s) = scope {
                    m.insert("scope".into(), json!(s.join(" ")));
                }
                for (k, v) in [
                    ("client_name", name),
                    ("client_uri", client_uri),
                    ("application_type", app.map(str::to_string)),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                if !contacts.is_empty() {
                    m.insert("contacts".into(), json!(contacts));
                }
                Value::Object(m)
            },
        )
}

fn registered(metadata: ClientMetadata) -> Client {
    Client {
        client_id: ClientId::parse("c1").unwrap(),
        secret_hash: None,
        metadata,
        issued_at: 1_700_000_000,
        last_used_at: None,
        kind: crate::model::ClientKind::Dynamic,
    }
}

proptest! {
    #[test]
    fn any_json_is_validated_without_panic_and_what_passes_keeps_the_rules(
        body in prop_oneof![json_value(), any_request()]
    ) {
        let Ok(m) = validate(&body, &scopes()) else { return Ok(()) };
        prop_assert!((1..=20).contains(&m.redirect_uris.len()));
        prop_assert!(m.grant_types.contains(&GrantType::AuthorizationCode));
        let mut g = m.grant_types.clone();
        g.dedup();
        prop_assert_eq!(g.len(), m.grant_types.len());
        prop_assert_eq!(&m.response_types, &vec!["code".to_string()]);
        if let Some(s) = &m.scope {
            prop_assert!(s.not_in(&scopes()).is_empty());
        }
        for t in [&m.client_name, &m.software_id].into_iter().flatten() {
            prop_assert!(!t.chars().any(char::is_control) && t.chars().count() <= 300);
        }
    }

    #[test]
    fn every_valid_request_is_accepted_and_its_response_registers_the_same(body in valid_request()) {
        let m = validate(&body, &scopes())
            .map_err(|e| TestCaseError::fail(format!("{body}: {}", e.description)))?;
        let sent: Vec<&str> = body["redirect_uris"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let got: Vec<&str> = m.redirect_uris.iter().map(|r| r.as_str()).collect();
        prop_assert_eq!(got, sent);
        let echoed = response(&registered(m.clone()), None);
        for (k, v) in body.as_object().unwrap() {
            if k != "scope" {
                prop_assert_eq!(&echoed[k], v, "{} is echoed", k);
            }
        }
        prop_assert_eq!(validate(&echoed, &scopes()).unwrap(), m);
    }
}
