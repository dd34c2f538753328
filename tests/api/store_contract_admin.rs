//! Store contract of the admin console (`Store::set_user_admin`,
//! `admin_user_ids`, `live_grants`), run on both backends by
//! `store_contract` (which lists these functions in its macro).

use std::sync::Arc;

use mcpgate::store::{Store, UserIdentity};

use crate::store_contract::{NOW, access, client, issue, refresh, scope, seed, user};

pub(crate) async fn the_first_user_is_admin_and_the_role_can_be_given_and_taken(
    store: Arc<dyn Store>,
) {
    assert!(store.admin_user_ids().await.unwrap().is_empty());
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    store.create_user(&user("u3", "carol")).await.unwrap();
    assert_eq!(
        store.admin_user_ids().await.unwrap(),
        vec!["u1".to_string()]
    );

    assert!(store.set_user_admin("u3", true).await.unwrap());
    assert!(store.set_user_admin("u1", false).await.unwrap());
    assert_eq!(
        store.admin_user_ids().await.unwrap(),
        vec!["u3".to_string()]
    );
    // Giving it twice is harmless; an unknown user is reported.
    assert!(store.set_user_admin("u3", true).await.unwrap());
    assert!(!store.set_user_admin("nobody", true).await.unwrap());
    assert_eq!(
        store.admin_user_ids().await.unwrap(),
        vec!["u3".to_string()]
    );
    // The role changed nothing else about the users.
    assert_eq!(store.list_users().await.unwrap().len(), 3);
}

pub(crate) async fn a_first_user_made_by_an_identity_provider_is_admin(store: Arc<dyn Store>) {
    let identity = UserIdentity {
        provider_id: "corp".into(),
        subject: "s-1".into(),
        user_id: "u9".into(),
        email: None,
        created_at: NOW,
    };
    store
        .create_federated_user(&user("u9", "dana"), &identity)
        .await
        .unwrap();
    store.create_user(&user("u1", "alice")).await.unwrap();
    assert_eq!(
        store.admin_user_ids().await.unwrap(),
        vec!["u9".to_string()]
    );
}

pub(crate) async fn live_grants_are_listed_per_user_and_client_until_revoked_or_expired(
    store: Arc<dyn Store>,
) {
    seed(store.as_ref()).await; // users u1, u2; clients c1, c2
    store.create_client(&client("c3")).await.unwrap();
    // u1 at c1 (grant g1: access + refresh), u1 at c2 (g2), u2 at c1 (g3).
    issue(
        store.as_ref(),
        &access("a1", "g1", "c1", "u1"),
        Some(&refresh("r1", "g1", "c1", "u1")),
    )
    .await;
    issue(store.as_ref(), &access("a2", "g2", "c2", "u1"), None).await;
    issue(
        store.as_ref(),
        &access("a3", "g3", "c1", "u2"),
        Some(&refresh("r3", "g3", "c1", "u2")),
    )
    .await;
    // g1 is used again later with a narrower scope (a refresh).
    let mut a1b = access("a1b", "g1", "c1", "u1");
    a1b.created_at = NOW + 100;
    a1b.scope = scope("mcp");
    let mut r1b = refresh("r1b", "g1", "c1", "u1");
    r1b.created_at = NOW + 100;
    r1b.scope = scope("mcp");
    assert!(
        store
            .rotate_refresh_token("r1", NOW + 100, &a1b, &r1b)
            .await
            .unwrap()
    );

    let now = NOW + 200;
    let ids = |gs: Vec<mcpgate::store::GrantSummary>| {
        gs.into_iter().map(|g| g.grant_id).collect::<Vec<_>>()
    };
    let u1 = store.live_grants(Some("u1"), None, now).await.unwrap();
    assert_eq!(ids(u1.clone()), vec!["g1", "g2"]);
    let g1 = &u1[0];
    assert_eq!(g1.client_id, "c1");
    assert_eq!(g1.user_id.as_deref(), Some("u1"));
    assert_eq!(g1.scope, "mcp");
    assert_eq!(g1.created_at, NOW);
    assert_eq!(g1.last_used_at, NOW + 100);
    // a1, a1b, r1b live; r1 rotated but neither revoked nor expired.
    assert_eq!(g1.live_tokens, 4);
    assert_eq!(
        ids(store.live_grants(Some("u2"), None, now).await.unwrap()),
        vec!["g3"]
    );
    assert_eq!(
        ids(store.live_grants(None, Some("c1"), now).await.unwrap()),
        vec!["g1", "g3"]
    );
    assert_eq!(
        ids(store
            .live_grants(Some("u1"), Some("c2"), now)
            .await
            .unwrap()),
        vec!["g2"]
    );
    assert!(
        store
            .live_grants(None, Some("c3"), now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.live_grants(None, None, now).await.unwrap().len(), 3);

    // A revoked grant is no longer live; the others stay.
    store.revoke_grant("g3", now).await.unwrap();
    assert!(
        store
            .live_grants(Some("u2"), None, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.live_grants(Some("u1"), None, now).await.unwrap()),
        vec!["g1", "g2"]
    );
    // g2 had only an access token (one hour): expired later.
    let later = NOW + 2 * 3600;
    assert_eq!(
        ids(store.live_grants(Some("u1"), None, later).await.unwrap()),
        vec!["g1"]
    );
}
