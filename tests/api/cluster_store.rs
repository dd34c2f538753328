//! Store contracts of the state instances share (`mcpgate::cluster`):
//! Streamable HTTP sessions, legacy SSE sessions and their queued
//! messages. Instantiated for every backend by `store_contract_tests!`.

use std::sync::Arc;

use mcpgate::store::{MailRecord, SseSessionRecord, Store, StoreError};

const T: i64 = 1_700_000_000;

fn sse(id: &str, user: &str, instance: &str, at: i64) -> SseSessionRecord {
    SseSessionRecord {
        session_id: id.into(),
        user_id: user.into(),
        instance_id: instance.into(),
        created_at: at,
        seen_at: at,
    }
}

pub async fn a_shared_mcp_session_keeps_its_first_owner_and_its_state_in_either_order(
    store: Arc<dyn Store>,
) {
    assert_eq!(store.mcp_session("s-unknown").await.unwrap(), None);

    // Owner first, then state.
    store.bind_mcp_session("s1", "alice", T).await.unwrap();
    let r = store.mcp_session("s1").await.unwrap().unwrap();
    assert_eq!(
        (r.user_id.as_deref(), r.state.as_deref()),
        (Some("alice"), None)
    );
    store
        .save_mcp_session_state("s1", "{\"v\":1}", T + 1)
        .await
        .unwrap();
    // Another user cannot take the session over.
    store
        .bind_mcp_session("s1", "mallory", T + 2)
        .await
        .unwrap();
    let r = store.mcp_session("s1").await.unwrap().unwrap();
    assert_eq!(r.user_id.as_deref(), Some("alice"));
    assert_eq!(r.state.as_deref(), Some("{\"v\":1}"));
    assert_eq!(r.created_at, T);

    // State first, then owner.
    store
        .save_mcp_session_state("s2", "{\"v\":2}", T)
        .await
        .unwrap();
    let r = store.mcp_session("s2").await.unwrap().unwrap();
    assert_eq!((r.user_id, r.state.as_deref()), (None, Some("{\"v\":2}")));
    store.bind_mcp_session("s2", "bob", T + 1).await.unwrap();
    let r = store.mcp_session("s2").await.unwrap().unwrap();
    assert_eq!(r.user_id.as_deref(), Some("bob"));
    assert_eq!(r.state.as_deref(), Some("{\"v\":2}"));

    // Touching moves seen_at forward only.
    store.touch_mcp_session("s2", T + 100).await.unwrap();
    assert_eq!(
        store.mcp_session("s2").await.unwrap().unwrap().seen_at,
        T + 100
    );
    store.touch_mcp_session("s2", T + 50).await.unwrap();
    assert_eq!(
        store.mcp_session("s2").await.unwrap().unwrap().seen_at,
        T + 100
    );

    store.delete_mcp_session("s2").await.unwrap();
    assert_eq!(store.mcp_session("s2").await.unwrap(), None);
    assert!(store.mcp_session("s1").await.unwrap().is_some());
}

pub async fn sse_messages_queue_in_order_for_an_existing_session_only(store: Arc<dyn Store>) {
    store
        .create_sse_session(&sse("q1", "alice", "i-a", T))
        .await
        .unwrap();
    store
        .create_sse_session(&sse("q2", "bob", "i-b", T))
        .await
        .unwrap();
    let err = store
        .create_sse_session(&sse("q1", "mallory", "i-b", T))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.sse_session("q1").await.unwrap(),
        Some(sse("q1", "alice", "i-a", T))
    );
    assert_eq!(store.sse_session("q-unknown").await.unwrap(), None);

    assert_eq!(
        store
            .push_sse_message("q-unknown", "{}", "{}", T)
            .await
            .unwrap(),
        None
    );
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = format!("{{\"n\":{i}}}");
        ids.push(
            store
                .push_sse_message("q1", "caller", &body, T + i)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    store
        .push_sse_message("q2", "other", "{\"n\":9}", T)
        .await
        .unwrap()
        .unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let taken = store.take_sse_messages("q1").await.unwrap();
    let bodies: Vec<&str> = taken.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(bodies, ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
    assert_eq!(taken.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert!(taken.iter().all(|m| m.caller == "caller"));
    assert!(
        store.take_sse_messages("q1").await.unwrap().is_empty(),
        "taken once"
    );

    // Deleting a session drops its queued messages; others keep theirs.
    store
        .push_sse_message("q1", "caller", "{}", T)
        .await
        .unwrap()
        .unwrap();
    store.delete_sse_session("q1").await.unwrap();
    assert_eq!(store.sse_session("q1").await.unwrap(), None);
    assert!(store.take_sse_messages("q1").await.unwrap().is_empty());
    assert_eq!(
        store.push_sse_message("q1", "c", "{}", T).await.unwrap(),
        None
    );
    assert_eq!(store.take_sse_messages("q2").await.unwrap().len(), 1);
}

pub async fn the_sse_heartbeat_and_purge_touch_only_their_sessions(store: Arc<dyn Store>) {
    store
        .create_sse_session(&sse("h1", "alice", "i-a", T))
        .await
        .unwrap();
    store
        .create_sse_session(&sse("h2", "alice", "i-a", T))
        .await
        .unwrap();
    store
        .create_sse_session(&sse("h3", "bob", "i-b", T))
        .await
        .unwrap();
    assert_eq!(
        store.heartbeat_sse_sessions("i-a", T + 30).await.unwrap(),
        2
    );
    assert_eq!(
        store.sse_session("h1").await.unwrap().unwrap().seen_at,
        T + 30
    );
    assert_eq!(store.sse_session("h3").await.unwrap().unwrap().seen_at, T);
    store
        .push_sse_message("h3", "c", "{}", T)
        .await
        .unwrap()
        .unwrap();

    store.bind_mcp_session("m-old", "alice", T).await.unwrap();
    store
        .bind_mcp_session("m-new", "alice", T + 40)
        .await
        .unwrap();

    // i-b stopped beating: its session goes; so does the idle MCP session.
    assert_eq!(
        store.purge_cluster_sessions(T + 10, T + 10).await.unwrap(),
        2
    );
    assert_eq!(store.sse_session("h3").await.unwrap(), None);
    assert!(store.take_sse_messages("h3").await.unwrap().is_empty());
    assert!(store.sse_session("h1").await.unwrap().is_some());
    assert!(store.sse_session("h2").await.unwrap().is_some());
    assert_eq!(store.mcp_session("m-old").await.unwrap(), None);
    assert!(store.mcp_session("m-new").await.unwrap().is_some());
}

fn mail(id: &str, recipient: &str, at: i64) -> MailRecord {
    MailRecord {
        id: id.into(),
        recipient: recipient.into(),
        caller: format!("caller of {id}"),
        body: format!("{{\"n\":\"{id}\"}}"),
        created_at: at,
    }
}

pub async fn cluster_mail_is_taken_once_by_its_recipient_only(store: Arc<dyn Store>) {
    store
        .post_cluster_mail(&mail("m1", "instance:a", T))
        .await
        .unwrap();
    store
        .post_cluster_mail(&mail("m2", "instance:a", T + 1))
        .await
        .unwrap();
    store
        .post_cluster_mail(&mail("m3", "instance:b", T))
        .await
        .unwrap();
    assert!(matches!(
        store.post_cluster_mail(&mail("m1", "instance:c", T)).await,
        Err(StoreError::Conflict(_))
    ));
    let taken = store
        .take_cluster_mail("instance:a", T - 600)
        .await
        .unwrap();
    assert_eq!(
        taken,
        vec![mail("m1", "instance:a", T), mail("m2", "instance:a", T + 1)]
    );
    assert!(
        store
            .take_cluster_mail("instance:a", T - 600)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .take_cluster_mail("instance:b", T - 600)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn expired_cluster_mail_is_deleted_by_any_take(store: Arc<dyn Store>) {
    store
        .post_cluster_mail(&mail("old", "answer:x", T))
        .await
        .unwrap();
    store
        .post_cluster_mail(&mail("new", "answer:x", T + 700))
        .await
        .unwrap();
    // Taking anybody's mail deletes what expired.
    assert!(
        store
            .take_cluster_mail("instance:z", T + 1)
            .await
            .unwrap()
            .is_empty()
    );
    let left = store.take_cluster_mail("answer:x", T + 1).await.unwrap();
    assert_eq!(left, vec![mail("new", "answer:x", T + 700)]);
}
