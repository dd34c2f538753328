//! A legacy HTTP+SSE upstream (MCP 2024-11-05): one mcpgate serves another
//! through the first one's `/sse` endpoint, with a static bearer token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};
use crate::mcp_support::{bearer, signed_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sse_upstream_is_served_with_its_own_credentials() {
    // The upstream: a plain mcpgate; its service account's token goes in the
    // gateway's configuration.
    let upstream = spawn_app().await;
    let (_, service_token) = signed_in(&upstream, "svc").await;
    let sse_url = upstream.url("/sse");
    let cfg: mcpgate::gateway::config::UpstreamConfig = toml::from_str(&format!(
        "name = \"legacy\"\nurl = \"{sse_url}\"\ntransport = \"sse\"\nheaders = {{ Authorization = \"Bearer {service_token}\" }}\n"
    ))
    .unwrap();
    let gateway = spawn_app_with(|s| s.upstream = vec![cfg]).await;
    let (_, alice) = signed_in(&gateway, "alice").await;

    let tools: Value = gateway
        .http
        .get(gateway.url("/tools"))
        .header("authorization", bearer(&alice))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"legacy_echo") && names.contains(&"legacy_whoami"),
        "{names:?}"
    );

    let r = gateway
        .http
        .post(gateway.url("/tools/legacy_echo"))
        .header("authorization", bearer(&alice))
        .json(&json!({"text": "through two gates"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "through two gates");

    // The upstream sees the gateway's own credentials, never alice's token.
    let v: Value = gateway
        .http
        .post(gateway.url("/tools/legacy_whoami"))
        .header("authorization", bearer(&alice))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["structuredContent"]["user"], "svc", "{v}");

    let health: Value = gateway
        .http
        .get(gateway.url("/healthz?details"))
        .bearer_auth(gateway.auth.operator_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["upstreams"][0]["transport"], "sse");
    assert_eq!(health["upstreams"][0]["state"], "running");
}

#[test]
fn transport_applies_to_url_upstreams_only() {
    let cfg: mcpgate::gateway::config::UpstreamConfig =
        toml::from_str("name = \"x\"\ncommand = \"server\"\ntransport = \"sse\"\n").unwrap();
    let e = mcpgate::gateway::config::validate(&[cfg]).unwrap_err();
    assert!(e.contains("transport applies to url upstreams only"), "{e}");
}
