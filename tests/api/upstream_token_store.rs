//! Store contracts of per-user OAuth to upstream MCP servers
//! (`mcpgate::upstream_oauth`): the vault's key ids, sealed tokens per
//! (user, upstream) with compare-and-swap and the refresh lease, clients
//! registered at upstream authorization servers, and one-time connect
//! flows. Instantiated for every backend by `store_contract_tests!`.

use std::sync::Arc;

use mcpgate::store::{
    Store, StoreError, UpstreamClientRecord, UpstreamConnectRecord, UpstreamTokenRecord,
};

use crate::store_contract::{NOW, user};

async fn users(store: &dyn Store) {
    for (id, name) in [("ua", "alice"), ("ub", "bob")] {
        store.create_user(&user(id, name)).await.unwrap();
    }
}

fn token(user_id: &str, upstream: &str, version: i64) -> UpstreamTokenRecord {
    UpstreamTokenRecord {
        user_id: user_id.into(),
        upstream: upstream.into(),
        url: Some(format!("https://{upstream}.example/mcp")),
        kid: "k1".into(),
        sealed: format!("sealed-{user_id}-{upstream}-{version}"),
        expires_at: Some(NOW + 3600),
        scope: Some("mcp".into()),
        account: Some(format!("{user_id}@upstream")),
        version,
        created_at: NOW,
        updated_at: NOW,
        last_used_at: None,
    }
}

pub async fn vault_key_ids_are_listed_newest_first_and_unique(store: Arc<dyn Store>) {
    assert!(store.vault_keys().await.unwrap().is_empty());
    store.add_vault_key("old", NOW).await.unwrap();
    store.add_vault_key("new", NOW + 10).await.unwrap();
    assert_eq!(
        store.vault_keys().await.unwrap(),
        [("new".to_string(), NOW + 10), ("old".to_string(), NOW)]
    );
    assert!(matches!(
        store.add_vault_key("old", NOW + 20).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn upstream_tokens_are_kept_per_user_and_upstream(store: Arc<dyn Store>) {
    users(&*store).await;
    assert_eq!(store.upstream_token("ua", "gh").await.unwrap(), None);
    for t in [
        token("ua", "gh", 1),
        token("ua", "lin", 1),
        token("ub", "gh", 1),
    ] {
        assert!(store.put_upstream_token(&t, None).await.unwrap());
    }
    assert_eq!(
        store.upstream_token("ua", "gh").await.unwrap(),
        Some(token("ua", "gh", 1))
    );
    assert_eq!(
        store.upstream_token("ub", "gh").await.unwrap(),
        Some(token("ub", "gh", 1))
    );
    let mine = store.upstream_tokens_of_user("ua").await.unwrap();
    assert_eq!(mine, [token("ua", "gh", 1), token("ua", "lin", 1)]);
    assert_eq!(store.all_upstream_tokens().await.unwrap().len(), 3);
    // A new connection replaces the row whatever its version.
    // (Its URL too: a connection to the upstream at another URL.)
    let mut again = token("ua", "gh", 7);
    again.account = Some("other-account".into());
    again.url = Some("https://moved.example/mcp".into());
    assert!(store.put_upstream_token(&again, None).await.unwrap());
    assert_eq!(store.upstream_token("ua", "gh").await.unwrap(), Some(again));
    store
        .touch_upstream_token("ua", "gh", NOW + 5)
        .await
        .unwrap();
    assert_eq!(
        store
            .upstream_token("ua", "gh")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(NOW + 5)
    );
    assert!(store.delete_upstream_token("ua", "gh").await.unwrap());
    assert!(!store.delete_upstream_token("ua", "gh").await.unwrap());
    assert_eq!(store.upstream_token("ua", "gh").await.unwrap(), None);
    // Bob's row of the same upstream is untouched.
    assert_eq!(
        store.upstream_token("ub", "gh").await.unwrap(),
        Some(token("ub", "gh", 1))
    );
    // They go with their user.
    assert!(store.delete_user("ub").await.unwrap());
    assert_eq!(store.upstream_token("ub", "gh").await.unwrap(), None);
}

pub async fn an_upstream_token_is_replaced_only_from_the_version_read(store: Arc<dyn Store>) {
    users(&*store).await;
    store
        .put_upstream_token(&token("ua", "gh", 1), None)
        .await
        .unwrap();
    store
        .touch_upstream_token("ua", "gh", NOW + 1)
        .await
        .unwrap();
    let mut next = token("ua", "gh", 2);
    next.updated_at = NOW + 2;
    next.created_at = NOW + 99; // ignored: the row keeps its creation time
    next.url = Some("https://elsewhere.example/mcp".into()); // ignored likewise
    assert!(store.put_upstream_token(&next, Some(1)).await.unwrap());
    // A second writer that read version 1 loses and changes nothing.
    assert!(
        !store
            .put_upstream_token(&token("ua", "gh", 2), Some(1))
            .await
            .unwrap()
    );
    let stored = store.upstream_token("ua", "gh").await.unwrap().unwrap();
    assert_eq!(stored.sealed, next.sealed);
    assert_eq!(stored.version, 2);
    assert_eq!(stored.updated_at, NOW + 2);
    assert_eq!(stored.created_at, NOW);
    assert_eq!(stored.last_used_at, Some(NOW + 1));
    // A refresh keeps the URL the connection was made for.
    assert_eq!(stored.url, token("ua", "gh", 1).url);
    // No row: nothing to compare with.
    assert!(
        !store
            .put_upstream_token(&token("ua", "lin", 2), Some(1))
            .await
            .unwrap()
    );
    assert_eq!(store.upstream_token("ua", "lin").await.unwrap(), None);
}

pub async fn one_refresh_lease_at_a_time_until_it_ends_or_the_row_changes(store: Arc<dyn Store>) {
    users(&*store).await;
    store
        .put_upstream_token(&token("ua", "gh", 1), None)
        .await
        .unwrap();
    assert!(
        store
            .lease_upstream_refresh("ua", "gh", 1, NOW, NOW + 30)
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_upstream_refresh("ua", "gh", 1, NOW + 29, NOW + 60)
            .await
            .unwrap()
    );
    // An old version never gets the lease.
    assert!(
        !store
            .lease_upstream_refresh("ua", "gh", 0, NOW + 31, NOW + 60)
            .await
            .unwrap()
    );
    // The lease ends at its time...
    assert!(
        store
            .lease_upstream_refresh("ua", "gh", 1, NOW + 30, NOW + 60)
            .await
            .unwrap()
    );
    // ... or when the row is written (and the new version is leasable).
    assert!(
        store
            .put_upstream_token(&token("ua", "gh", 2), Some(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_upstream_refresh("ua", "gh", 2, NOW + 31, NOW + 60)
            .await
            .unwrap()
    );
    // Another user's row is its own.
    store
        .put_upstream_token(&token("ub", "gh", 1), None)
        .await
        .unwrap();
    assert!(
        store
            .lease_upstream_refresh("ub", "gh", 1, NOW + 31, NOW + 60)
            .await
            .unwrap()
    );
}

pub async fn concurrent_refresh_leases_let_exactly_one_win(store: Arc<dyn Store>) {
    users(&*store).await;
    store
        .put_upstream_token(&token("ua", "gh", 1), None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                s.lease_upstream_refresh("ua", "gh", 1, NOW, NOW + 30)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn an_upstream_client_is_registered_once_per_issuer_and_redirect(store: Arc<dyn Store>) {
    let c = UpstreamClientRecord {
        issuer: "https://auth.example".into(),
        redirect_uri: "https://gate.example/oauth/upstream/callback".into(),
        client_id: "dcr-1".into(),
        kid: Some("k1".into()),
        sealed_secret: Some("sealed".into()),
        auth_method: "none".into(),
        created_at: NOW,
    };
    assert_eq!(
        store
            .upstream_client(&c.issuer, &c.redirect_uri)
            .await
            .unwrap(),
        None
    );
    store.create_upstream_client(&c).await.unwrap();
    assert!(matches!(
        store
            .create_upstream_client(&UpstreamClientRecord {
                client_id: "dcr-2".into(),
                ..c.clone()
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    let public = UpstreamClientRecord {
        issuer: "https://other.example".into(),
        client_id: "dcr-3".into(),
        kid: None,
        sealed_secret: None,
        auth_method: "private_key_jwt".into(),
        ..c.clone()
    };
    store.create_upstream_client(&public).await.unwrap();
    assert_eq!(
        store
            .upstream_client(&c.issuer, &c.redirect_uri)
            .await
            .unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store
            .upstream_client(&public.issuer, &public.redirect_uri)
            .await
            .unwrap(),
        Some(public)
    );
    assert!(
        store
            .delete_upstream_client(&c.issuer, &c.redirect_uri)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .upstream_client(&c.issuer, &c.redirect_uri)
            .await
            .unwrap(),
        None
    );
}

fn connect(key: &str, kind: &str, expires_at: i64) -> UpstreamConnectRecord {
    UpstreamConnectRecord {
        key_hash: key.into(),
        kind: kind.into(),
        user_id: "ua".into(),
        upstream: "gh".into(),
        browser_hash: (kind == "state").then(|| "browser".into()),
        details: Some(r#"{"scope":"mcp"}"#.into()),
        created_at: NOW,
        expires_at,
    }
}

pub async fn a_connect_flow_is_taken_once_and_only_as_its_kind(store: Arc<dyn Store>) {
    users(&*store).await;
    let link = connect("h-link", "link", NOW + 600);
    store.create_upstream_connect(&link).await.unwrap();
    assert!(matches!(
        store.create_upstream_connect(&link).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .take_upstream_connect("h-link", "state")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.take_upstream_connect("h-link", "link").await.unwrap(),
        Some(link)
    );
    assert_eq!(
        store.take_upstream_connect("h-link", "link").await.unwrap(),
        None
    );
}

pub async fn expired_connect_flows_are_purged(store: Arc<dyn Store>) {
    users(&*store).await;
    store
        .create_upstream_connect(&connect("old", "state", NOW - 1))
        .await
        .unwrap();
    store
        .create_upstream_connect(&connect("new", "state", NOW))
        .await
        .unwrap();
    store.purge_expired(NOW).await.unwrap();
    assert_eq!(
        store.take_upstream_connect("old", "state").await.unwrap(),
        None
    );
    assert!(
        store
            .take_upstream_connect("new", "state")
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn concurrent_takes_of_one_connect_flow_let_exactly_one_win(store: Arc<dyn Store>) {
    users(&*store).await;
    store
        .create_upstream_connect(&connect("race", "state", NOW + 600))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.take_upstream_connect("race", "state").await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
}
