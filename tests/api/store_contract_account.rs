//! Store contract of the account page (`/account`): `grants_of_user` lists
//! the user's grants that still hold a live token, one per grant, with the
//! client, scope, first and last issue; never another user's; revoked,
//! expired and fully rotated grants are left out. Instantiated for every
//! backend by `store_contract_tests!`.

use std::sync::Arc;

use mcpgate::store::Store;

use crate::store_contract::{NOW, access, cid, consent, issue, refresh, seed};

pub(crate) async fn a_users_grants_are_listed_per_grant_and_only_while_live(store: Arc<dyn Store>) {
    seed(&*store).await;
    // alice (u1): g1 with c1, refreshed once; g2 with c2; g3 with c1, revoked.
    issue(
        &*store,
        &access("a1", "g1", "c1", "u1"),
        Some(&refresh("r1", "g1", "c1", "u1")),
    )
    .await;
    let mut a2 = access("a2", "g1", "c1", "u1");
    a2.created_at = NOW + 50;
    let mut r2 = refresh("r2", "g1", "c1", "u1");
    r2.created_at = NOW + 50;
    assert!(
        store
            .rotate_refresh_token("r1", NOW + 50, &a2, &r2)
            .await
            .unwrap()
    );
    let mut only_access = access("a3", "g2", "c2", "u1");
    only_access.created_at = NOW + 10;
    issue(&*store, &only_access, None).await;
    issue(
        &*store,
        &access("a4", "g3", "c1", "u1"),
        Some(&refresh("r4", "g3", "c1", "u1")),
    )
    .await;
    store.revoke_grant("g3", NOW + 60).await.unwrap();
    // bob (u2): g9 with c1.
    issue(
        &*store,
        &access("a9", "g9", "c1", "u2"),
        Some(&refresh("r9", "g9", "c1", "u2")),
    )
    .await;

    let alice = store.grants_of_user("u1", NOW + 100).await.unwrap();
    let ids: Vec<_> = alice.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids, ["g1", "g2"], "newest use first, g3 revoked: {alice:?}");
    assert_eq!(alice[0].client_id, "c1");
    assert_eq!(alice[0].scope, "mcp offline_access");
    assert_eq!(
        (alice[0].granted_at, alice[0].last_used_at),
        (NOW, NOW + 50)
    );
    assert_eq!(alice[1].client_id, "c2");
    assert_eq!(
        (alice[1].granted_at, alice[1].last_used_at),
        (NOW + 10, NOW + 10)
    );

    let bob = store.grants_of_user("u2", NOW + 100).await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].grant_id, "g9");
    assert!(
        store
            .grants_of_user("nobody", NOW)
            .await
            .unwrap()
            .is_empty()
    );

    // Once g2's only access token expires (an hour), g2 is gone; g1 lives
    // on through its refresh token.
    let later = store.grants_of_user("u1", NOW + 2 * 3600).await.unwrap();
    let ids: Vec<_> = later.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids, ["g1"]);
}

pub(crate) async fn forgetting_consents_deletes_only_that_users_consents_to_that_client(
    store: Arc<dyn Store>,
) {
    seed(&*store).await;
    for (u, c, redirect) in [
        ("u1", "c1", "https://a.example/cb"),
        ("u1", "c1", "https://b.example/cb"),
        ("u1", "c2", "https://a.example/cb"),
        ("u2", "c1", "https://a.example/cb"),
    ] {
        let mut k = consent(u, c, "mcp");
        k.redirect_uri = redirect.into();
        store.save_consent(&k).await.unwrap();
    }
    assert_eq!(store.forget_consents("u1", "c1").await.unwrap(), 2);
    assert_eq!(store.forget_consents("u1", "c1").await.unwrap(), 0);
    let left = |u: &'static str, c: &'static str| {
        let store = store.clone();
        async move {
            store
                .consent(u, &cid(c), "https://a.example/cb")
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(!left("u1", "c1").await);
    assert!(left("u1", "c2").await);
    assert!(left("u2", "c1").await);
}
