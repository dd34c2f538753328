//! Running a task's upstream call, with input (SEP-2663 `input_required`).
//!
//! The call runs with an asker of the input broker
//! ([`crate::gateway::input`]) as its downstream: when the upstream (on a
//! 2025 revision) sends `elicitation/create`, `sampling/createMessage` or
//! `roots/list`, the relay hands the request to the asker instead of a
//! client session, and the task becomes `input_required` with the
//! questions as `inputRequests` (keyed as the broker keys them). The
//! client answers with `tasks/update`; [`Delivery`] brings the answers
//! here, the broker hands them to the waiting upstream requests, and the
//! task's state is stored before the update is acknowledged: `working`
//! again once nothing waits, else `input_required` with the questions still
//! open (partial answers, SEP-2663). A question of a kind the creating
//! request did not declare a capability for is never put to the client:
//! the upstream gets `-32021`, and if the call then fails the task fails
//! with `-32021` naming it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcpgate_core::mcp::tasks::TaskStatus;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, InputRequests, InputResponses, ServerResult};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Tasks, wire};
use crate::gateway::input::{self, Pending, Step};
use crate::mcp::mrtr::Outcome;
use crate::store::TaskUpdate;

/// The client's answers (`tasks/update`), and where to say how they went.
pub struct Delivery {
    pub responses: InputResponses,
    pub reply: oneshot::Sender<Result<(), McpError>>,
}

/// How often the runner looks for more questions while it waits for
/// answers (a question asked while others wait joins `inputRequests`).
const RECHECK: Duration = Duration::from_millis(100);

/// Downstream session numbers of tasks: one per task, so that the relay
/// never relates one task's question to another call (`relay::origin`),
/// in a range of their own (`handler` counts from 1, `mcp::mrtr` from 2^62).
static SESSIONS: AtomicU64 = AtomicU64::new(1 << 61);

enum End {
    Result(Result<CallToolResult, McpError>),
    Cancelled,
}

/// A downstream session number for a task's call.
pub(super) fn session() -> u64 {
    SESSIONS.fetch_add(1, Ordering::Relaxed)
}

/// Runs the call of task `task_id` (running already, with its input
/// broker) to its end and stores the outcome. Ending early (cancelled, or
/// at shutdown) drops `pending`, which cancels the upstream call.
pub(super) async fn run(
    tasks: &Arc<Tasks>,
    task_id: String,
    pending: Pending<Outcome>,
    mut deliveries: mpsc::Receiver<Delivery>,
    ct: CancellationToken,
) {
    let mut pending = pending;
    let joined = |r: Result<Outcome, tokio::task::JoinError>| {
        End::Result(match r {
            Ok(Ok(ServerResult::CallToolResult(c))) => Ok(c),
            Ok(Ok(other)) => Err(McpError::internal_error(
                format!("the call ended with an unexpected result: {other:?}"),
                None,
            )),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(McpError::internal_error(
                format!("the call ended abnormally: {e}"),
                None,
            )),
        })
    };
    // The questions the stored task shows.
    let mut shown: Option<InputRequests> = None;
    let end = loop {
        let step = tokio::select! {
            s = pending.wait() => s,
            _ = ct.cancelled() => break End::Cancelled,
        };
        match step {
            Step::Done(r) => break joined(r),
            // Only answers given in advance can be invalid; none are kept.
            Step::Invalid(_) => continue,
            Step::Input(questions) => {
                if shown.as_ref() != Some(&questions) {
                    tasks.set(&task_id, &input_required(&questions)).await;
                    shown = Some(questions);
                }
                tokio::select! {
                    d = deliveries.recv() => {
                        let Some(Delivery { responses, reply }) = d else { continue };
                        let r = pending.inbox.deliver(responses);
                        pending.inbox.forget_early();
                        if r.is_ok() {
                            let open = pending.inbox.questions();
                            if open.is_empty() {
                                tasks.set(&task_id, &TaskUpdate::status(TaskStatus::Working)).await;
                                shown = None;
                            } else if shown.as_ref() != Some(&open) {
                                tasks.set(&task_id, &input_required(&open)).await;
                                shown = Some(open);
                            }
                        }
                        let _ = reply.send(r);
                    }
                    r = &mut pending.done => break joined(r),
                    _ = ct.cancelled() => break End::Cancelled,
                    _ = tokio::time::sleep(RECHECK) => {}
                }
            }
        }
    };
    let update = if tasks.shutdown.is_cancelled() {
        failed(&McpError::internal_error(
            "mcpgate stopped before the task completed",
            None,
        ))
    } else {
        match end {
            End::Cancelled => TaskUpdate::status(TaskStatus::Cancelled),
            End::Result(r) => {
                let refused = pending.inbox.refused();
                let call_failed = match &r {
                    Err(_) => true,
                    Ok(c) => c.is_error == Some(true),
                };
                if call_failed && !refused.is_empty() {
                    failed(&input::missing_capabilities(refused))
                } else {
                    wire::outcome(r)
                }
            }
        }
    };
    if tasks.set(&task_id, &update).await {
        tracing::info!(task = %task_id, status = update.status.as_str(), "task ended");
    }
    // A cancelled call: dropping `pending` cancels it upstream.
    drop(pending);
}

fn input_required(questions: &InputRequests) -> TaskUpdate {
    TaskUpdate {
        input_requests: serde_json::to_string(questions).ok(),
        ..TaskUpdate::status(TaskStatus::InputRequired)
    }
}

fn failed(e: &McpError) -> TaskUpdate {
    TaskUpdate {
        error: Some(wire::error_json(e)),
        ..TaskUpdate::status(TaskStatus::Failed)
    }
}
