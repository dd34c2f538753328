//! The outbound settings: `outbound_ca_file` adds trusted roots to every
//! outbound client (operator-configured destinations included, which are
//! not under the SSRF rule), `outbound_allow_networks` exempts networks
//! from the SSRF rule of client-controlled fetches, and bad values stop the
//! server at start with a clear error.

use std::time::Duration;

use mcpgate::outbound::{Outbound, OutboundSettings, Redirects};
use serde_json::json;

use crate::helpers::{spawn_app_with, test_settings};
use crate::https_support::HttpsServer;

#[tokio::test]
async fn the_ca_file_is_trusted_by_operator_clients_which_may_reach_loopback() {
    let server = HttpsServer::start().await;
    server.json("/doc", &json!({"ok": true}), &[]);
    let url = server.url("/doc");
    let plain = Outbound::request_response(Redirects::Never, Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(
        plain.get(&url).send().await.is_err(),
        "the test CA is not trusted by default"
    );
    let settings = OutboundSettings::load(&[], Some(&server.ca_file())).unwrap();
    let with_ca = Outbound::request_response(Redirects::Never, Duration::from_secs(5))
        .settings(&settings)
        .build()
        .unwrap();
    let r = with_ca.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let upstream = Outbound::upstream().settings(&settings).build().unwrap();
    assert_eq!(upstream.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_controlled_fetch_to_loopback_is_refused_unless_allowed() {
    let server = HttpsServer::start().await;
    server.json("/doc", &json!({"ok": true}), &[]);
    let url = url::Url::parse(&server.url("/doc")).unwrap();
    let by_name =
        url::Url::parse(&format!("https://localhost:{}/doc", server.addr.port())).unwrap();
    let guarded = |allow: &[String]| {
        Outbound::client_controlled(Duration::from_secs(5))
            .settings(&OutboundSettings::load(allow, Some(&server.ca_file())).unwrap())
            .build_guarded()
            .unwrap()
    };
    let refused = guarded(&[]);
    let e = refused.get(&url).unwrap_err();
    assert!(e.contains("loopback"), "{e}");
    let e = refused.get(&by_name).unwrap().send().await.unwrap_err();
    let chain = mcpgate::outbound::error_chain(&e);
    assert!(chain.contains("loopback"), "{chain}");
    assert_eq!(server.hits("/doc"), 0);

    let allowed = guarded(&["127.0.0.1/32".to_string(), "::1/128".to_string()]);
    assert_eq!(
        allowed.get(&url).unwrap().send().await.unwrap().status(),
        200
    );
    assert_eq!(
        allowed
            .get(&by_name)
            .unwrap()
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(server.hits("/doc"), 2);
}

#[tokio::test]
async fn bad_outbound_settings_stop_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "-----BEGIN NOTHING-----").unwrap();
    for (tweak, needle) in [
        (
            Box::new(|s: &mut mcpgate::config::Settings| s.outbound_ca_file = Some(garbage.clone()))
                as Box<dyn Fn(&mut mcpgate::config::Settings)>,
            "outbound_ca_file",
        ),
        (
            Box::new(|s: &mut mcpgate::config::Settings| {
                s.outbound_ca_file = Some(dir.path().join("missing.pem"))
            }),
            "outbound_ca_file",
        ),
        (
            Box::new(|s: &mut mcpgate::config::Settings| {
                s.outbound_allow_networks = vec!["10.0.0.0/40".into()]
            }),
            "outbound_allow_networks",
        ),
    ] {
        let mut s = test_settings(&dir.path().join("db.sqlite"));
        tweak(&mut s);
        let err = match mcpgate::app::App::build(s).await {
            Ok(_) => panic!("{needle}: the server started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(needle), "{err}");
    }
    // And good ones start it.
    let server = HttpsServer::start().await;
    let _app = spawn_app_with(|s| server.trust(s)).await;
}
