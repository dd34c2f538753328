//! Tasks (SEP-2663, the `io.modelcontextprotocol/tasks` extension), run by
//! mcpgate on top of upstream tool calls.
//!
//! Upstreams speak the 2025 revisions, so mcpgate is the task receiver: for
//! a `tools/call` of a tool that declares task support, from a client that
//! declared the extension, [`Tasks::create`] stores a `working` task (so a
//! `tasks/get` right after the `CreateTaskResult` finds it: SEP-2663
//! §durable create), runs the upstream call in the background and stores
//! its outcome ([`wire::outcome`]: a tool error is `completed` with
//! `isError`, a protocol error `failed`). The rules are in
//! [`mcpgate_core::mcp::tasks`].
//!
//! - Everything about a task is in the [`Store`](crate::store::Store):
//!   its owner (user and client), upstream, status, result or error and
//!   expiry. `tasks/get` reads it there, so it works after a client
//!   reconnects and on any instance sharing a PostgreSQL database.
//! - `tasks/cancel` marks the task `cancelled` in the store (a terminal
//!   status no late result overwrites) and announces it on the cluster bus
//!   ([`crate::cluster::Event::TaskCancelled`]); the instance running the
//!   call cancels it, which sends `notifications/cancelled` upstream.
//! - A task is visible to the user and client that created it only; to
//!   anyone else `tasks/get`, `tasks/update` and `tasks/cancel` answer as
//!   for an unknown id (`-32602`).
//! - `tasks/update` reaches the call wherever it runs ([`forward`]).
//! - Expired tasks read as unknown and are deleted by the housekeeping
//!   (`Store::purge_expired`).
//!
//! `tasks/result` and `tasks/list` were removed by SEP-2663; rmcp answers
//! them `-32601`, and gates `tasks/*` on the client's declaration (`-32021`).

mod forward;
mod runner;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::mcp::tasks::{self as rules, Dispatch, TaskStatus, Ttl};
use rmcp::ErrorData as McpError;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, CancelTaskParams, ClientCapabilities, CreateTaskResult, GetTaskParams,
    GetTaskResult, JsonObject, RequestId, ServerResult, UpdateTaskParams,
};
use rmcp::service::RequestContext;

use crate::mcp::client_link::{self, ClientLink};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, Event};
use crate::gateway::input::{self, Pending};
use crate::gateway::relay::Downstream;
use crate::gateway::{Call, Gateway};
use crate::mcp::mrtr::{Escalation, Outcome};
use crate::store::{TaskRecord, TaskUpdate};

struct Running {
    owner: String,
    ct: CancellationToken,
    /// Where `tasks/update` hands the client's answers to the runner.
    input: mpsc::Sender<runner::Delivery>,
}

/// The call a task runs: an upstream tool, with what the relay needs to
/// put the upstream's questions to the client (through the task's
/// `inputRequests`).
pub struct TaskCall {
    /// The upstream serving the tool, and the tool's exposed name.
    pub upstream: String,
    pub name: String,
    pub args: Option<JsonObject>,
    /// The capabilities the creating request declared: only questions of
    /// those kinds are put to the client.
    pub declared: Option<ClientCapabilities>,
    /// The creating request's session link and id (the relay's `Downstream`).
    pub link: ClientLink,
    pub request: RequestId,
}

/// A `tools/call` that may become a task ([`Tasks::plan`]).
pub struct Plan {
    tasks: Arc<Tasks>,
    upstream: String,
}

impl Plan {
    /// For a 2026-07-28 request (multi-round-trip requests,
    /// `crate::mcp::mrtr`): the call runs as an ordinary one first, and
    /// becomes a task once it has neither ended nor asked the client for
    /// [`rules::ESCALATE_AFTER_MS`] (SEP-2663: the immediate-result shortcut,
    /// and input gathered by multi-round-trip requests before the task).
    pub fn escalation(self, caller: Caller, name: String) -> Escalation {
        let Plan { tasks, upstream } = self;
        Escalation {
            after: Duration::from_millis(rules::ESCALATE_AFTER_MS),
            into_task: Box::new(move |pending| {
                Box::pin(async move { tasks.adopt(&caller, upstream, name, pending).await })
            }),
        }
    }

    /// For a request of a session (earlier revisions): a task at once.
    pub async fn create(
        self,
        caller: &Caller,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CreateTaskResult, McpError> {
        let call = TaskCall {
            upstream: self.upstream,
            name: request.name.to_string(),
            args: request.arguments.clone(),
            declared: client_link::capabilities_of(context),
            link: client_link::of_request(context),
            request: context.id.clone(),
        };
        self.tasks.create(caller, call).await
    }
}

/// The tasks of this instance's clients, and the calls it runs for them.
pub struct Tasks {
    gateway: Arc<Gateway>,
    cluster: Arc<Cluster>,
    ttl: Ttl,
    /// The upstream calls this instance runs, by task id, with their owner.
    running: Mutex<HashMap<String, Running>>,
    /// Cancelled at shutdown.
    shutdown: CancellationToken,
}

fn unknown_task(task_id: &str) -> McpError {
    McpError::invalid_params(format!("unknown task id {task_id:?}"), None)
}

fn store_error(e: crate::store::StoreError) -> McpError {
    tracing::error!(error = %e, "task store failed");
    McpError::internal_error("the task store failed", None)
}

impl Tasks {
    pub fn new(gateway: Arc<Gateway>, cluster: Arc<Cluster>, shutdown: CancellationToken) -> Self {
        Self {
            gateway,
            cluster,
            ttl: Ttl::DEFAULT,
            running: Mutex::default(),
            shutdown,
        }
    }

    /// Follows cancellations announced on the bus (from any instance)
    /// until shutdown.
    pub fn start(self: &Arc<Self>) {
        let tasks = Arc::downgrade(self);
        let mut rx = self.cluster.bus.subscribe();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = crate::cluster::bus::next(&mut rx) => e,
                };
                let Some(tasks) = tasks.upgrade() else { return };
                match event {
                    None => return,
                    Some(Event::TaskCancelled(id)) => tasks.stop_local(&id),
                    Some(Event::TaskInput(id)) => tasks.take_queued_input(&id),
                    Some(Event::Resync) => {
                        let ids: Vec<String> = tasks
                            .running
                            .lock()
                            .map(|r| r.keys().cloned().collect())
                            .unwrap_or_default();
                        for id in ids {
                            tasks.take_queued_input(&id);
                        }
                    }
                    Some(_) => {}
                }
            }
        });
    }

    fn stop_local(&self, task_id: &str) {
        if let Ok(running) = self.running.lock()
            && let Some(r) = running.get(task_id)
        {
            r.ct.cancel();
        }
    }

    /// Whether `request` may become a task: the upstream tool declares task
    /// support and the client declared the extension (SEP-2663: the server
    /// decides); `-32021` if the tool requires tasks and the client did not
    /// declare them; `None` for an ordinary call.
    pub async fn plan(
        self: &Arc<Self>,
        caller: &Caller,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<Plan>, McpError> {
        let Some((upstream, support)) = self.gateway.tool_task_support(caller, &request.name).await
        else {
            return Ok(None);
        };
        let declared = client_link::capabilities_of(context).is_some_and(|c| c.supports_tasks());
        match rules::dispatch(support, declared) {
            Dispatch::Sync => Ok(None),
            Dispatch::MissingCapability => Err(McpError::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            )),
            Dispatch::Task => Ok(Some(Plan {
                tasks: self.clone(),
                upstream,
            })),
        }
    }

    /// Creates a task for `call` (a call of an upstream tool) and starts
    /// it; returns the seed state.
    pub async fn create(
        self: &Arc<Self>,
        caller: &Caller,
        call: TaskCall,
    ) -> Result<CreateTaskResult, McpError> {
        let (asker, inbox) = input::channel(call.declared.clone());
        let downstream = Downstream {
            session: runner::session(),
            // As for the caller's other calls: on a shared connection, calls
            // of one owner in flight together are not ambiguous.
            owner: Some(caller.owner()),
            link: call.link.clone(),
            request: Some(call.request.clone()),
            inline: None,
            input: Some(asker),
            // A task runs detached from the request that created it: no
            // stream to carry log messages, and list changes reach its
            // client on a `subscriptions/listen` stream or its session.
            per_request: true,
            logs: crate::gateway::relay::LogFilter::Off,
        };
        let call_ct = CancellationToken::new();
        let gateway = self.gateway.clone();
        let (c, ct, name, args) = (
            caller.clone(),
            call_ct.clone(),
            call.name.clone(),
            call.args,
        );
        // The call runs in the trace of the `tools/call` that created the
        // task (its server span is the parent of the call's client span to
        // the upstream), though it outlives that request.
        let trace = opentelemetry::Context::current();
        let done = tokio::spawn(opentelemetry::context::FutureExt::with_context(
            async move {
                let call = Call {
                    caller: &c,
                    downstream: Some(downstream),
                    progress: None,
                    ct,
                };
                gateway
                    .call_tool(&call, &name, args)
                    .await
                    .unwrap_or_else(|| {
                        Err(McpError::invalid_params(
                            format!("no tool named {name:?}"),
                            None,
                        ))
                    })
                    .map(ServerResult::CallToolResult)
            },
            trace,
        ));
        // Dropping `pending` before the task owns it cancels the call.
        let pending = Pending::new(inbox, done, call_ct);
        self.adopt(caller, call.upstream, call.name, pending).await
    }

    /// Makes a call already running (with its input broker) a task of
    /// `caller`: stores it and runs it to its end; returns the seed state.
    /// Refused (and the call cancelled) beyond
    /// [`rules::MAX_RUNNING_PER_OWNER`] running tasks of the owner.
    pub async fn adopt(
        self: &Arc<Self>,
        caller: &Caller,
        upstream: String,
        name: String,
        pending: Pending<Outcome>,
    ) -> Result<CreateTaskResult, McpError> {
        let owner = caller.owner();
        let ct = self.shutdown.child_token();
        let task_id = mcpgate_core::crypto::random_uuid();
        let (input_tx, input_rx) = mpsc::channel(4);
        {
            let mut running = self
                .running
                .lock()
                .map_err(|_| McpError::internal_error("the task registry failed", None))?;
            let mine = running.values().filter(|r| r.owner == owner).count();
            if mine >= rules::MAX_RUNNING_PER_OWNER {
                return Err(McpError::invalid_request(
                    format!(
                        "{mine} of your tasks are running, the most allowed at once; \
                         wait for one to end or cancel one"
                    ),
                    None,
                ));
            }
            running.insert(
                task_id.clone(),
                Running {
                    owner: owner.clone(),
                    ct: ct.clone(),
                    input: input_tx,
                },
            );
        }
        let now_ms = self.cluster.clock.now_ms();
        let record = TaskRecord {
            task_id: task_id.clone(),
            owner,
            client_id: caller.client_id.to_string(),
            upstream,
            tool: name,
            instance_id: self.cluster.instance_id.clone(),
            status: TaskStatus::Working,
            status_message: None,
            result: None,
            error: None,
            input_requests: None,
            ttl_ms: i64::try_from(self.ttl.ms).unwrap_or(i64::MAX),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            expires_at: self.ttl.expires_at(now_ms),
        };
        if let Err(e) = self.cluster.store.create_task(&record).await {
            self.forget(&task_id);
            return Err(store_error(e));
        }
        tracing::info!(
            task = %record.task_id,
            user = %caller.label(),
            tool = ?record.tool,
            upstream = %record.upstream,
            "task created"
        );
        let me = self.clone();
        tokio::spawn(async move {
            runner::run(&me, task_id.clone(), pending, input_rx, ct).await;
            me.forget(&task_id);
        });
        Ok(CreateTaskResult::new(wire::task(&record)))
    }

    fn forget(&self, task_id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(task_id);
        }
    }

    /// Stores a change of the task's state (unless it is terminal already);
    /// returns whether it changed.
    async fn set(&self, task_id: &str, update: &TaskUpdate) -> bool {
        let now_ms = self.cluster.clock.now_ms();
        match self
            .cluster
            .store
            .update_task(task_id, update, now_ms)
            .await
        {
            Ok(changed) => changed,
            Err(e) => {
                tracing::error!(task = %task_id, error = %e, "cannot store the task's state");
                false
            }
        }
    }

    /// The caller's live task with this id; `-32602` for an unknown,
    /// expired, or someone else's task alike.
    async fn visible(&self, caller: &Caller, task_id: &str) -> Result<TaskRecord, McpError> {
        let record = self
            .cluster
            .store
            .task(task_id)
            .await
            .map_err(store_error)?;
        match record {
            Some(r)
                if rules::visible_to(
                    &r.owner,
                    &r.client_id,
                    &caller.owner(),
                    caller.client_id.as_str(),
                ) && rules::is_live(r.expires_at, self.cluster.clock.now()) =>
            {
                Ok(r)
            }
            _ => Err(unknown_task(task_id)),
        }
    }

    /// `tasks/get`: the `DetailedTask`.
    pub async fn get(
        &self,
        caller: &Caller,
        params: GetTaskParams,
    ) -> Result<GetTaskResult, McpError> {
        let record = self.visible(caller, &params.task_id).await?;
        Ok(GetTaskResult::new(wire::detailed(&record)?))
    }

    /// `tasks/cancel`: an empty acknowledgement, also for a task already
    /// terminal (SEP-2663: idempotent).
    pub async fn cancel(&self, caller: &Caller, params: CancelTaskParams) -> Result<(), McpError> {
        let record = self.visible(caller, &params.task_id).await?;
        if !record.status.is_terminal() {
            let now_ms = self.cluster.clock.now_ms();
            let changed = self
                .cluster
                .store
                .update_task(
                    &record.task_id,
                    &TaskUpdate::status(TaskStatus::Cancelled),
                    now_ms,
                )
                .await
                .map_err(store_error)?;
            if changed {
                tracing::info!(task = %record.task_id, user = %caller.label(), "task cancelled");
                self.stop_local(&record.task_id);
                if let Err(e) = self
                    .cluster
                    .bus
                    .publish(Event::TaskCancelled(record.task_id.clone()))
                    .await
                {
                    tracing::warn!(task = %record.task_id, error = %e, "cannot announce the cancellation");
                }
            }
        }
        Ok(())
    }

    /// `tasks/update`: hands the answers to the task's upstream questions
    /// (`inputRequests`) to the call waiting for them, and acknowledges once
    /// the task's new state is stored (so the next `tasks/get` shows it).
    /// Answers to keys not outstanding are ignored (SEP-2663); an answer
    /// that does not fit its question is `-32602`, answering nothing.
    pub async fn update(&self, caller: &Caller, params: UpdateTaskParams) -> Result<(), McpError> {
        let record = self.visible(caller, &params.task_id).await?;
        if record.status.is_terminal() || params.input_responses.is_empty() {
            return Ok(());
        }
        let input = self
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(&record.task_id).map(|r| r.input.clone()));
        let Some(input) = input else {
            if record.instance_id == self.cluster.instance_id {
                // Not running here any more: nothing waits for input.
                return Ok(());
            }
            return self
                .forward_input(&record.task_id, params.input_responses)
                .await;
        };
        let (reply, answer) = oneshot::channel();
        let sent = input
            .send(runner::Delivery {
                responses: params.input_responses,
                reply,
            })
            .await;
        if sent.is_err() {
            // The call ended meanwhile: nothing waits for input any more.
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }
}
