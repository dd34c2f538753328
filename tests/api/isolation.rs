//! Per-user isolation of the gateway and the transports (hardening issue):
//! a Streamable HTTP session is never served to another user's token for as
//! long as it lives, and requests an upstream makes during a call reach the
//! session whose call caused them, or nobody.

#![allow(deprecated)] // sampling is deprecated by SEP-2577 in rmcp 3.x

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use rmcp::model::{
    ClientCapabilities, ClientInfo, CreateMessageRequestParams, CreateMessageResult,
    Implementation, ProtocolVersion, SamplingMessage,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::gateway_support::{WAIT, call, fixture, prompt_text, spawn_gateway, text_of};
use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{MCP, McpClient, bearer, signed_in};

#[tokio::test]
async fn a_session_kept_alive_by_notifications_alone_is_never_served_to_another_user() {
    // Sessions idle for two seconds are closed; alice's session makes no request
    // after its first call, but the shared upstream's `list_changed`
    // notifications (caused by carol's calls) keep it alive well past any
    // time-based pruning of session owners, and past 256 newer sessions.
    let idle = Duration::from_secs(2);
    let app = spawn_app_with(|s| {
        s.mcp_session_idle_timeout = idle;
        s.upstream = vec![fixture("fx", "")];
    })
    .await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, carol) = signed_in(&app, "carol").await;

    let mut owner = McpClient::new(&app, &alice);
    owner.initialize("2025-06-18").await;
    let m = owner.call_tool("fx_echo", json!({"text": "mine"})).await;
    assert!(m["result"].is_object(), "{m}");
    let session = owner.session.clone().unwrap();

    let mut other = McpClient::new(&app, &carol);
    other.initialize("2025-06-18").await;
    // Carol's calls of `change_tools`, every quarter of the idle timeout,
    // until told to stop.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let notifier = tokio::spawn(async move {
        loop {
            let m = other.call_tool("fx_change_tools", json!({})).await;
            assert!(m["result"].is_object(), "{m}");
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(idle / 4) => {}
            }
        }
    });
    // Three idle periods (owners unused for twice the idle timeout were
    // pruned before), then 256 new sessions (each new session could prune).
    tokio::time::sleep(idle * 3).await;
    for _ in 0..16 {
        join_all((0..16).map(|_| async {
            let mut c = McpClient::new(&app, &carol);
            c.initialize("2025-06-18").await;
        }))
        .await;
    }
    stop.send(()).unwrap();
    notifier.await.unwrap();

    // Carol presents alice's session: POST, GET and DELETE are not found.
    let mut thief = McpClient::new(&app, &carol);
    thief.session = Some(session.clone());
    thief.version = owner.version.clone();
    let (r, _) = thief
        .send("tools/call", json!({"name": "whoami", "arguments": {}}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "POST");
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(&carol))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "GET");
    let r = app
        .http
        .delete(app.url(MCP))
        .header("authorization", bearer(&carol))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "DELETE");

    // The session lived all along, and is still alice's.
    let m = owner.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["structuredContent"]["user"], "alice", "{m}");
}

/// A client that answers sampling requests as `user`, and records every
/// prompt it was asked.
#[derive(Clone)]
struct Answering {
    user: String,
    asked: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientInfo {
        ClientInfo::new(
            ClientCapabilities::builder().enable_sampling().build(),
            Implementation::new("isolation-tests", "1.0.0"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let prompt = prompt_text(&params);
        self.asked.lock().unwrap().push(prompt.clone());
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("{} answers {prompt}", self.user)),
            "test-model".to_owned(),
        ))
    }
}

type AnsweringClient = RunningService<RoleClient, Answering>;

async fn answering_client(app: &TestApp, user: &str) -> (AnsweringClient, Arc<Mutex<Vec<String>>>) {
    let (_, token) = signed_in(app, user).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let handler = Answering {
        user: user.to_string(),
        asked: asked.clone(),
    };
    let config = StreamableHttpClientTransportConfig::with_uri(app.url(MCP)).auth_header(token);
    let client = tokio::time::timeout(
        WAIT,
        handler.serve(StreamableHttpClientTransport::from_config(config)),
    )
    .await
    .expect("initialize in time")
    .expect("the client initializes");
    (client, asked)
}

/// Fifty rounds of alice and bob calling the shared upstream's `sample`:
/// at the same time (each call waits before asking, so both are in flight
/// when either asks), or one after the other. Returns, per round, each
/// user's tool result and whether it is an error.
async fn rounds(overlapping: bool) -> Vec<[(String, bool); 2]> {
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (alice, alice_asked) = answering_client(&app, "alice").await;
    let (bob, bob_asked) = answering_client(&app, "bob").await;
    let mut rounds = Vec::new();
    for round in 0..50 {
        let ask = |who: &str| json!({"prompt": format!("{who} round {round}"), "delay_ms": 20});
        let (a, b) = if overlapping {
            tokio::join!(
                call(&alice, "fx_sample", ask("alice")),
                call(&bob, "fx_sample", ask("bob")),
            )
        } else {
            let a = call(&alice, "fx_sample", ask("alice")).await;
            (a, call(&bob, "fx_sample", ask("bob")).await)
        };
        let a = a.expect("alice's call");
        let b = b.expect("bob's call");
        rounds.push([
            (text_of(&a), a.is_error == Some(true)),
            (text_of(&b), b.is_error == Some(true)),
        ]);
    }
    // No prompt ever reached the other user.
    for (who, asked) in [("alice", &alice_asked), ("bob", &bob_asked)] {
        for prompt in asked.lock().unwrap().iter() {
            assert!(
                prompt.starts_with(&format!("{who} round ")),
                "{who} was asked another user's prompt: {prompt:?}"
            );
        }
    }
    rounds
}

/// Checks that no answer crossed: a successful result is the caller's own
/// answer to the caller's own prompt.
fn assert_no_answer_crossed(rounds: &[[(String, bool); 2]]) -> usize {
    let mut answered = 0;
    for (round, results) in rounds.iter().enumerate() {
        for ((text, is_error), who) in results.iter().zip(["alice", "bob"]) {
            if *is_error {
                assert!(
                    text.contains("does not relay") && text.contains("sampling/createMessage"),
                    "round {round}: {who}'s call failed for another reason: {text}"
                );
            } else {
                assert_eq!(
                    text,
                    &format!("sampled: {who} answers {who} round {round}"),
                    "round {round}: {who} got another user's answer"
                );
                answered += 1;
            }
        }
    }
    answered
}

#[tokio::test]
async fn overlapping_calls_of_two_users_on_a_shared_upstream_never_cross_and_ambiguous_requests_are_refused()
 {
    // Without a relation, both calls are in flight when either asks: the
    // origin cannot be told, so the upstream is refused rather than one
    // user's prompt sent to the other (who would answer it).
    let rounds = rounds(true).await;
    let answered = assert_no_answer_crossed(&rounds);
    assert!(
        answered < rounds.len() * 2,
        "with both calls in flight, some requests must have been refused as ambiguous"
    );
}

#[tokio::test]
async fn calls_of_two_users_one_after_the_other_each_reach_their_own_client() {
    let rounds = rounds(false).await;
    let answered = assert_no_answer_crossed(&rounds);
    assert_eq!(
        answered,
        rounds.len() * 2,
        "every request had one certain origin"
    );
}

#[tokio::test]
async fn a_request_of_an_upstream_during_a_single_call_reaches_that_call() {
    // One call in flight on the shared connection: its origin is certain.
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (alice, asked) = answering_client(&app, "alice").await;
    let r = call(&alice, "fx_sample", json!({"prompt": "alice alone"}))
        .await
        .expect("call");
    assert_eq!(text_of(&r), "sampled: alice answers alice alone");
    assert_eq!(*asked.lock().unwrap(), vec!["alice alone".to_string()]);
}

#[tokio::test]
async fn a_rest_call_asking_the_client_is_never_relayed_to_another_users_session() {
    // Alice's REST call (no MCP session to ask) overlaps bob's session call
    // on the shared upstream: alice's request is refused, and bob never
    // sees it.
    let app = spawn_gateway(vec![fixture("fx", "")]).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (bob, bob_asked) = answering_client(&app, "bob").await;
    let rest = async {
        let r = app
            .http
            .post(app.url("/tools/fx_sample"))
            .header("authorization", bearer(&alice))
            .header("content-type", "application/json")
            .body(json!({"prompt": "alice via rest", "delay_ms": 100}).to_string())
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };
    let (rest, session) = tokio::join!(
        rest,
        call(
            &bob,
            "fx_sample",
            json!({"prompt": "bob round 0", "delay_ms": 300})
        )
    );
    assert!(
        rest.to_string().contains("does not relay"),
        "alice's REST call is refused its sampling: {rest}"
    );
    // Bob's own request comes once alice's call has ended (or, on a slow
    // machine, may still overlap it and be refused): never alice's answer.
    let session = text_of(&session.expect("bob's call"));
    assert!(
        session == "sampled: bob answers bob round 0" || session.contains("does not relay"),
        "{session}"
    );
    assert!(
        !bob_asked
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.contains("alice")),
        "bob was asked alice's prompt: {:?}",
        bob_asked.lock().unwrap()
    );
}
