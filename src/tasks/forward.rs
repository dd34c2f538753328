//! `tasks/update` on an instance that does not run the task (several
//! instances on PostgreSQL): the answers are queued in the store, the
//! running instance is told over the bus (`Event::TaskInput`), hands them
//! to the call and records the outcome, which the first instance waits for
//! before it acknowledges.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::InputResponses;
use tokio::sync::oneshot;

use super::{Tasks, runner, store_error};
use crate::cluster::Event;

impl Tasks {
    /// Answers for a task another instance runs: queued in the store, that
    /// instance told over the bus; acknowledged once it has handed them to
    /// the call and stored the task's new state.
    pub(super) async fn forward_input(
        &self,
        task_id: &str,
        responses: InputResponses,
    ) -> Result<(), McpError> {
        let json = serde_json::to_string(&responses)
            .map_err(|e| McpError::invalid_params(format!("inputResponses: {e}"), None))?;
        let store = &self.cluster.store;
        let id = store
            .push_task_input(task_id, &json, self.cluster.clock.now())
            .await
            .map_err(store_error)?;
        if let Err(e) = self
            .cluster
            .bus
            .publish(Event::TaskInput(task_id.into()))
            .await
        {
            tracing::warn!(task = %task_id, error = %e, "cannot announce a task's input");
        }
        let deadline = tokio::time::Instant::now() + FORWARD_WAIT;
        loop {
            match store
                .take_task_input_outcome(id)
                .await
                .map_err(store_error)?
            {
                Some(o) if o.is_empty() => return Ok(()),
                Some(o) => {
                    let e: rmcp::model::ErrorData = serde_json::from_str(&o).unwrap_or_else(|_| {
                        McpError::internal_error("the answers were refused", None)
                    });
                    return Err(e);
                }
                None if tokio::time::Instant::now() >= deadline => {
                    return Err(McpError::internal_error(
                        "the instance running the task did not take the answers in time",
                        None,
                    ));
                }
                None => tokio::time::sleep(FORWARD_POLL).await,
            }
        }
    }

    /// Hands the answers queued for task `task_id` (by other instances) to
    /// its call, if it runs here, and records each outcome.
    pub(super) fn take_queued_input(self: &Arc<Self>, task_id: &str) {
        let input = self
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(task_id).map(|r| r.input.clone()));
        let Some(input) = input else { return };
        let me = self.clone();
        let task_id = task_id.to_string();
        tokio::spawn(async move {
            let store = &me.cluster.store;
            let queued = match store.take_task_inputs(&task_id).await {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(task = %task_id, error = %e, "cannot take a task's queued input");
                    return;
                }
            };
            for (id, json) in queued {
                let outcome = match serde_json::from_str::<InputResponses>(&json) {
                    Err(e) => Err(McpError::invalid_params(
                        format!("inputResponses: {e}"),
                        None,
                    )),
                    Ok(responses) => {
                        let (reply, answer) = oneshot::channel();
                        if input
                            .send(runner::Delivery { responses, reply })
                            .await
                            .is_err()
                        {
                            Ok(())
                        } else {
                            answer.await.unwrap_or(Ok(()))
                        }
                    }
                };
                let text = match outcome {
                    Ok(()) => String::new(),
                    Err(e) => serde_json::to_string(&e).unwrap_or_default(),
                };
                if let Err(e) = store.settle_task_input(id, &text).await {
                    tracing::error!(task = %task_id, error = %e, "cannot record a task input's outcome");
                }
            }
        });
    }
}

/// How long `tasks/update` on one instance waits for the instance running
/// the task to take the answers, and how often it looks.
const FORWARD_WAIT: Duration = Duration::from_secs(10);
const FORWARD_POLL: Duration = Duration::from_millis(20);
