//! Unit tests of the settings: defaults, precedence, bounds, the public URL rules.

use super::*;

fn loopback() -> SocketAddr {
    "127.0.0.1:3333".parse().unwrap()
}

#[test]
fn defaults_resolve_to_localhost_urls() {
    let r = Settings::default().resolve(loopback()).unwrap();
    assert_eq!(r.urls.issuer, "http://localhost:3333");
    assert_eq!(r.urls.resource, "http://localhost:3333/v1/ai/mcp");
    assert_eq!(r.policy.access_token_ttl, 86_400);
    assert_eq!(r.policy.auth_code_ttl, 60);
}

#[test]
fn a_public_address_needs_an_https_public_url() {
    let public: SocketAddr = "0.0.0.0:3333".parse().unwrap();
    let e = Settings::default().resolve(public).unwrap_err();
    assert!(e.0.contains("requires public_url"));
    let s = Settings {
        public_url: Some("http://mcp.example.com".into()),
        ..Settings::default()
    };
    assert!(s.resolve(public).unwrap_err().0.contains("must be https"));
    let s = Settings {
        public_url: Some("https://mcp.example.com/".into()),
        ..Settings::default()
    };
    assert_eq!(
        s.resolve(public).unwrap().urls.issuer,
        "https://mcp.example.com"
    );
}

#[test]
fn bad_values_are_refused_with_the_setting_name() {
    let s = Settings {
        auth_code_ttl: Duration::from_secs(601),
        ..Settings::default()
    };
    assert!(
        s.resolve(loopback())
            .unwrap_err()
            .0
            .contains("auth_code_ttl")
    );
    let s = Settings {
        default_scope: "admin".into(),
        ..Settings::default()
    };
    assert!(
        s.resolve(loopback())
            .unwrap_err()
            .0
            .contains("default_scope")
    );
    let s = Settings {
        public_url: Some("https://x.example/?q=1".into()),
        ..Settings::default()
    };
    assert!(s.resolve(loopback()).unwrap_err().0.contains("query"));
    let s = Settings {
        trusted_proxies: vec!["10.0.0.0/8".into(), "proxy.example".into()],
        ..Settings::default()
    };
    let e = s.resolve(loopback()).unwrap_err().0;
    assert!(
        e.contains("trusted_proxies") && e.contains("proxy.example"),
        "{e}"
    );
}

#[test]
fn lists_from_the_environment_are_comma_separated_or_toml() {
    assert_eq!(split_list("mcp, admin,"), vec!["mcp", "admin"]);
    assert_eq!(
        split_list(r#"["a.example", "b.example"]"#),
        vec!["a.example", "b.example"]
    );
    assert!(split_list("").is_empty());
    let (scalars, lists) = setting_keys();
    assert!(scalars.contains(&"public_url".to_string()) && scalars.contains(&"listen".to_string()));
    assert!(!scalars.contains(&"scopes".to_string()));
    assert_eq!(lists.len(), LIST_KEYS.len());
    assert!(lists.contains(&"outbound_allow_networks"));
}

#[test]
fn the_example_file_parses_and_matches_the_defaults() {
    let from_file: Settings = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::string(&example_file()))
        .extract()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&from_file).unwrap(),
        serde_json::to_value(Settings::default()).unwrap()
    );
}

#[test]
fn bad_outbound_settings_are_refused_with_the_setting_name() {
    let s = Settings {
        outbound_allow_networks: vec!["10.0.0.0/8".into(), "intranet".into()],
        ..Settings::default()
    };
    let e = s.resolve(loopback()).unwrap_err().0;
    assert!(
        e.contains("outbound_allow_networks") && e.contains("intranet"),
        "{e}"
    );
    let s = Settings {
        outbound_ca_file: Some("/nonexistent/ca.pem".into()),
        ..Settings::default()
    };
    let e = s.resolve(loopback()).unwrap_err().0;
    assert!(e.contains("outbound_ca_file"), "{e}");
    let s = Settings {
        trusted_client_hosts: vec!["https://claude.ai/".into()],
        ..Settings::default()
    };
    let e = s.resolve(loopback()).unwrap_err().0;
    assert!(e.contains("trusted_client_hosts"), "{e}");
}

#[test]
fn zero_timeouts_and_a_zero_connection_cap_are_refused() {
    for (name, s) in [
        (
            "header_read_timeout",
            Settings {
                header_read_timeout: Duration::ZERO,
                ..Settings::default()
            },
        ),
        (
            "body_read_timeout",
            Settings {
                body_read_timeout: Duration::ZERO,
                ..Settings::default()
            },
        ),
        (
            "keep_alive_timeout",
            Settings {
                keep_alive_timeout: Duration::ZERO,
                ..Settings::default()
            },
        ),
        (
            "max_connections",
            Settings {
                max_connections: 0,
                ..Settings::default()
            },
        ),
        (
            "event_stream_keep_alive",
            Settings {
                event_stream_keep_alive: Duration::ZERO,
                ..Settings::default()
            },
        ),
        (
            "event_stream_keep_alive",
            Settings {
                event_stream_keep_alive: Duration::from_millis(500),
                ..Settings::default()
            },
        ),
        (
            "event_stream_keep_alive",
            Settings {
                event_stream_keep_alive: Duration::from_secs(2 * 86_400),
                ..Settings::default()
            },
        ),
    ] {
        assert!(
            s.resolve(loopback()).unwrap_err().0.contains(name),
            "{name}"
        );
    }
}

#[test]
fn the_line_of_a_policy_table_is_found_for_its_error() {
    let text = "# mcpgate.toml\n[[upstream]]\nname = \"a\"\n\n[[policy]]\neffect = \"allow\"\n\n  [[ policy ]] # the second\nnote = \"[[policy]] in a string\"\n[[policy]]\n";
    assert_eq!(policy_table_line(text, 1), Some(5));
    assert_eq!(policy_table_line(text, 2), Some(8));
    assert_eq!(policy_table_line(text, 3), Some(10));
    assert_eq!(policy_table_line(text, 4), None);
    assert_eq!(policy_table_line(text, 0), None);
}
