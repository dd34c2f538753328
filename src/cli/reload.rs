//! `mcpgate reload`: asks the running server to read its configuration
//! again (`POST <base>/admin/reload` with the operator token, derived from
//! the server key in the database the settings name; see
//! `crate::http::reload`), and prints what changed.

use anyhow::{Context, bail};

use crate::config::Settings;

pub async fn run(url: Option<String>, s: &Settings) -> anyhow::Result<()> {
    let base = super::server_base(url, s);
    let Some(token) = super::operator_token(s).await else {
        bail!(
            "cannot read the server key from the database {}: run mcpgate reload with the server's configuration (or --database-url)",
            crate::app::database_label(&s.database_url)
        );
    };
    let http = crate::outbound::Outbound::request_response(
        crate::outbound::Redirects::Never,
        std::time::Duration::from_secs(30),
    )
    .settings(&super::outbound_settings(s)?)
    .build()
    .map_err(anyhow::Error::msg)?;
    let resp = http
        .post(format!("{base}/admin/reload"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("no mcpgate server is running at {base} (nothing to reload)"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.with_context(|| {
        format!("{base}/admin/reload did not answer with JSON (is this mcpgate, and as recent?)")
    })?;
    if !status.is_success() {
        bail!(
            "mcpgate at {base} did not reload: {} (the running configuration is kept)",
            body["error"].as_str().unwrap_or("unknown error")
        );
    }
    println!("mcpgate at {base}: configuration reloaded");
    let list = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let lines = [
        ("changed", "changed"),
        ("upstreams_added", "upstreams added"),
        ("upstreams_removed", "upstreams removed"),
        ("upstreams_changed", "upstreams restarted"),
        ("needs_restart", "needs a restart (running value kept)"),
    ];
    let mut any = false;
    for (key, label) in lines {
        let items = list(key);
        if !items.is_empty() {
            any = true;
            println!("  {label}: {}", items.join(", "));
        }
    }
    if !any {
        println!("  no setting changed");
    }
    if let Some(n) = body["sessions_notified"].as_u64().filter(|n| *n > 0) {
        println!("  open sessions told the lists changed: {n}");
    }
    Ok(())
}
