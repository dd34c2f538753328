use super::*;
use rmcp::model::{
    CreateMessageRequest, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
    ListRootsRequest, SamplingMessage,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn all_caps() -> Option<ClientCapabilities> {
    Some(
        ClientCapabilities::builder()
            .enable_sampling()
            .enable_elicitation()
            .enable_roots()
            .build(),
    )
}

fn elicit(message: &str) -> ServerRequest {
    let params: ElicitRequestParams = serde_json::from_value(json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
    }))
    .unwrap();
    ServerRequest::ElicitRequest(ElicitRequest::new(params))
}

fn sample() -> ServerRequest {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text("hi")], 10);
    ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params))
}

fn roots() -> ServerRequest {
    ServerRequest::ListRootsRequest(ListRootsRequest::default())
}

fn accept(name: &str) -> Value {
    json!({"action": "accept", "content": {"name": name}})
}

/// An "upstream call": asks what it is given, in parallel, and ends with
/// the answers it got.
fn upstream(
    asker: Asker,
    asks: Vec<(ServerRequest, Option<&'static str>)>,
) -> JoinHandle<Vec<Result<ClientResult, McpError>>> {
    tokio::spawn(async move {
        futures::future::join_all(asks.into_iter().map(|(r, hint)| {
            let asker = asker.clone();
            async move { asker.ask(r, hint).await }
        }))
        .await
    })
}

#[tokio::test]
async fn questions_sent_together_come_out_together_and_their_answers_reach_the_upstream() {
    let (asker, mut inbox) = channel(all_caps());
    let mut done = upstream(
        asker,
        vec![
            (elicit("name?"), Some("user_name")),
            (sample(), None),
            (roots(), None),
        ],
    );
    let Step::Input(q) = inbox.wait(&mut done).await else {
        panic!("expected questions")
    };
    let keys: Vec<&String> = q.keys().collect();
    assert_eq!(keys, ["roots-1", "sampling-1", "user_name"]);
    inbox
        .deliver(
            [
                ("user_name".to_string(), accept("Alice")),
                (
                    "sampling-1".to_string(),
                    json!({"role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "m"}),
                ),
                ("roots-1".to_string(), json!({"roots": []})),
                ("unrelated".to_string(), json!(1)),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
    let Step::Done(Ok(answers)) = inbox.wait(&mut done).await else {
        panic!("expected the end of the call")
    };
    match &answers[0] {
        Ok(ClientResult::ElicitResult(r)) => assert_eq!(r.content, Some(json!({"name": "Alice"}))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        answers[1],
        Ok(ClientResult::CreateMessageResult(_))
    ));
    assert!(matches!(answers[2], Ok(ClientResult::ListRootsResult(_))));
}

#[tokio::test]
async fn an_unanswered_question_is_asked_again_and_a_wrong_answer_answers_nothing() {
    let (asker, mut inbox) = channel(all_caps());
    let mut done = upstream(
        asker,
        vec![(elicit("a?"), Some("a")), (elicit("b?"), Some("b"))],
    );
    let Step::Input(q) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert_eq!(q.len(), 2);
    // "b" is a number, not an ElicitResult: refused, and "a" not answered.
    let e = inbox
        .deliver(
            [("a".into(), accept("x")), ("b".into(), json!(12345))]
                .into_iter()
                .collect(),
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(inbox.questions().len(), 2);
    inbox
        .deliver([("a".into(), accept("x"))].into_iter().collect())
        .unwrap();
    let Step::Input(q) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert_eq!(q.keys().collect::<Vec<_>>(), ["b"]);
}

#[tokio::test]
async fn a_question_the_client_has_no_capability_for_is_refused_and_remembered() {
    let caps = ClientCapabilities::builder().enable_sampling().build();
    let (asker, mut inbox) = channel(Some(caps));
    let mut done = upstream(asker, vec![(elicit("name?"), None), (sample(), None)]);
    let Step::Input(q) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert_eq!(q.keys().collect::<Vec<_>>(), ["sampling-1"]);
    assert_eq!(inbox.refused(), ["elicitation"]);
    drop(inbox);
    let answers = done.await.unwrap();
    let e = answers[0].as_ref().unwrap_err();
    assert_eq!(e.code, ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY);
    assert_eq!(
        e.data,
        Some(json!({"requiredCapabilities": {"elicitation": {}}}))
    );
    // The inbox is gone: the other question is not answered either.
    assert!(answers[1].is_err());
}

#[tokio::test]
async fn nothing_declared_means_nothing_is_asked() {
    let (asker, _inbox) = channel(None);
    let e = asker.ask(roots(), None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY);
}

#[tokio::test]
async fn an_answer_given_in_advance_answers_its_question_at_once() {
    let (asker, mut inbox) = channel(all_caps());
    inbox
        .deliver(
            [
                ("user_name".into(), accept("Bob")),
                ("extra".into(), json!({})),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
    let mut done = upstream(asker, vec![(elicit("name?"), Some("user_name"))]);
    let Step::Done(Ok(answers)) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert!(
        matches!(&answers[0], Ok(ClientResult::ElicitResult(r)) if r.content == Some(json!({"name": "Bob"})))
    );
}

#[tokio::test]
async fn an_invalid_answer_given_in_advance_is_an_error() {
    let (asker, mut inbox) = channel(all_caps());
    inbox
        .deliver([("user_name".into(), json!(12345))].into_iter().collect())
        .unwrap();
    let mut done = upstream(asker, vec![(elicit("name?"), Some("user_name"))]);
    let Step::Invalid(e) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
}

#[tokio::test]
async fn questions_suggesting_the_same_key_get_distinct_keys() {
    let (asker, mut inbox) = channel(all_caps());
    let mut done = upstream(
        asker,
        vec![(elicit("1"), Some("k")), (elicit("2"), Some("k"))],
    );
    let Step::Input(q) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert_eq!(q.keys().collect::<Vec<_>>(), ["k", "k-2"]);
    // An unusable hint is replaced by a default key.
    let (asker, mut inbox) = channel(all_caps());
    let mut done = upstream(asker, vec![(elicit("1"), Some("no spaces allowed"))]);
    let Step::Input(q) = inbox.wait(&mut done).await else {
        panic!()
    };
    assert_eq!(q.keys().collect::<Vec<_>>(), ["elicitation-1"]);
}

fn pending(
    asks: Vec<(ServerRequest, Option<&'static str>)>,
) -> (
    Pending<Vec<Result<ClientResult, McpError>>>,
    CancellationToken,
) {
    let (asker, inbox) = channel(all_caps());
    let ct = CancellationToken::new();
    (Pending::new(inbox, upstream(asker, asks), ct.clone()), ct)
}

#[tokio::test]
async fn a_pending_call_is_handed_out_once_per_round_and_only_to_its_owner() {
    let calls = PendingCalls::new(Limits::default());
    let (mut p, ct) = pending(vec![(elicit("?"), None)]);
    p.round = 1;
    calls.park("c1", "alice", p).unwrap();
    assert_eq!(calls.take("c1", "bob", 1).err(), Some(Refused::NotPending));
    assert_eq!(
        calls.take("c1", "alice", 2).err(),
        Some(Refused::NotPending)
    );
    assert!(!ct.is_cancelled(), "bob's attempt disturbed nothing");
    let p = calls.take("c1", "alice", 1).unwrap();
    assert_eq!(
        calls.take("c1", "alice", 1).err(),
        Some(Refused::NotPending),
        "a replay finds nothing"
    );
    drop(p);
    assert!(
        ct.is_cancelled(),
        "a dropped pending call cancels its upstream call"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pending_call_expires_after_its_ttl_and_is_cancelled() {
    let calls = PendingCalls::new(Limits {
        ttl: Duration::from_secs(30),
        ..Limits::default()
    });
    let (mut p, ct) = pending(vec![(elicit("?"), None)]);
    p.round = 1;
    calls.park("c1", "alice", p).unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(calls.len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.len(), 0);
    assert!(ct.is_cancelled());
}

#[tokio::test]
async fn pending_calls_are_bounded_per_owner_and_in_total() {
    let calls = PendingCalls::new(Limits {
        ttl: Duration::from_secs(60),
        max_total: 3,
        max_per_owner: 2,
    });
    for id in ["a1", "a2"] {
        calls.park(id, "alice", pending(vec![]).0).unwrap();
    }
    let (p, ct) = pending(vec![]);
    assert_eq!(calls.park("a3", "alice", p).err(), Some(Refused::Full));
    assert!(ct.is_cancelled(), "a refused call is cancelled");
    calls.park("b1", "bob", pending(vec![]).0).unwrap();
    assert_eq!(
        calls.park("c1", "carol", pending(vec![]).0).err(),
        Some(Refused::Full)
    );
}
