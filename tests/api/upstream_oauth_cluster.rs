//! Connect news across instances (`mcpgate::upstream_oauth::news`): two
//! gateways on one PostgreSQL, the users' MCP sessions on the second, the
//! browser's callback (and the disconnect) on the first. Only the
//! connecting user's sessions are told: the one that asked, and her other
//! one that never did.

use std::time::Duration;

use reqwest::StatusCode;

use crate::cluster_support::two_instances_with;
use crate::helpers::{PASSWORD, TestApp, form_action, hidden_inputs, location};
use crate::mcp_support::signed_in;
use crate::upstream_oauth::{connect_with_link, upstream};
use crate::upstream_oauth_elicitation::{
    any_message_within, completed_then_tools_changed, connect_by_elicitation, read_until, session,
    tools, url_capable,
};

/// Signs `user` in at `a`'s connections page and disconnects `b` there.
async fn disconnect_at(a: &TestApp, user: &str) {
    let browser = a.browser();
    let html = browser.get("/connections").await.text().await.unwrap();
    let r = browser.submit_login(&html, user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = browser.get(&location(&r)).await.text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("action".into(), "disconnect".into()));
    let r = browser.post_form(&form_action(&html), &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Disconnected from b."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_on_one_instance_reaches_only_that_users_session_on_the_other() {
    let b = upstream().await;
    let cfg = format!(
        "name = \"b\"\nurl = \"{}\"\nauth = \"oauth\"\nisolation = \"per_user\"\n",
        b.resource()
    );
    let (_db, one, two) = two_instances_with(|s| {
        s.upstream = vec![toml::from_str(&cfg).unwrap()];
    })
    .await;
    let (_, alice) = signed_in(&one, "alice").await;
    let (_, bob) = signed_in(&one, "bob").await;
    // Both sessions live on the second instance, both asked to connect.
    let (mut alice_c, mut alice_get) = session(&two, &alice, url_capable()).await;
    let (mut bob_c, mut bob_get) = session(&two, &bob, url_capable()).await;
    // And one more of alice's, which never asks: it is told too.
    let (_alice_other_c, mut alice_other_get) = session(&two, &alice, url_capable()).await;
    let (ask, _) = connect_by_elicitation(&mut alice_c, "accept").await;
    let (bob_ask, _) = connect_by_elicitation(&mut bob_c, "accept").await;
    assert_ne!(ask["elicitationId"], bob_ask["elicitationId"]);

    // Alice's browser completes the flow on the first instance.
    let link = ask["url"].as_str().unwrap();
    let (_, page) = connect_with_link(&one, &b, link, "alice", "alice-at-b").await;
    assert!(page.contains("Connected to b"), "{page}");

    // Her session on the second instance: the elicitation completes, then
    // the tools change.
    completed_then_tools_changed(&mut alice_get, &ask["elicitationId"]).await;
    assert!(tools(&mut alice_c).await.contains(&"b_whoami".to_string()));
    let other = read_until(&mut alice_other_get, |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
    assert!(
        other
            .iter()
            .all(|m| m["method"] != "notifications/elicitation/complete"),
        "{other:?}"
    );
    // Bob's session hears nothing, and still has only the connect tool.
    let heard = any_message_within(&mut bob_get, Duration::from_millis(1500)).await;
    assert_eq!(heard, None, "bob's session received alice's notification");
    let bob_tools = tools(&mut bob_c).await;
    assert!(
        bob_tools.contains(&"b_connect".to_string()),
        "{bob_tools:?}"
    );
    assert!(
        !bob_tools.contains(&"b_whoami".to_string()),
        "{bob_tools:?}"
    );

    // Disconnected on the first instance: her session on the second is
    // told the tools changed (the connect tool is back); Bob's is not.
    disconnect_at(&one, "alice").await;
    read_until(&mut alice_get, |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
    let after = tools(&mut alice_c).await;
    assert!(after.contains(&"b_connect".to_string()), "{after:?}");
    assert!(!after.contains(&"b_whoami".to_string()), "{after:?}");
    let heard = any_message_within(&mut bob_get, Duration::from_millis(1500)).await;
    assert_eq!(heard, None, "bob's session received alice's notification");
}
