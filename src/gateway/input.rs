//! Upstream requests that wait for the client's input, and the calls
//! parked while they wait: the broker behind multi-round-trip requests
//! (MCP 2026-07-28, SEP-2322 `InputRequiredResult`), reusable wherever an
//! upstream's question must be answered later, by another HTTP request
//! (a retried call; a task's `tasks/update` in status `input_required`).
//!
//! An upstream on a 2025 revision asks its client with ordinary requests
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`) and waits
//! for the answers. A 2026-07-28 client on the stateless endpoint has no
//! session to receive them; it expects the question in a result and answers
//! in its next request. This module joins the two:
//!
//! - [`channel`] makes an [`Asker`] and its [`Inbox`]. The asker goes into
//!   the call's `Downstream` (`relay::Downstream::input`); the relay hands
//!   it the upstream's request instead of sending it to a client session,
//!   and the upstream's request waits until the inbox answers it.
//! - The [`Asker`] checks the capabilities the client declared for this
//!   request (2026-07-28: `_meta["io.modelcontextprotocol/clientCapabilities"]`,
//!   SEP-2575): a request the client did not declare a capability for is
//!   never shown to it; the upstream gets `-32021` and the inbox remembers
//!   the capability, so that a call that then fails can be answered with
//!   `MissingRequiredClientCapability` ([`Inbox::refused`]).
//! - Each question gets a key (the `inputRequests` map key): the upstream
//!   may suggest one in the request's `_meta[`[`INPUT_KEY_META`]`]`;
//!   otherwise `<kind>-<n>` (`elicitation-1`, `sampling-2`, `roots-1`),
//!   numbered per call, so that a client may answer in advance.
//! - [`Inbox::wait`] runs until the call ends or questions are waiting:
//!   questions the upstream sends together (within [`QUIET`] of each
//!   other) are collected into one [`Step::Input`].
//!   [`Inbox::deliver`] answers questions by key, checking each answer's
//!   shape against its question (`ElicitResult`, `CreateMessageResult`,
//!   `ListRootsResult`); answers to questions not (yet) asked are kept for
//!   the rest of the request that brought them, then dropped. Unknown keys
//!   are ignored (SEP-2322: servers ignore what they do not recognize).
//! - [`Pending`] is a call waiting for input: its inbox, its outcome, and
//!   a guard that cancels the upstream call when the pending call is
//!   dropped (expired, refused, evicted). [`PendingCalls`] keeps them in
//!   memory, each with its owner, its round and a deadline, bounded in
//!   total and per owner. [`PendingCalls::take`] hands a call out once per
//!   round and only to its owner: a replayed or stale round finds nothing,
//!   and a caller who is not the owner neither gets nor disturbs it.
//!
//! The signed `requestState` that names a pending call is
//! `mcpgate_core::mcp::request_state`; the 2026-07-28 handler that uses
//! both is `crate::mcp::mrtr`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ClientCapabilities, ClientResult, CreateMessageResult, ElicitResult, ErrorCode, InputRequest,
    InputRequests, InputResponses, ListRootsResult, ServerRequest,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::DropGuard;

/// The `_meta` key by which an upstream may name the key of its request in
/// `inputRequests` (a 2025 request has no such key of its own).
pub const INPUT_KEY_META: &str = "mcpgate/inputKey";
/// Questions arriving within this time of each other are sent together.
pub const QUIET: Duration = Duration::from_millis(60);
/// At most this many questions in one `InputRequiredResult`.
const MAX_QUESTIONS: usize = 32;
/// Longest key accepted from an upstream's hint.
const MAX_KEY_LEN: usize = 64;

/// What an upstream asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Sampling,
    Elicitation,
    Roots,
}

impl Kind {
    fn of(request: &InputRequest) -> Option<Self> {
        match request {
            InputRequest::CreateMessage(_) => Some(Self::Sampling),
            InputRequest::Elicitation(_) => Some(Self::Elicitation),
            InputRequest::ListRoots(_) => Some(Self::Roots),
            _ => None,
        }
    }

    /// The client capability the request needs (its name in
    /// `ClientCapabilities`), also the prefix of default keys.
    pub fn capability(self) -> &'static str {
        match self {
            Self::Sampling => "sampling",
            Self::Elicitation => "elicitation",
            Self::Roots => "roots",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::Sampling => "sampling/createMessage",
            Self::Elicitation => "elicitation/create",
            Self::Roots => "roots/list",
        }
    }

    fn declared(self, caps: &ClientCapabilities) -> bool {
        match self {
            Self::Sampling => caps.sampling.is_some(),
            Self::Elicitation => caps.elicitation.is_some(),
            Self::Roots => caps.roots.is_some(),
        }
    }

    /// Reads the client's answer, or says what is wrong with it.
    fn parse(self, answer: &Value) -> Result<ClientResult, String> {
        let r = match self {
            Self::Sampling => serde_json::from_value::<CreateMessageResult>(answer.clone())
                .map(|r| ClientResult::CreateMessageResult(Box::new(r))),
            Self::Elicitation => serde_json::from_value::<ElicitResult>(answer.clone())
                .map(ClientResult::ElicitResult),
            Self::Roots => serde_json::from_value::<ListRootsResult>(answer.clone())
                .map(ClientResult::ListRootsResult),
        };
        r.map_err(|e| format!("not a valid {} result: {e}", self.method()))
    }
}

/// A question of the upstream, waiting for the client.
struct Question {
    kind: Kind,
    request: InputRequest,
    reply: oneshot::Sender<Result<ClientResult, McpError>>,
}

struct Ask {
    key: String,
    question: Question,
}

#[derive(Default)]
struct Shared {
    /// Capabilities the call needed and the client had not declared.
    refused: Mutex<BTreeMap<&'static str, ()>>,
    /// Questions asked so far, per kind (for default keys).
    counts: Mutex<HashMap<Kind, u32>>,
}

/// Where the relay puts an upstream's question for the client
/// (`relay::Downstream::input`).
#[derive(Clone)]
pub struct Asker {
    tx: mpsc::Sender<Ask>,
    declared: Arc<Option<ClientCapabilities>>,
    shared: Arc<Shared>,
}

/// The other side of an [`Asker`]: the questions waiting for the client.
pub struct Inbox {
    rx: mpsc::Receiver<Ask>,
    outstanding: BTreeMap<String, Question>,
    early: InputResponses,
    shared: Arc<Shared>,
}

/// An asker and its inbox, for a call whose client declared `declared`
/// (`None`: nothing declared).
pub fn channel(declared: Option<ClientCapabilities>) -> (Asker, Inbox) {
    let (tx, rx) = mpsc::channel(MAX_QUESTIONS);
    let shared = Arc::new(Shared::default());
    (
        Asker {
            tx,
            declared: Arc::new(declared),
            shared: shared.clone(),
        },
        Inbox {
            rx,
            outstanding: BTreeMap::new(),
            early: InputResponses::new(),
            shared,
        },
    )
}

/// The error an upstream's request gets when the client cannot be asked.
fn not_asked(message: String) -> McpError {
    McpError::internal_error(message, None)
}

/// `-32021` naming `capabilities` (SEP-2575: `data.requiredCapabilities` is
/// a `ClientCapabilities` object).
pub fn missing_capabilities<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> McpError {
    let required: serde_json::Map<String, Value> = capabilities
        .into_iter()
        .map(|c| (c.to_string(), Value::Object(Default::default())))
        .collect();
    let names: Vec<&String> = required.keys().collect();
    McpError::new(
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("the request needs client capabilities it did not declare: {names:?}"),
        Some(serde_json::json!({ "requiredCapabilities": required })),
    )
}

fn valid_hint(hint: &str) -> bool {
    !hint.is_empty()
        && hint.len() <= MAX_KEY_LEN
        && hint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

impl Asker {
    /// Puts the upstream's request to the client and waits for its answer.
    /// `hint`: the key the upstream suggested ([`INPUT_KEY_META`]).
    pub async fn ask(
        &self,
        request: ServerRequest,
        hint: Option<&str>,
    ) -> Result<ClientResult, McpError> {
        let request = match request {
            ServerRequest::CreateMessageRequest(r) => InputRequest::CreateMessage(r),
            ServerRequest::ElicitRequest(r) => InputRequest::Elicitation(r),
            ServerRequest::ListRootsRequest(r) => InputRequest::ListRoots(r),
            _ => {
                return Err(not_asked(
                    "only sampling, elicitation and roots requests can be put to a client in an InputRequiredResult".into(),
                ));
            }
        };
        let Some(kind) = Kind::of(&request) else {
            return Err(not_asked("unsupported input request".into()));
        };
        let declared = (*self.declared)
            .as_ref()
            .is_some_and(|caps| kind.declared(caps));
        if !declared {
            if let Ok(mut r) = self.shared.refused.lock() {
                r.insert(kind.capability(), ());
            }
            return Err(missing_capabilities([kind.capability()]));
        }
        let n = match self.shared.counts.lock() {
            Ok(mut c) => {
                let n = c.entry(kind).or_insert(0);
                *n += 1;
                *n
            }
            Err(_) => 1,
        };
        let key = match hint {
            Some(h) if valid_hint(h) => h.to_string(),
            _ => format!("{}-{n}", kind.capability()),
        };
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            key,
            question: Question {
                kind,
                request,
                reply,
            },
        };
        if self.tx.send(ask).await.is_err() {
            return Err(not_asked(
                "the client's request this belongs to is no longer pending".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(not_asked(
                "the client did not answer before its request was given up".into(),
            ))
        })
    }
}

/// What [`Inbox::wait`] found.
pub enum Step<T> {
    /// The call ended.
    Done(T),
    /// Questions wait for the client (every unanswered one).
    Input(InputRequests),
    /// An answer the client gave in advance does not fit its question.
    Invalid(McpError),
}

impl Inbox {
    /// The questions not yet answered.
    pub fn questions(&self) -> InputRequests {
        self.outstanding
            .iter()
            .map(|(k, q)| (k.clone(), q.request.clone()))
            .collect()
    }

    /// The capabilities the upstream needed and the client had not
    /// declared, if any.
    pub fn refused(&self) -> Vec<&'static str> {
        self.shared
            .refused
            .lock()
            .map(|r| r.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Answers waiting questions from `responses` (by key). All answers to
    /// waiting questions are checked first; if one does not fit, nothing
    /// is answered and the error says which (`-32602`). Answers to
    /// questions not asked yet are kept until [`Self::forget_early`].
    pub fn deliver(&mut self, responses: InputResponses) -> Result<(), McpError> {
        let mut parsed = Vec::new();
        for (key, answer) in &responses {
            if let Some(q) = self.outstanding.get(key) {
                let r = q
                    .kind
                    .parse(answer)
                    .map_err(|why| invalid_answer(key, &why))?;
                parsed.push((key.clone(), r));
            }
        }
        for (key, r) in parsed {
            if let Some(q) = self.outstanding.remove(&key) {
                let _ = q.reply.send(Ok(r));
            }
        }
        self.early = responses
            .into_iter()
            .filter(|(k, _)| !self.outstanding.contains_key(k))
            .collect();
        Ok(())
    }

    /// Drops answers given in advance (at the end of the request that
    /// brought them).
    pub fn forget_early(&mut self) {
        self.early.clear();
    }

    /// Takes a question from the upstream: answered at once from an answer
    /// given in advance, or kept waiting. `Err`: that answer did not fit.
    fn take(&mut self, ask: Ask) -> Result<(), McpError> {
        let Ask { mut key, question } = ask;
        if let Some(answer) = self.early.remove(&key) {
            return match question.kind.parse(&answer) {
                Ok(r) => {
                    let _ = question.reply.send(Ok(r));
                    Ok(())
                }
                Err(why) => {
                    let e = invalid_answer(&key, &why);
                    let _ = question
                        .reply
                        .send(Err(not_asked("the client's answer was not valid".into())));
                    Err(e)
                }
            };
        }
        if self.outstanding.contains_key(&key) {
            // Two questions suggested the same key: the later one gets a
            // fresh one.
            let base = key.clone();
            let mut i = 2;
            while self.outstanding.contains_key(&key) {
                key = format!("{base}-{i}");
                i += 1;
            }
        }
        if self.outstanding.len() >= MAX_QUESTIONS {
            let _ = question.reply.send(Err(not_asked(
                "too many questions are waiting for the client".into(),
            )));
            return Ok(());
        }
        self.outstanding.insert(key, question);
        Ok(())
    }

    /// Waits until `done` completes or questions wait for the client; see
    /// the module documentation. Questions already waiting (not answered by
    /// the last delivery) are returned once [`QUIET`] passes without a new
    /// one.
    pub async fn wait<F: Future + Unpin>(&mut self, done: &mut F) -> Step<F::Output> {
        loop {
            if self.outstanding.is_empty() {
                tokio::select! {
                    biased;
                    r = &mut *done => return Step::Done(r),
                    ask = self.rx.recv() => match ask {
                        Some(ask) => {
                            if let Err(e) = self.take(ask) {
                                return Step::Invalid(e);
                            }
                        }
                        None => return Step::Done(done.await),
                    },
                }
                continue;
            }
            // Collect what else the upstream sends with it.
            loop {
                if self.outstanding.len() >= MAX_QUESTIONS {
                    return Step::Input(self.questions());
                }
                tokio::select! {
                    biased;
                    r = &mut *done => return Step::Done(r),
                    ask = tokio::time::timeout(QUIET, self.rx.recv()) => match ask {
                        Ok(Some(ask)) => {
                            if let Err(e) = self.take(ask) {
                                return Step::Invalid(e);
                            }
                        }
                        Ok(None) | Err(_) => break,
                    },
                }
            }
            if !self.outstanding.is_empty() {
                return Step::Input(self.questions());
            }
        }
    }
}

fn invalid_answer(key: &str, why: &str) -> McpError {
    McpError::invalid_params(
        format!("inputResponses[{key:?}] is {why}"),
        Some(serde_json::json!({ "inputResponse": key })),
    )
}

/// A call waiting for its client's input.
pub struct Pending<T> {
    pub inbox: Inbox,
    /// The call itself, running on its own.
    pub done: JoinHandle<T>,
    /// The last round handed to the client (0: none yet).
    pub round: u32,
    /// Cancels the call when the pending call is dropped.
    _cancel: DropGuard,
}

impl<T> Pending<T> {
    /// `cancel`: the call's cancellation token, cancelled when this is
    /// dropped before the call ends.
    pub fn new(
        inbox: Inbox,
        done: JoinHandle<T>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            inbox,
            done,
            round: 0,
            _cancel: cancel.drop_guard(),
        }
    }

    /// [`Inbox::wait`] on this call.
    pub async fn wait(&mut self) -> Step<Result<T, tokio::task::JoinError>> {
        self.inbox.wait(&mut self.done).await
    }
}

/// Bounds of [`PendingCalls`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a call waits for its client's next request.
    pub ttl: Duration,
    pub max_total: usize,
    pub max_per_owner: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(120),
            max_total: 1024,
            max_per_owner: 16,
        }
    }
}

/// Why [`PendingCalls::park`] or [`PendingCalls::take`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many calls wait for input (in total, or of this owner).
    Full,
    /// No such call waits in that round for that owner (unknown, expired,
    /// already taken, or somebody else's).
    NotPending,
}

struct Slot<T> {
    owner: String,
    round: u32,
    pending: Pending<T>,
}

type Slots<T> = Mutex<HashMap<String, Slot<T>>>;

/// The calls of this instance that wait for input, by id.
pub struct PendingCalls<T> {
    slots: Arc<Slots<T>>,
    limits: Limits,
}

impl<T: Send + 'static> PendingCalls<T> {
    pub fn new(limits: Limits) -> Self {
        Self {
            slots: Arc::default(),
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `pending` (in its round `pending.round`) as call `id` of
    /// `owner` until taken or until the limits' `ttl` passes. When refused,
    /// the call is dropped (and so cancelled).
    pub fn park(&self, id: &str, owner: &str, pending: Pending<T>) -> Result<(), Refused> {
        let round = pending.round;
        {
            let Ok(mut slots) = self.slots.lock() else {
                return Err(Refused::Full);
            };
            let mine = slots.values().filter(|s| s.owner == owner).count();
            if slots.len() >= self.limits.max_total || mine >= self.limits.max_per_owner {
                return Err(Refused::Full);
            }
            slots.insert(
                id.to_string(),
                Slot {
                    owner: owner.to_string(),
                    round,
                    pending,
                },
            );
        }
        let weak: Weak<Slots<T>> = Arc::downgrade(&self.slots);
        let id = id.to_string();
        let ttl = self.limits.ttl;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(slots) = weak.upgrade() {
                let expired = slots.lock().ok().and_then(|mut s| {
                    if s.get(&id).is_some_and(|slot| slot.round == round) {
                        s.remove(&id)
                    } else {
                        None
                    }
                });
                if expired.is_some() {
                    tracing::debug!(call = %id, round, "a call waiting for input expired");
                }
                // Dropped here, outside the lock: cancels the call.
                drop(expired);
            }
        });
        Ok(())
    }

    /// Hands out call `id` in `round` to `owner`, once. A caller who is not
    /// the owner gets [`Refused::NotPending`] and the call stays.
    pub fn take(&self, id: &str, owner: &str, round: u32) -> Result<Pending<T>, Refused> {
        let mut slots = self.slots.lock().map_err(|_| Refused::NotPending)?;
        match slots.get(id) {
            Some(s) if s.owner == owner && s.round == round => slots
                .remove(id)
                .map(|s| s.pending)
                .ok_or(Refused::NotPending),
            _ => Err(Refused::NotPending),
        }
    }
}

#[cfg(test)]
mod tests;
