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

pub(crate) async fn disabling_a_user_ends_everything_of_theirs_at_once_and_nothing_else(
    store: Arc<dyn Store>,
) {
    seed(store.as_ref()).await; // users u1, u2; clients c1, c2
    for (user, suffix) in [("u1", "1"), ("u2", "2")] {
        store
            .create_login_session(&mcpgate_core::model::LoginSession {
                session_hash: format!("s{suffix}"),
                user_id: user.into(),
                created_at: NOW,
                expires_at: NOW + 3600,
            })
            .await
            .unwrap();
        issue(
            store.as_ref(),
            &access(&format!("a{suffix}"), &format!("g{suffix}"), "c1", user),
            Some(&refresh(
                &format!("r{suffix}"),
                &format!("g{suffix}"),
                "c1",
                user,
            )),
        )
        .await;
        store
            .create_code(&crate::store_contract::code(
                &format!("k{suffix}"),
                &format!("gk{suffix}"),
                "c2",
                user,
            ))
            .await
            .unwrap();
    }
    assert!(store.disabled_user_ids().await.unwrap().is_empty());
    assert!(store.set_user_disabled("u1", Some(NOW + 10)).await.unwrap());
    assert!(!store.set_user_disabled("nobody", Some(NOW)).await.unwrap());
    assert_eq!(
        store.disabled_user_ids().await.unwrap(),
        vec!["u1".to_string()]
    );

    // u1: no session, no live token, no usable code.
    assert!(store.login_session("s1", NOW).await.unwrap().is_none());
    assert_eq!(
        store.access_token("a1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 10)
    );
    assert_eq!(
        store.refresh_token("r1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 10)
    );
    assert_eq!(
        store.code("k1").await.unwrap().unwrap().used_at,
        Some(NOW + 10)
    );
    assert!(
        store
            .live_grants(Some("u1"), None, NOW + 20)
            .await
            .unwrap()
            .is_empty()
    );
    // u2: untouched.
    assert!(store.login_session("s2", NOW).await.unwrap().is_some());
    assert_eq!(
        store.access_token("a2").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(
        store.refresh_token("r2").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(store.code("k2").await.unwrap().unwrap().used_at, None);

    // Enabling clears the flag; nothing revoked comes back.
    assert!(store.set_user_disabled("u1", None).await.unwrap());
    assert!(store.disabled_user_ids().await.unwrap().is_empty());
    assert_eq!(
        store.access_token("a1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 10)
    );
    assert!(store.user_by_id("u1").await.unwrap().is_some());
}
