//! Store contracts of tasks (SEP-2663, `mcpgate::tasks`): a task reads
//! back whole, a terminal status never changes, and expired tasks are
//! purged. Instantiated for every backend by `store_contract_tests!`.

use std::sync::Arc;

use mcpgate::store::{Store, StoreError, TaskRecord, TaskUpdate};
use mcpgate_core::mcp::tasks::TaskStatus;

const T_MS: i64 = 1_700_000_000_000;

fn task(id: &str, owner: &str, expires_at: i64) -> TaskRecord {
    TaskRecord {
        task_id: id.into(),
        owner: owner.into(),
        client_id: "client-1".into(),
        upstream: "up".into(),
        tool: "slow_compute".into(),
        instance_id: "instance-a".into(),
        status: TaskStatus::Working,
        status_message: None,
        result: None,
        error: None,
        input_requests: None,
        ttl_ms: 60_000,
        created_at_ms: T_MS,
        updated_at_ms: T_MS,
        expires_at,
    }
}

pub async fn a_task_reads_back_whole_and_its_id_is_unique(store: Arc<dyn Store>) {
    assert_eq!(store.task("t-unknown").await.unwrap(), None);
    let t = task("t1", "alice", T_MS / 1000 + 60);
    store.create_task(&t).await.unwrap();
    assert_eq!(store.task("t1").await.unwrap(), Some(t.clone()));
    let again = store
        .create_task(&TaskRecord {
            owner: "mallory".into(),
            ..t
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.task("t1").await.unwrap().unwrap().owner, "alice");
}

pub async fn a_task_changes_until_it_is_terminal_and_then_never(store: Arc<dyn Store>) {
    store
        .create_task(&task("t1", "alice", T_MS / 1000 + 60))
        .await
        .unwrap();
    let waiting = TaskUpdate {
        input_requests: Some(r#"{"k":{"method":"elicitation/create"}}"#.into()),
        status_message: Some("asking".into()),
        ..TaskUpdate::status(TaskStatus::InputRequired)
    };
    assert!(store.update_task("t1", &waiting, T_MS + 10).await.unwrap());
    let r = store.task("t1").await.unwrap().unwrap();
    assert_eq!(r.status, TaskStatus::InputRequired);
    assert_eq!(r.input_requests, waiting.input_requests);
    assert_eq!(r.status_message.as_deref(), Some("asking"));
    assert_eq!(r.updated_at_ms, T_MS + 10);

    let done = TaskUpdate {
        result: Some(r#"{"content":[]}"#.into()),
        ..TaskUpdate::status(TaskStatus::Completed)
    };
    assert!(store.update_task("t1", &done, T_MS + 20).await.unwrap());
    let r = store.task("t1").await.unwrap().unwrap();
    assert_eq!(
        (
            r.status,
            r.result.as_deref(),
            r.input_requests,
            r.updated_at_ms
        ),
        (
            TaskStatus::Completed,
            Some(r#"{"content":[]}"#),
            None,
            T_MS + 20
        )
    );

    // Terminal: a late cancellation (or a late result) changes nothing.
    for late in [
        TaskUpdate::status(TaskStatus::Cancelled),
        TaskUpdate::status(TaskStatus::Working),
    ] {
        assert!(!store.update_task("t1", &late, T_MS + 30).await.unwrap());
    }
    let r = store.task("t1").await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.updated_at_ms),
        (TaskStatus::Completed, T_MS + 20)
    );
    assert!(!store.update_task("t-unknown", &done, T_MS).await.unwrap());
}

pub async fn a_cancelled_task_keeps_its_status_against_a_late_result(store: Arc<dyn Store>) {
    store
        .create_task(&task("t1", "alice", T_MS / 1000 + 60))
        .await
        .unwrap();
    let cancel = TaskUpdate::status(TaskStatus::Cancelled);
    assert!(store.update_task("t1", &cancel, T_MS + 5).await.unwrap());
    let failed = TaskUpdate {
        error: Some(r#"{"code":-32603,"message":"x"}"#.into()),
        ..TaskUpdate::status(TaskStatus::Failed)
    };
    assert!(!store.update_task("t1", &failed, T_MS + 6).await.unwrap());
    let r = store.task("t1").await.unwrap().unwrap();
    assert_eq!((r.status, r.error), (TaskStatus::Cancelled, None));
}

pub async fn expired_tasks_are_purged(store: Arc<dyn Store>) {
    let cutoff = T_MS / 1000 + 100;
    store
        .create_task(&task("old", "alice", cutoff - 1))
        .await
        .unwrap();
    store
        .create_task(&task("new", "alice", cutoff))
        .await
        .unwrap();
    store.purge_expired(cutoff).await.unwrap();
    assert_eq!(store.task("old").await.unwrap(), None);
    assert!(store.task("new").await.unwrap().is_some());
}

pub async fn queued_task_input_is_taken_once_and_its_outcome_read_once(store: Arc<dyn Store>) {
    let now = T_MS / 1000;
    let a = store.push_task_input("t1", "{\"k\":1}", now).await.unwrap();
    let b = store.push_task_input("t1", "{\"k\":2}", now).await.unwrap();
    store.push_task_input("t2", "{}", now).await.unwrap();
    assert_eq!(
        store.take_task_inputs("t1").await.unwrap(),
        vec![(a, "{\"k\":1}".to_string()), (b, "{\"k\":2}".to_string())]
    );
    assert_eq!(
        store.take_task_inputs("t1").await.unwrap(),
        vec![],
        "taken once"
    );
    assert_eq!(
        store.take_task_input_outcome(a).await.unwrap(),
        None,
        "not settled yet"
    );
    store.settle_task_input(a, "").await.unwrap();
    store
        .settle_task_input(b, "{\"code\":-32602}")
        .await
        .unwrap();
    assert_eq!(
        store.take_task_input_outcome(a).await.unwrap().as_deref(),
        Some("")
    );
    assert_eq!(
        store.take_task_input_outcome(a).await.unwrap(),
        None,
        "read once"
    );
    assert_eq!(
        store.take_task_input_outcome(b).await.unwrap().as_deref(),
        Some("{\"code\":-32602}")
    );
    // Old queued answers are purged.
    store.purge_expired(now + 1).await.unwrap();
    assert_eq!(store.take_task_inputs("t2").await.unwrap(), vec![]);
}
