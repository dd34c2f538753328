//! The audit log's store contracts (`Store::append_audit`, `search_audit`,
//! `prune_audit`), run on every backend by `store_contract_tests!`.

use std::sync::Arc;

use mcpgate::store::{AuditOrder, AuditQuery, AuditRecord, Store};

fn rec(
    at_ms: i64,
    kind: &str,
    user: Option<(&str, &str)>,
    client: &str,
    target: Option<&str>,
    outcome: &str,
) -> AuditRecord {
    AuditRecord {
        id: 0,
        at_ms,
        kind: kind.into(),
        outcome: outcome.into(),
        user_id: user.map(|u| u.0.to_string()),
        username: user.map(|u| u.1.to_string()),
        client_id: Some(client.into()),
        upstream: None,
        target: target.map(str::to_string),
        duration_ms: None,
        client_addr: None,
        instance: "test-instance".into(),
        detail: None,
    }
}

fn query() -> AuditQuery {
    AuditQuery::default()
}

/// The records without their ids (to compare with what was appended).
fn bare(records: &[AuditRecord]) -> Vec<AuditRecord> {
    records
        .iter()
        .map(|r| AuditRecord { id: 0, ..r.clone() })
        .collect()
}

const ALICE: (&str, &str) = ("u-alice", "alice");
const BOB: (&str, &str) = ("u-bob", "bob");

pub(crate) async fn audit_records_read_back_whole_in_append_order(store: Arc<dyn Store>) {
    let full = AuditRecord {
        id: 12345,
        at_ms: 1_700_000_000_123,
        kind: "tool.call".into(),
        outcome: "error".into(),
        user_id: Some("u-1".into()),
        username: Some("ålice".into()),
        client_id: Some("https://app.example.com/client.json".into()),
        upstream: Some("crm".into()),
        target: Some("crm_delete_contact".into()),
        duration_ms: Some(42),
        client_addr: Some("2001:db8::1".into()),
        instance: "host-1-abcd".into(),
        detail: Some(r#"{"reason":"upstream","quote":"a\"b"}"#.into()),
    };
    let first = vec![
        rec(1, "sign_in", Some(ALICE), "c1", None, "ok"),
        full.clone(),
        rec(3, "consent", Some(BOB), "c2", None, "denied"),
    ];
    let second = vec![rec(2, "token.issued", Some(ALICE), "c1", None, "ok")];
    store.append_audit(&first).await.unwrap();
    store.append_audit(&[]).await.unwrap();
    store.append_audit(&second).await.unwrap();

    let all = store.search_audit(&query()).await.unwrap();
    let mut expected = bare(&first);
    expected.extend(bare(&second));
    expected[1].id = 0;
    assert_eq!(
        bare(&all),
        expected,
        "every field, in append order (not time order)"
    );
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase in append order: {:?}",
        all.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert_ne!(all[1].id, 12345, "the store numbers records itself");

    let newest = store
        .search_audit(&AuditQuery {
            order: AuditOrder::NewestFirst,
            limit: 2,
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["token.issued", "consent"],
        "the last two, newest first"
    );
}

pub(crate) async fn audit_search_applies_every_filter_and_cursor(store: Arc<dyn Store>) {
    let records = vec![
        rec(1_000, "sign_in", Some(ALICE), "c1", None, "ok"),
        rec(2_000, "tool.call", Some(ALICE), "c1", Some("echo"), "ok"),
        rec(3_000, "tool.call", Some(BOB), "c2", Some("echo"), "denied"),
        rec(4_000, "tool.call", Some(BOB), "c1", Some("add"), "error"),
        rec(5_000, "token.issued", None, "svc", None, "ok"),
    ];
    store.append_audit(&records).await.unwrap();
    let ids = store.search_audit(&query()).await.unwrap();
    let id_of = |i: usize| ids[i].id;
    let found = |q: AuditQuery| {
        let store = store.clone();
        async move {
            store
                .search_audit(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.at_ms)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found(AuditQuery {
            user: Some("bob".into()),
            ..query()
        })
        .await,
        [3_000, 4_000],
        "by username"
    );
    assert_eq!(
        found(AuditQuery {
            user: Some("u-alice".into()),
            ..query()
        })
        .await,
        [1_000, 2_000],
        "by user id"
    );
    assert_eq!(
        found(AuditQuery {
            client_id: Some("c1".into()),
            ..query()
        })
        .await,
        [1_000, 2_000, 4_000]
    );
    assert_eq!(
        found(AuditQuery {
            target: Some("echo".into()),
            ..query()
        })
        .await,
        [2_000, 3_000]
    );
    assert_eq!(
        found(AuditQuery {
            kind: Some("tool.call".into()),
            ..query()
        })
        .await,
        [2_000, 3_000, 4_000]
    );
    assert_eq!(
        found(AuditQuery {
            outcome: Some("denied".into()),
            ..query()
        })
        .await,
        [3_000]
    );
    assert_eq!(
        found(AuditQuery {
            since_ms: Some(2_000),
            until_ms: Some(4_000),
            ..query()
        })
        .await,
        [2_000, 3_000],
        "since is inclusive, until exclusive"
    );
    assert_eq!(
        found(AuditQuery {
            user: Some("alice".into()),
            target: Some("echo".into()),
            ..query()
        })
        .await,
        [2_000],
        "filters combine"
    );
    assert_eq!(
        found(AuditQuery {
            after_id: Some(id_of(2)),
            ..query()
        })
        .await,
        [4_000, 5_000]
    );
    assert_eq!(
        found(AuditQuery {
            before_id: Some(id_of(3)),
            order: AuditOrder::NewestFirst,
            limit: 2,
            ..query()
        })
        .await,
        [3_000, 2_000],
        "a page backwards from a cursor"
    );
    assert_eq!(
        found(AuditQuery {
            limit: 2,
            ..query()
        })
        .await,
        [1_000, 2_000]
    );
    assert!(
        found(AuditQuery {
            user: Some("nobody".into()),
            ..query()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        found(AuditQuery {
            user: Some("alice' OR '1'='1".into()),
            ..query()
        })
        .await,
        Vec::<i64>::new(),
        "values are bound, never spliced into SQL"
    );
}

pub(crate) async fn pruning_audit_deletes_only_records_before_the_cutoff(store: Arc<dyn Store>) {
    let records: Vec<_> = (1..=5)
        .map(|i| rec(i * 1_000, "sign_in", Some(ALICE), "c1", None, "ok"))
        .collect();
    store.append_audit(&records).await.unwrap();
    assert_eq!(store.prune_audit(3_000).await.unwrap(), 2);
    let left: Vec<i64> = store
        .search_audit(&query())
        .await
        .unwrap()
        .iter()
        .map(|r| r.at_ms)
        .collect();
    assert_eq!(left, [3_000, 4_000, 5_000]);
    assert_eq!(store.prune_audit(3_000).await.unwrap(), 0);
    // Ids are not reused after a purge: a follower's cursor stays valid.
    let last = store
        .search_audit(&query())
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    store.prune_audit(i64::MAX).await.unwrap();
    store
        .append_audit(&[rec(6_000, "sign_in", Some(ALICE), "c1", None, "ok")])
        .await
        .unwrap();
    let after = store.search_audit(&query()).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].id > last, "{} > {last}", after[0].id);
}

pub(crate) async fn concurrent_audit_batches_all_land(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let batch: Vec<_> = (0..25)
                    .map(|i| {
                        rec(
                            t * 100 + i,
                            "tool.call",
                            Some(ALICE),
                            "c1",
                            Some("echo"),
                            "ok",
                        )
                    })
                    .collect();
                store.append_audit(&batch).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = store
        .search_audit(&AuditQuery {
            limit: 1_000,
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 16 * 25);
    let mut times: Vec<i64> = all.iter().map(|r| r.at_ms).collect();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), 16 * 25, "each record once");
}
