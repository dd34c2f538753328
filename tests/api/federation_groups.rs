//! Groups from an identity provider's claim (`groups_claim`,
//! `groups_prefix`), refreshed at each federated sign-in, decide
//! `[[policy]]` rules; local groups stay (docs/policy.md).

use mcpgate_core::model::{GroupMembership, GroupSource};
use serde_json::{Value, json};

use crate::federation_fixture::{Mode, default_account};
use crate::federation_support::{Fed, PROVIDER_ID, fed_with};
use crate::mcp_support::McpClient;

async fn tools(f: &Fed, token: &str) -> Vec<String> {
    let mut c = McpClient::new(&f.app, token);
    c.initialize("2025-11-25").await;
    let m = c.request("tools/list", json!({})).await;
    let mut names: Vec<String> = m["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

async fn sign_in_with_groups(f: &Fed, groups: Value) -> String {
    let mut account = default_account();
    account["groups"] = groups;
    f.idp.set_account(account);
    let redirect = f.sign_in().await;
    f.exchange(&redirect).await
}

#[tokio::test]
async fn provider_groups_decide_the_policy_and_are_replaced_at_each_sign_in() {
    for mode in [Mode::Oidc, Mode::OAuth2] {
        // Groups no user has yet are accepted: a provider maps groups.
        let f = fed_with(
            mode,
            json!({"groups_claim": "groups", "groups_prefix": "idp:"}),
            |s| {
                s.default_policy = mcpgate_core::policy::DefaultPolicy::Deny;
                s.policy = serde_json::from_value(json!([
                    {"effect": "allow", "tools": ["whoami"], "groups": ["idp:staff"]},
                    {"effect": "allow", "tools": ["echo"], "groups": ["ops"]},
                ]))
                .unwrap();
            },
        )
        .await;
        let token = sign_in_with_groups(&f, json!(["staff", "x"])).await;
        assert_eq!(tools(&f, &token).await, ["whoami"], "{mode:?}");
        let user = f
            .app
            .store
            .identity(PROVIDER_ID, "4242")
            .await
            .unwrap()
            .unwrap()
            .user_id;
        let source = GroupSource::Provider(PROVIDER_ID.to_string());
        assert_eq!(
            f.app.store.groups_of_user(&user).await.unwrap(),
            vec![
                GroupMembership {
                    group: "idp:staff".into(),
                    source: source.clone()
                },
                GroupMembership {
                    group: "idp:x".into(),
                    source: source.clone()
                },
            ]
        );
        // A local group, then a sign-in whose claim no longer says staff.
        f.app
            .store
            .add_group_member(&user, "ops", &GroupSource::Local, 0)
            .await
            .unwrap();
        let token2 = sign_in_with_groups(&f, json!("contractors")).await;
        assert_eq!(tools(&f, &token2).await, ["echo"], "{mode:?}");
        // The earlier token loses the group too (the sign-in dropped the
        // cached groups).
        assert_eq!(tools(&f, &token).await, ["echo"], "{mode:?}");
        assert_eq!(
            f.app.store.groups_of_user(&user).await.unwrap(),
            vec![
                GroupMembership {
                    group: "idp:contractors".into(),
                    source
                },
                GroupMembership {
                    group: "ops".into(),
                    source: GroupSource::Local
                },
            ]
        );
    }
}
