//! Shutting mcpgate down stops its upstream child processes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway_support::FIXTURE;
use crate::helpers::spawn_app_with;
use crate::mcp_support::{bearer, signed_in};

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) counts as stopped.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_shared_and_per_user_upstream_processes() {
    let shared: mcpgate::gateway::config::UpstreamConfig =
        toml::from_str(&format!("name = \"s\"\ncommand = \"{FIXTURE}\"\n")).unwrap();
    let mine: mcpgate::gateway::config::UpstreamConfig = toml::from_str(&format!(
        "name = \"m\"\ncommand = \"{FIXTURE}\"\nisolation = \"per_user\"\n"
    ))
    .unwrap();
    let mut app = spawn_app_with(|s| s.upstream = vec![shared, mine]).await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut pids = Vec::new();
    for tool in ["s_whoami_env", "m_whoami_env"] {
        let r = app
            .http
            .post(app.url(&format!("/tools/{tool}")))
            .header("authorization", bearer(&token))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        let text = v["content"][0]["text"].as_str().unwrap().to_string();
        let pid: u32 = text.rsplit("pid=").next().unwrap().parse().unwrap();
        assert!(alive(pid), "{tool} runs in process {pid}");
        pids.push(pid);
    }
    app.stop().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for p in pids {
        assert!(!alive(p), "upstream process {p} still runs after shutdown");
    }
}
