//! Store contract of groups (`Store::*group*`), run on both backends by
//! `store_contract` (which lists these functions in its macro).

use std::sync::Arc;

use mcpgate::store::Store;
use mcpgate_core::model::{GroupMembership, GroupSource, GroupSummary, User};

const NOW: i64 = 1_700_000_000;

fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        username: mcpgate_core::domain::Username::parse(name).unwrap(),
        password_hash: None,
        created_at: NOW,
    }
}

fn member(group: &str, source: GroupSource) -> GroupMembership {
    GroupMembership {
        group: group.into(),
        source,
    }
}

fn idp() -> GroupSource {
    GroupSource::Provider("corp".into())
}

pub(crate) async fn group_memberships_are_added_once_per_source_and_removed(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    assert!(
        store
            .add_group_member("u1", "ops", &GroupSource::Local, NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_group_member("u1", "ops", &GroupSource::Local, NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_group_member("u1", "ops", &idp(), NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_group_member("u1", "dev", &GroupSource::Local, NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_group_member("u2", "ops", &GroupSource::Local, NOW + 5)
            .await
            .unwrap()
    );
    assert_eq!(
        store.groups_of_user("u1").await.unwrap(),
        vec![
            member("dev", GroupSource::Local),
            member("ops", GroupSource::Local),
            member("ops", idp()),
        ]
    );
    assert_eq!(
        store.list_groups().await.unwrap(),
        vec![
            GroupSummary {
                name: "dev".into(),
                members: 1,
                created_at: NOW
            },
            GroupSummary {
                name: "ops".into(),
                members: 2,
                created_at: NOW
            },
        ]
    );
    // Removing one source keeps the other; the group stays when empty.
    assert!(
        store
            .remove_group_member("u1", "ops", &GroupSource::Local)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_group_member("u1", "ops", &GroupSource::Local)
            .await
            .unwrap()
    );
    assert_eq!(
        store.groups_of_user("u1").await.unwrap(),
        vec![member("dev", GroupSource::Local), member("ops", idp())]
    );
    assert!(
        store
            .remove_group_member("u1", "dev", &GroupSource::Local)
            .await
            .unwrap()
    );
    let groups = store.list_groups().await.unwrap();
    assert_eq!(
        groups[0],
        GroupSummary {
            name: "dev".into(),
            members: 0,
            created_at: NOW
        }
    );
    assert!(store.groups_of_user("u9").await.unwrap().is_empty());
    // Another user's memberships were never touched.
    assert_eq!(
        store.groups_of_user("u2").await.unwrap(),
        vec![member("ops", GroupSource::Local)]
    );
}

pub(crate) async fn provider_groups_are_replaced_and_local_ones_kept(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    store
        .add_group_member("u1", "ops", &GroupSource::Local, NOW)
        .await
        .unwrap();
    store
        .replace_source_groups("u1", &idp(), &["eng".into(), "ops".into()], NOW)
        .await
        .unwrap();
    store
        .replace_source_groups("u2", &idp(), &["eng".into()], NOW)
        .await
        .unwrap();
    assert_eq!(
        store.groups_of_user("u1").await.unwrap(),
        vec![
            member("eng", idp()),
            member("ops", GroupSource::Local),
            member("ops", idp())
        ]
    );
    // The next sign-in says only "sales".
    store
        .replace_source_groups("u1", &idp(), &["sales".into()], NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        store.groups_of_user("u1").await.unwrap(),
        vec![member("ops", GroupSource::Local), member("sales", idp())]
    );
    // Another provider's and another user's memberships stay.
    let other = GroupSource::Provider("other".into());
    store
        .replace_source_groups("u1", &other, &["x".into()], NOW)
        .await
        .unwrap();
    store
        .replace_source_groups("u1", &idp(), &[], NOW)
        .await
        .unwrap();
    assert_eq!(
        store.groups_of_user("u1").await.unwrap(),
        vec![member("ops", GroupSource::Local), member("x", other)]
    );
    assert_eq!(
        store.groups_of_user("u2").await.unwrap(),
        vec![member("eng", idp())]
    );
}

pub(crate) async fn memberships_go_with_their_user(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    for u in ["u1", "u2"] {
        store
            .add_group_member(u, "ops", &GroupSource::Local, NOW)
            .await
            .unwrap();
    }
    assert!(store.delete_user("u1").await.unwrap());
    assert!(store.groups_of_user("u1").await.unwrap().is_empty());
    assert_eq!(store.list_groups().await.unwrap()[0].members, 1);
}
