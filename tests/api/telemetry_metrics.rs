//! `/metrics` (docs/observability.md): never served by accident, the token
//! on the main listener, the series a real OAuth flow and a tool call
//! through a gateway upstream move, and bounded label values.
//!
//! The registry is process-wide and tests run in parallel, so assertions
//! read series whose labels belong to this test (its own upstream name) or
//! compare before and after with "at least".

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::gateway_support::*;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::mcp_support::signed_in;

/// The value of the series printed exactly as `series` (name and labels), if any.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

fn value_or_zero(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics_addr.expect("metrics_listen is set");
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let text = r.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

#[tokio::test]
async fn the_main_listener_answers_404_without_the_setting() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("anything-at-all-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_main_listener_serves_metrics_only_with_the_token() {
    let token = "metrics-secret-0123456789abcdef";
    // SAFETY: a variable name no other test reads or writes.
    unsafe { std::env::set_var("MCPGATE_TEST_METRICS_TOKEN_MAIN", token) };
    let app = spawn_app_with(|s| {
        s.metrics_token_env = Some("MCPGATE_TEST_METRICS_TOKEN_MAIN".into());
    })
    .await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(reqwest::header::WWW_AUTHENTICATE));
    let body = r.text().await.unwrap();
    assert!(!body.contains("mcpgate_"), "{body}");
    for wrong in ["metrics-secret-0123456789abcdeX", "metrics-secret", ""] {
        let r = app
            .http
            .get(app.url("/metrics"))
            .header("authorization", format!("Bearer {wrong}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "token {wrong:?}");
    }
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        value_or_zero(
            &text,
            r#"mcpgate_http_requests_total{route="/healthz",method="GET",status="200"}"#
        ) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_token_variable_that_is_missing_or_short_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = crate::helpers::test_settings(&dir.path().join("m.db"));
    s.metrics_token_env = Some("MCPGATE_TEST_METRICS_TOKEN_UNSET".into());
    let Err(e) = mcpgate::app::App::build(s.clone()).await else {
        panic!("a missing token variable must stop the start");
    };
    assert!(e.to_string().contains("is not set"), "{e}");
    // SAFETY: a variable name no other test reads or writes.
    unsafe { std::env::set_var("MCPGATE_TEST_METRICS_TOKEN_SHORT", "short") };
    s.metrics_token_env = Some("MCPGATE_TEST_METRICS_TOKEN_SHORT".into());
    let Err(e) = mcpgate::app::App::build(s).await else {
        panic!("a short token must stop the start");
    };
    assert!(e.to_string().contains("at least 16"), "{e}");
}

#[tokio::test]
async fn an_oauth_flow_and_a_tool_call_move_their_series() {
    let app = spawn_app_with(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        s.upstream = vec![fixture("telemx", "")];
    })
    .await;
    wait_for_upstream(&app, "telemx", WAIT, |u| u["state"] == "running").await;
    let before = scrape(&app).await;
    let (_, token) = signed_in(&app, "metrics-user-qz").await;
    let (client, _events) = connect(&app, &token).await;
    assert_eq!(
        call_text(&client, "telemx_echo", json!({"text": "hi"})).await,
        "hi"
    );
    let unknown = app
        .http
        .get(app.url("/no/such/path-k7x9"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let after = scrape(&app).await;

    // The tool call, labelled with the catalog name and this test's upstream.
    assert_eq!(
        value(
            &after,
            r#"mcpgate_mcp_requests_total{method="tools/call",tool="telemx_echo",upstream="telemx",outcome="ok"}"#
        ),
        Some(1.0),
        "{after}"
    );
    assert!(
        value_or_zero(
            &after,
            r#"mcpgate_mcp_request_duration_seconds_count{method="tools/call",upstream="telemx"}"#
        ) >= 1.0
    );
    // Relayed to the upstream.
    assert!(
        value_or_zero(
            &after,
            r#"mcpgate_upstream_request_duration_seconds_count{upstream="telemx",outcome="ok"}"#
        ) >= 1.0,
        "{after}"
    );
    assert_eq!(
        value(
            &after,
            r#"mcpgate_upstream_state{upstream="telemx",state="running"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            r#"mcpgate_upstream_state{upstream="telemx",state="restarting"}"#
        ),
        Some(0.0)
    );
    // The grant, its HTTP request (by route template) and its store writes.
    let grant =
        r#"mcpgate_oauth_token_requests_total{grant_type="authorization_code",outcome="ok"}"#;
    assert!(value_or_zero(&after, grant) >= value_or_zero(&before, grant) + 1.0);
    let http = r#"mcpgate_http_requests_total{route="/v1/oauth/token",method="POST",status="200"}"#;
    assert!(value_or_zero(&after, http) >= value_or_zero(&before, http) + 1.0);
    let store = r#"mcpgate_store_operation_duration_seconds_count{operation="redeem_code"}"#;
    assert!(value_or_zero(&after, store) >= value_or_zero(&before, store) + 1.0);
    let unmatched = r#"mcpgate_http_requests_total{route="unmatched",method="GET",status="404"}"#;
    assert!(value_or_zero(&after, unmatched) >= value_or_zero(&before, unmatched) + 1.0);
    // The client's session is open.
    assert!(value_or_zero(&after, "mcpgate_mcp_sessions") >= 1.0);
    // No user, token or raw path anywhere.
    assert!(!after.contains("metrics-user-qz"));
    assert!(!after.contains(&token));
    assert!(!after.contains("path-k7x9"));
    // The MCP endpoint's route is the template, not a path with a session.
    assert!(after.contains(r#"route="/v1/ai/mcp""#), "{after}");
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_thousand_unknown_tool_names_add_no_label_values() {
    let app = spawn_app_with(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        s.upstream = vec![fixture("telemy", "")];
    })
    .await;
    wait_for_upstream(&app, "telemy", WAIT, |u| u["state"] == "running").await;
    let (_, token) = signed_in(&app, "metrics-card").await;
    let (client, _events) = connect(&app, &token).await;
    let before = scrape(&app).await;
    let series = r#"mcpgate_mcp_requests_total{method="tools/call",tool="other",upstream="none",outcome="unknown_tool"}"#;
    for i in 0..1000 {
        // Half with the upstream's prefix, half without.
        let name = if i % 2 == 0 {
            format!("telemy_nope_{i}")
        } else {
            format!("made-up-{i}")
        };
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client.call_tool(tool_call(&name, json!({}))),
        )
        .await
        .expect("in time");
        assert!(r.is_err(), "{name} is unknown");
    }
    let after = scrape(&app).await;
    assert!(
        value_or_zero(&after, series) >= value_or_zero(&before, series) + 1000.0,
        "{after}"
    );
    for i in [0, 1, 500, 999] {
        assert!(!after.contains(&format!("nope_{i}\"")));
        assert!(!after.contains(&format!("made-up-{i}\"")));
    }
    let tool_values = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("mcpgate_mcp_requests_total{"))
            .filter_map(|l| {
                l.split("tool=\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(String::from)
            })
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    // Other tests running at the same time may add a few real tool names.
    assert!(
        tool_values(&after) < tool_values(&before) + 50,
        "{} -> {}",
        tool_values(&before),
        tool_values(&after)
    );
    client.cancel().await.ok();
}

/// A refresh token request (public client).
async fn refresh(app: &TestApp, rt: &str, client_id: &str) -> reqwest::Response {
    app.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", client_id),
    ])
    .await
}

#[tokio::test]
async fn refresh_grants_and_a_reuse_detection_are_counted() {
    let app = spawn_app_with(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        s.refresh_grace_period = Duration::ZERO;
    })
    .await;
    app.add_user("metrics-refresh").await;
    let (client_id, t) = app.full_flow("metrics-refresh").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let before = scrape(&app).await;
    assert_eq!(
        refresh(&app, &rt1, &client_id).await.status(),
        StatusCode::OK
    );
    // The rotated token again: reuse, the grant is revoked.
    assert_eq!(
        refresh(&app, &rt1, &client_id).await.status(),
        StatusCode::BAD_REQUEST
    );
    let after = scrape(&app).await;
    let ok = r#"mcpgate_oauth_token_requests_total{grant_type="refresh_token",outcome="ok"}"#;
    assert!(value_or_zero(&after, ok) >= value_or_zero(&before, ok) + 1.0);
    let bad =
        r#"mcpgate_oauth_token_requests_total{grant_type="refresh_token",outcome="invalid_grant"}"#;
    assert!(value_or_zero(&after, bad) >= value_or_zero(&before, bad) + 1.0);
    let reuse = "mcpgate_oauth_refresh_token_reuse_total";
    assert!(
        value_or_zero(&after, reuse) >= value_or_zero(&before, reuse) + 1.0,
        "{after}"
    );
    let store =
        r#"mcpgate_store_operation_duration_seconds_count{operation="rotate_refresh_token"}"#;
    assert!(value_or_zero(&after, store) >= value_or_zero(&before, store) + 1.0);
}

#[tokio::test]
async fn an_upstream_restart_is_counted() {
    let app = spawn_app_with(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        s.upstream = vec![fixture("telemz", "")];
    })
    .await;
    wait_for_upstream(&app, "telemz", WAIT, |u| u["state"] == "running").await;
    let (_, token) = signed_in(&app, "metrics-restart").await;
    let (client, _events) = connect(&app, &token).await;
    let restarts = r#"mcpgate_upstream_restarts_total{upstream="telemz"}"#;
    assert_eq!(value(&scrape(&app).await, restarts), None);
    assert!(call(&client, "telemz_crash", json!({})).await.is_err());
    wait_for_upstream(&app, "telemz", WAIT, |u| {
        u["state"] == "running" && u["restarts"].as_u64() >= Some(1)
    })
    .await;
    let after = scrape(&app).await;
    assert!(value_or_zero(&after, restarts) >= 1.0, "{after}");
    assert_eq!(
        value(
            &after,
            r#"mcpgate_upstream_state{upstream="telemz",state="running"}"#
        ),
        Some(1.0)
    );
    // The failed call is an error of that upstream, by its catalog name.
    assert_eq!(
        value(
            &after,
            r#"mcpgate_mcp_requests_total{method="tools/call",tool="telemz_crash",upstream="telemz",outcome="error"}"#
        ),
        Some(1.0),
        "{after}"
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn identity_provider_sign_ins_are_counted_by_outcome() {
    use crate::federation_fixture::Mode;
    let f = crate::federation_support::fed_with(Mode::Oidc, json!({}), |s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let before = scrape(&f.app).await;
    f.sign_in().await;
    // A callback that matches no sign-in started here.
    let r = f
        .app
        .http
        .get(f.app.url("/oauth/callback?state=forged&code=x"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let after = scrape(&f.app).await;
    for outcome in ["ok", "error"] {
        let series = format!(r#"mcpgate_idp_signins_total{{outcome="{outcome}"}}"#);
        assert!(
            value_or_zero(&after, &series) >= value_or_zero(&before, &series) + 1.0,
            "{series}: {after}"
        );
    }
}
