//! A retry that lands on another instance than the one holding its pending
//! call (several instances on one PostgreSQL database, docs/scaling.md).
//!
//! The `requestState` names the holding instance. The instance that got
//! the retry ([`forward`]) checks the state first (signature, binding to
//! this caller and request, expiry: every instance derives the same key),
//! then leaves the retry and its caller in the store as mail for the
//! holder (`cluster_mail`, recipient `instance:<id>`) and wakes it on the
//! bus. The holder ([`start_forwarding`]) takes its mail, checks the state
//! again for that caller, continues the call as if the retry had come to
//! it, and leaves the outcome as mail for the waiting instance
//! (`answer:<mail id>`). A retry is forwarded at most once. The waiting
//! instance also looks for its answer every second, in case a wake-up is
//! lost.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::crypto::random_b64;
use mcpgate_core::mcp::bearer::Caller;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResult, GetPromptResult, InputRequiredResult, ReadResourceResult, ServerResult,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Mrtr, Outcome, Retry};
use crate::cluster::{Event, bus, caller};
use crate::store::MailRecord;

/// How long the instance that got a retry waits for the holder's answer
/// (the holder's round lasts until the upstream answers or asks again).
const WAIT_LIMIT: Duration = Duration::from_secs(300);
/// How often it looks for the answer without a wake-up.
const POLL: Duration = Duration::from_secs(1);
/// Mail older than this is deleted.
const MAIL_TTL: i64 = 600;

fn instance_box(instance: &str) -> String {
    format!("instance:{instance}")
}

fn answer_box(mail_id: &str) -> String {
    format!("answer:{mail_id}")
}

/// An outcome as it travels between instances.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Wire {
    Result(Value),
    Error(McpError),
}

fn encode(outcome: &Outcome) -> String {
    let wire = match outcome {
        Ok(r) => match serde_json::to_value(r) {
            Ok(v) => Wire::Result(v),
            Err(e) => Wire::Error(McpError::internal_error(
                format!("cannot encode the result: {e}"),
                None,
            )),
        },
        Err(e) => Wire::Error(e.clone()),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// Reads an outcome back; `method` tells which complete result it is.
fn decode(method: &str, body: &str) -> Outcome {
    let bad = |e: String| McpError::internal_error(format!("another instance's answer: {e}"), None);
    let wire: Wire = serde_json::from_str(body).map_err(|e| bad(e.to_string()))?;
    let v = match wire {
        Wire::Error(e) => return Err(e),
        Wire::Result(v) => v,
    };
    if v.get("resultType").and_then(Value::as_str) == Some("input_required") {
        return serde_json::from_value::<InputRequiredResult>(v)
            .map(ServerResult::InputRequiredResult)
            .map_err(|e| bad(e.to_string()));
    }
    let r = match method {
        "tools/call" => {
            serde_json::from_value::<CallToolResult>(v).map(ServerResult::CallToolResult)
        }
        "prompts/get" => {
            serde_json::from_value::<GetPromptResult>(v).map(ServerResult::GetPromptResult)
        }
        "resources/read" => {
            serde_json::from_value::<ReadResourceResult>(v).map(ServerResult::ReadResourceResult)
        }
        other => return Err(bad(format!("unexpected method {other:?}"))),
    };
    r.map_err(|e| bad(e.to_string()))
}

/// Hands `retry` to `holder` and waits for its outcome.
pub(super) async fn forward(m: &Mrtr, caller: &Caller, retry: &Retry, holder: &str) -> Outcome {
    let cluster = &m.cluster;
    let unavailable = |why: String| {
        tracing::warn!(event = "input_forward_failed", holder = ?holder, error = %why, "a retry could not be forwarded");
        McpError::internal_error(
            format!("the instance holding this request did not answer ({why})"),
            None,
        )
    };
    let id = random_b64::<16>();
    let reply_to = answer_box(&id);
    let mut events = cluster.bus.subscribe();
    let body = serde_json::to_string(retry).map_err(|e| unavailable(e.to_string()))?;
    cluster
        .store
        .post_cluster_mail(&MailRecord {
            id: id.clone(),
            recipient: instance_box(holder),
            caller: caller::to_json(caller),
            body,
            created_at: cluster.clock.now(),
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    cluster
        .bus
        .publish(Event::Mail(instance_box(holder)))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tracing::debug!(holder = ?holder, "a retry was forwarded to the instance holding its call");
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let mail = cluster
            .store
            .take_cluster_mail(&reply_to, cluster.clock.now() - MAIL_TTL)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if let Some(answer) = mail.into_iter().next() {
            return decode(&retry.method, &answer.body);
        }
        let wake = async {
            loop {
                match bus::next(&mut events).await {
                    Some(Event::Mail(to)) if to == reply_to => return,
                    Some(Event::Resync) | None => return,
                    Some(_) => {}
                }
            }
        };
        tokio::select! {
            _ = wake => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Err(unavailable(format!("no answer within {} s", WAIT_LIMIT.as_secs())));
            }
        }
    }
}

/// Serves the retries other instances forward to this one, until `cancel`.
/// Only in shared mode.
pub fn start_forwarding(m: Arc<Mrtr>, cancel: CancellationToken) {
    if !m.cluster.shared() {
        return;
    }
    tokio::spawn(async move {
        let mine = instance_box(&m.cluster.instance_id);
        let mut events = m.cluster.bus.subscribe();
        // Mail left while this instance was not listening.
        take_and_serve(&m, &mine).await;
        loop {
            let event = tokio::select! {
                e = bus::next(&mut events) => e,
                _ = cancel.cancelled() => return,
            };
            match event {
                Some(Event::Mail(to)) if to == mine => take_and_serve(&m, &mine).await,
                Some(Event::Resync) => take_and_serve(&m, &mine).await,
                Some(_) => {}
                None => return,
            }
        }
    });
}

async fn take_and_serve(m: &Arc<Mrtr>, mine: &str) {
    let mail = match m
        .cluster
        .store
        .take_cluster_mail(mine, m.cluster.clock.now() - MAIL_TTL)
        .await
    {
        Ok(mail) => mail,
        Err(e) => {
            tracing::error!(error = %e, "cannot take forwarded retries");
            return;
        }
    };
    for mail in mail {
        let m = m.clone();
        tokio::spawn(async move { serve_one(&m, mail).await });
    }
}

async fn serve_one(m: &Mrtr, mail: MailRecord) {
    let Some(caller) = caller::from_json(&mail.caller) else {
        tracing::warn!(
            event = "input_forward_bad_mail",
            "a forwarded retry's caller does not parse; dropped"
        );
        return;
    };
    let outcome = match serde_json::from_str::<Retry>(&mail.body) {
        // Checked again here, for this caller; never forwarded again.
        Ok(retry) => m.resume(&caller, retry, false, None).await,
        Err(e) => Err(McpError::invalid_params(
            format!("a forwarded retry does not parse: {e}"),
            None,
        )),
    };
    let answer = MailRecord {
        id: random_b64::<16>(),
        recipient: answer_box(&mail.id),
        caller: mail.caller,
        body: encode(&outcome),
        created_at: m.cluster.clock.now(),
    };
    let to = answer.recipient.clone();
    if let Err(e) = m.cluster.store.post_cluster_mail(&answer).await {
        tracing::error!(error = %e, "cannot answer a forwarded retry");
        return;
    }
    let _ = m.cluster.bus.publish(Event::Mail(to)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock;

    #[test]
    fn outcomes_survive_the_trip_between_instances() {
        let done = Ok(ServerResult::CallToolResult(CallToolResult::success(vec![
            ContentBlock::text("hi"),
        ])));
        match decode("tools/call", &encode(&done)) {
            Ok(ServerResult::CallToolResult(r)) => {
                assert_eq!(r.content[0].as_text().map(|t| t.text.as_str()), Some("hi"))
            }
            other => panic!("{other:?}"),
        }
        let asking = Ok(ServerResult::InputRequiredResult(
            InputRequiredResult::from_request_state("s"),
        ));
        assert!(matches!(
            decode("tools/call", &encode(&asking)),
            Ok(ServerResult::InputRequiredResult(r)) if r.request_state.as_deref() == Some("s")
        ));
        let err: Outcome = Err(McpError::invalid_params("nope", None));
        let back = decode("prompts/get", &encode(&err)).unwrap_err();
        assert_eq!(back.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(decode("tools/call", "garbage").is_err());
    }
}
