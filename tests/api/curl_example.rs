//! The runnable curl example in `docs/examples/oauth-flow.sh` works
//! against a real server (so the documentation stays true).

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_curl_flow_registers_signs_in_exchanges_and_refreshes() {
    let app = spawn_app().await;
    app.add_user("curl-user").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/oauth-flow.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&app.urls.issuer)
        .env("MCPGATE_USER", "curl-user")
        .env("MCPGATE_PASSWORD", PASSWORD)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "script failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("OK: use it as  Authorization: Bearer mcp_"),
        "{stdout}"
    );
    // The client it registered is stored and was used.
    let clients = app.store.list_clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert!(clients[0].last_used_at.is_some());
}
