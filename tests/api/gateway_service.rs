//! The gateway and service identities (client credentials): a per-user
//! stdio upstream started for a service is told it serves a service, named
//! by its client, with no user variables; an upstream limited to users
//! (`allowed_users`) is never offered to a service, even one named like an
//! allowed user.

use std::collections::BTreeMap;

use serde_json::json;

use crate::gateway_support::{call_text, connect, fixture, process_environ, whoami_env};
use crate::helpers::spawn_app_with;
use crate::machine_support::service_token;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_per_user_upstream_started_for_a_service_is_told_it_is_a_service() {
    let app = spawn_app_with(|s| {
        s.upstream = vec![
            fixture("fx", "isolation = \"per_user\""),
            fixture(
                "only",
                "isolation = \"per_user\"\nallowed_users = [\"alice\"]",
            ),
        ];
    })
    .await;
    let (client_id, token) = service_token(&app, "alice").await;
    let (client, _events) = connect(&app, &token).await;

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"fx_whoami_env"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("only_")),
        "an allowed_users upstream is offered to a service: {names:?}"
    );

    let (user, id, pid) = whoami_env(&call_text(&client, "fx_whoami_env", json!({})).await);
    assert_eq!((user.as_str(), id.as_str()), ("", ""), "no user variables");
    let env: BTreeMap<String, String> = process_environ(pid)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(env["MCPGATE_SUBJECT_TYPE"], "service");
    assert_eq!(env["MCPGATE_CLIENT_ID"], client_id);
    assert_eq!(env["MCPGATE_CLIENT_NAME"], "alice");
    assert!(!env.contains_key("MCPGATE_USER_NAME") && !env.contains_key("MCPGATE_USER_ID"));
}
