use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::domain::ClientId;

fn user(name: &str, groups: &[&str]) -> Caller {
    Caller {
        subject: Subject::User {
            id: format!("id-{name}"),
            username: name.into(),
        },
        client_id: ClientId::parse("app").unwrap(),
        scope: Scope::parse("mcp").unwrap(),
        expires_at: 0,
        token_hash: "h".into(),
        groups: groups
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .into(),
    }
}

fn service(client_id: &str) -> Caller {
    Caller {
        subject: Subject::Service {
            name: "Nightly".into(),
        },
        client_id: ClientId::parse(client_id).unwrap(),
        ..user("x", &[])
    }
}

fn scopes() -> Vec<String> {
    vec!["mcp".into(), "files:write".into()]
}

fn compile(toml_rules: &str, default: DefaultPolicy) -> Result<Policy, PolicyError> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        policy: Vec<RuleConfig>,
    }
    let file: File = toml_like(toml_rules);
    let groups: HashSet<String> = ["readers", "admins", "ops"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let scopes = scopes();
    Policy::compile(
        &file.policy,
        default,
        &Known {
            scopes: &scopes,
            groups: Some(&groups),
        },
    )
}

/// The rules as JSON (core has no TOML parser): a list of rule objects.
fn toml_like<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(&format!("{{\"policy\": {json}}}")).unwrap()
}

#[test]
fn no_rules_follow_the_default() {
    let p = compile("[]", DefaultPolicy::Allow).unwrap();
    assert!(p.allows(Kind::Tool, "anything", &user("a", &[])));
    let p = compile("[]", DefaultPolicy::Deny).unwrap();
    assert!(!p.allows(Kind::Tool, "anything", &user("a", &[])));
    assert_eq!(
        p.decide(Kind::Prompt, "p", &user("a", &[])),
        Decision {
            allowed: false,
            rule: None
        }
    );
}

#[test]
fn deny_wins_over_an_earlier_allow() {
    let p = compile(
        r#"[{"effect":"allow","tools":["files_*"],"groups":["readers"]},
            {"effect":"deny","tools":["files_delete"]}]"#,
        DefaultPolicy::Deny,
    )
    .unwrap();
    let r = user("rita", &["readers"]);
    assert!(p.allows(Kind::Tool, "files_read", &r));
    assert_eq!(
        p.decide(Kind::Tool, "files_delete", &r),
        Decision {
            allowed: false,
            rule: Some(1)
        }
    );
    assert!(!p.allows(Kind::Tool, "files_read", &user("bob", &[])));
}

#[test]
fn the_first_matching_allow_decides_scopes_and_rate() {
    let p = compile(
        r#"[{"effect":"allow","tools":["deploy"],"groups":["admins"],"scopes":["files:write"],"rate":"2/min"},
            {"effect":"allow","tools":["*"]}]"#,
        DefaultPolicy::Deny,
    )
    .unwrap();
    let admin = user("ada", &["admins"]);
    let other = user("bob", &[]);
    assert_eq!(p.decide(Kind::Tool, "deploy", &admin).rule, Some(0));
    assert_eq!(p.decide(Kind::Tool, "deploy", &other).rule, Some(1));
    assert_eq!(
        p.scopes_for(Kind::Tool, "deploy", &admin)
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["files:write"]
    );
    assert!(p.scopes_for(Kind::Tool, "deploy", &other).is_empty());
    assert_eq!(
        p.rate_for("deploy", &admin).map(|(i, r)| (i, r.burst())),
        Some((0, 2))
    );
    assert!(p.rate_for("deploy", &other).is_none());
    assert!(p.has_rates());
}

#[test]
fn kinds_are_separate() {
    let p = compile(
        r#"[{"effect":"allow","prompts":["greet*"]},
            {"effect":"allow","resources":["file:///srv/public/*"]}]"#,
        DefaultPolicy::Deny,
    )
    .unwrap();
    let u = user("u", &[]);
    assert!(p.allows(Kind::Prompt, "greeting", &u));
    assert!(!p.allows(Kind::Tool, "greeting", &u));
    assert!(p.allows(Kind::Resource, "file:///srv/public/a", &u));
    assert!(!p.allows(Kind::Resource, "file:///srv/private/a", &u));
}

#[test]
fn subjects_users_groups_services_and_clients() {
    let p = compile(
        r#"[{"effect":"allow","tools":["t_user"],"users":["Alice"]},
            {"effect":"allow","tools":["t_group"],"groups":["ops"]},
            {"effect":"allow","tools":["t_service"],"services":["nightly"]},
            {"effect":"allow","tools":["t_client"],"clients":["claude.ai","cli-app"]}]"#,
        DefaultPolicy::Deny,
    )
    .unwrap();
    let alice = user("alice", &[]);
    let ops = user("olga", &["ops"]);
    let svc = service("nightly");
    assert!(
        p.allows(Kind::Tool, "t_user", &alice),
        "usernames are normalised"
    );
    assert!(!p.allows(Kind::Tool, "t_user", &ops));
    assert!(p.allows(Kind::Tool, "t_group", &ops));
    assert!(!p.allows(Kind::Tool, "t_group", &alice));
    assert!(p.allows(Kind::Tool, "t_service", &svc));
    assert!(!p.allows(Kind::Tool, "t_service", &alice));
    // A user is never a service, and a service never a user, whatever the names.
    let named_like_service = user("nightly", &[]);
    assert!(!p.allows(Kind::Tool, "t_service", &named_like_service));
    assert!(!p.allows(
        Kind::Tool,
        "t_user",
        &Caller {
            subject: Subject::Service {
                name: "alice".into()
            },
            ..alice.clone()
        }
    ));
    // Clients: by id, or by the host of a metadata document URL.
    let mut via = alice.clone();
    assert!(!p.allows(Kind::Tool, "t_client", &via));
    via.client_id = ClientId::parse("cli-app").unwrap();
    assert!(p.allows(Kind::Tool, "t_client", &via));
    via.client_id = ClientId::parse("https://claude.ai/oauth/client.json").unwrap();
    assert!(p.allows(Kind::Tool, "t_client", &via));
    via.client_id = ClientId::parse("https://evil.example/claude.ai").unwrap();
    assert!(!p.allows(Kind::Tool, "t_client", &via));
    via.client_id = ClientId::parse("https://claude.ai.evil.example/c.json").unwrap();
    assert!(!p.allows(Kind::Tool, "t_client", &via));
}

#[test]
fn a_star_names_every_user_or_every_service() {
    let p = compile(
        r#"[{"effect":"allow","tools":["t"],"services":["*"]},
            {"effect":"deny","tools":["t"],"users":["*"]}]"#,
        DefaultPolicy::Allow,
    )
    .unwrap();
    assert!(p.allows(Kind::Tool, "t", &service("any-client")));
    assert!(!p.allows(Kind::Tool, "t", &user("anyone", &["admins"])));
}

#[test]
fn clients_narrow_the_subjects() {
    let p = compile(
        r#"[{"effect":"deny","tools":["crm_delete_*"],"groups":["readers"],"clients":["risky"]}]"#,
        DefaultPolicy::Allow,
    )
    .unwrap();
    let mut r = user("rita", &["readers"]);
    assert!(p.allows(Kind::Tool, "crm_delete_x", &r));
    r.client_id = ClientId::parse("risky").unwrap();
    assert!(!p.allows(Kind::Tool, "crm_delete_x", &r));
    assert!(p.allows(Kind::Tool, "crm_delete_x", &user("ada", &["admins"])));
}

#[test]
fn compile_errors_name_the_rule_field_and_value() {
    let cases = [
        (
            r#"[{"effect":"allow","tools":["ok"]},{"effect":"allow","tools":["bad **"]}]"#,
            2,
            "tools",
            "bad **",
        ),
        (r#"[{"tools":["x"]}]"#, 1, "effect", ""),
        (r#"[{"effect":"allow"}]"#, 1, "tools", ""),
        (
            r#"[{"effect":"allow","tools":["x"],"groups":["nobody-has-it"]}]"#,
            1,
            "groups",
            "nobody-has-it",
        ),
        (
            r#"[{"effect":"allow","tools":["x"],"scopes":["admin"]}]"#,
            1,
            "scopes",
            "admin",
        ),
        (
            r#"[{"effect":"allow","tools":["x"],"rate":"lots"}]"#,
            1,
            "rate",
            "lots",
        ),
        (
            r#"[{"effect":"allow","tools":["x"],"rate":"1/s","rate_per_minute":3}]"#,
            1,
            "rate_per_minute",
            "",
        ),
        (
            r#"[{"effect":"allow","tools":["x"],"burst":3}]"#,
            1,
            "burst",
            "3",
        ),
        (
            r#"[{"effect":"deny","tools":["x"],"rate":"1/s"}]"#,
            1,
            "effect",
            "deny",
        ),
        (
            r#"[{"effect":"allow","prompts":["x"],"rate":"1/s"}]"#,
            1,
            "rate",
            "1/s",
        ),
        (
            r#"[{"effect":"allow","resources":[""]}]"#,
            1,
            "resources",
            "",
        ),
        (
            r#"[{"effect":"allow","tools":["x"],"services":["a b"]}]"#,
            1,
            "services",
            "a b",
        ),
    ];
    for (rules, rule, field, value) in cases {
        let e = compile(rules, DefaultPolicy::Allow).unwrap_err();
        assert_eq!(
            (e.rule, e.field, e.value.as_str()),
            (rule, field, value),
            "{rules}"
        );
        let text = e.to_string();
        assert!(text.contains(&format!("rule #{rule}")), "{text}");
    }
}

#[test]
fn unknown_groups_pass_when_a_provider_maps_groups() {
    let rules: Vec<RuleConfig> =
        serde_json::from_str(r#"[{"effect":"allow","tools":["x"],"groups":["idp:eng"]}]"#).unwrap();
    let scopes = scopes();
    let p = Policy::compile(
        &rules,
        DefaultPolicy::Deny,
        &Known {
            scopes: &scopes,
            groups: None,
        },
    )
    .unwrap();
    assert!(p.allows(Kind::Tool, "x", &user("e", &["idp:eng"])));
}

#[test]
fn rate_per_minute_is_an_alternative_spelling() {
    let p = compile(
        r#"[{"effect":"allow","tools":["x"],"rate_per_minute":30,"burst":5}]"#,
        DefaultPolicy::Allow,
    )
    .unwrap();
    let (_, r) = p.rate_for("x", &user("u", &[])).unwrap();
    assert_eq!((r.interval_ms(), r.burst()), (2_000, 5));
}

#[test]
fn group_names() {
    assert!(GroupName::parse("ops").is_ok());
    assert!(GroupName::parse("okta:Domain Admins").is_ok());
    assert!(GroupName::parse("").is_err());
    assert!(GroupName::parse(" ops").is_err());
    assert!(GroupName::parse("a\nb").is_err());
    assert!(GroupName::parse(&"g".repeat(129)).is_err());
}

#[test]
fn document_hosts() {
    assert_eq!(document_host("https://claude.ai/x.json"), Some("claude.ai"));
    assert_eq!(document_host("https://claude.ai:8443/x"), Some("claude.ai"));
    assert_eq!(document_host("https://u@h.example/x"), Some("h.example"));
    assert_eq!(document_host("http://claude.ai/x"), None);
    assert_eq!(document_host("claude.ai"), None);
}

proptest! {
    /// Deny wins: adding a matching deny rule anywhere denies, whatever the
    /// allow rules and the default.
    #[test]
    fn a_matching_deny_always_wins(pos in 0usize..4, allows in 0usize..4, default_allow: bool) {
        let mut rules: Vec<RuleConfig> = (0..allows)
            .map(|_| RuleConfig { effect: Some(Effect::Allow), tools: vec!["*".into()], ..Default::default() })
            .collect();
        let deny = RuleConfig { effect: Some(Effect::Deny), tools: vec!["t*".into()], ..Default::default() };
        rules.insert(pos.min(rules.len()), deny);
        let scopes = scopes();
        let p = Policy::compile(&rules, if default_allow { DefaultPolicy::Allow } else { DefaultPolicy::Deny },
            &Known { scopes: &scopes, groups: None }).unwrap();
        prop_assert!(!p.allows(Kind::Tool, "tool", &user("u", &[])));
        prop_assert_eq!(p.allows(Kind::Tool, "other", &user("u", &[])), allows > 0 || default_allow);
    }
}
