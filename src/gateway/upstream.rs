//! One configured upstream and its connections.
//!
//! A connection lives in a *slot*: one slot for a shared upstream, one per
//! user for a per-user upstream. Each slot has a supervisor task that
//! starts the upstream (a child process or an HTTP session), publishes the
//! live connection, waits for it to end, and starts it again with
//! exponential backoff (0.5 s doubling to 30 s) until the slot is closed
//! (shutdown, or a per-user slot idle for `idle_timeout`).
//!
//! Requests never hang on a broken upstream: a request in flight when the
//! upstream dies fails at once (the transport closes), a request made while
//! it restarts fails at once with the last error, and every request has
//! `request_timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcpgate_core::mcp::bearer::{Caller, Subject};
use rmcp::model::Tool;
use rmcp::{ErrorData as McpError, Peer, RoleClient};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::{HttpTransport, Isolation, UpstreamConfig};
use super::env::Protected;
use super::identity::JwtSigner;
use super::listen::{Change, Event, ListenHub, Source};
use super::relay::RelayState;

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Identity passed to per-user upstreams (environment variables for a
/// process, headers for an HTTP server).
pub const ENV_USER_ID: &str = "MCPGATE_USER_ID";
pub const ENV_USER_NAME: &str = "MCPGATE_USER_NAME";
pub const HEADER_USER_ID: &str = "x-mcpgate-user-id";
pub const HEADER_USER_NAME: &str = "x-mcpgate-user-name";
/// `user` or `service`: a service (client credentials grant) has no user;
/// it is named by its client instead, never by the user variables.
pub const ENV_SUBJECT_TYPE: &str = "MCPGATE_SUBJECT_TYPE";
pub const ENV_CLIENT_ID: &str = "MCPGATE_CLIENT_ID";
pub const ENV_CLIENT_NAME: &str = "MCPGATE_CLIENT_NAME";
pub const HEADER_SUBJECT_TYPE: &str = "x-mcpgate-subject-type";
pub const HEADER_CLIENT_ID: &str = "x-mcpgate-client-id";
pub const HEADER_CLIENT_NAME: &str = "x-mcpgate-client-name";

/// The identity variables of a caller, as (environment name, header name,
/// value): a user's id and name, or a service's client id and name; and
/// the subject type either way.
pub fn identity_values(c: &Caller) -> Vec<(&'static str, &'static str, String)> {
    match &c.subject {
        Subject::User { id, username } => vec![
            (ENV_SUBJECT_TYPE, HEADER_SUBJECT_TYPE, "user".to_string()),
            (ENV_USER_ID, HEADER_USER_ID, id.clone()),
            (ENV_USER_NAME, HEADER_USER_NAME, username.clone()),
        ],
        Subject::Service { name } => vec![
            (ENV_SUBJECT_TYPE, HEADER_SUBJECT_TYPE, "service".to_string()),
            (ENV_CLIENT_ID, HEADER_CLIENT_ID, c.client_id.to_string()),
            (ENV_CLIENT_NAME, HEADER_CLIENT_NAME, name.clone()),
        ],
    }
}

/// A live connection.
#[derive(Clone)]
pub struct Conn {
    pub peer: Peer<RoleClient>,
    /// A stdio upstream's direct path for calls (`super::stdio::lane`).
    pub lane: Option<Arc<super::stdio::lane::Lane>>,
    pub relay: Arc<RelayState>,
    /// The upstream's tools as last listed (for routing unprefixed names).
    pub tools: Arc<Mutex<Option<Vec<Tool>>>>,
}

struct Slot {
    conn: watch::Sender<Option<Conn>>,
    ct: CancellationToken,
    last_used: Mutex<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not started yet (per-user upstreams start on first use).
    Idle,
    Starting,
    Running,
    /// Failed or exited; waiting to start again.
    Restarting,
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub transport: &'static str,
    pub isolation: Isolation,
    pub state: State,
    pub connections: usize,
    pub restarts: u64,
    pub last_error: Option<String>,
}

pub struct Upstream {
    pub cfg: UpstreamConfig,
    /// The name as the `upstream` label of the metrics.
    pub metric_name: crate::telemetry::labels::Name,
    signer: Option<Arc<JwtSigner>>,
    /// Variables never inherited by a stdio upstream.
    protected: Arc<Protected>,
    /// Extra trusted roots of HTTP upstreams (`outbound_ca_file`).
    outbound: crate::outbound::OutboundSettings,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    status: Mutex<(State, u64, Option<String>)>,
    cancel: CancellationToken,
    /// The listen streams the connections' notifications go to.
    pub listen: Arc<ListenHub>,
    /// Per-user OAuth (`auth = "oauth"` upstreams; set once the server's
    /// store is open, `Gateway::attach_oauth`).
    pub oauth: OAuthSlot,
}

/// The upstream OAuth service, shared by the gateway and its upstreams.
pub type OAuthSlot = Arc<std::sync::OnceLock<Arc<crate::upstream_oauth::UpstreamOAuth>>>;

impl Upstream {
    pub fn new(
        cfg: UpstreamConfig,
        cancel: CancellationToken,
        issuer: &str,
        protected: Arc<Protected>,
        outbound: &crate::outbound::OutboundSettings,
        listen: Arc<ListenHub>,
        oauth: OAuthSlot,
    ) -> Result<Self, String> {
        let signer = match (&cfg.identity_jwt, &cfg.url) {
            (Some(j), Some(url)) => Some(Arc::new(
                JwtSigner::new(j, issuer, url)
                    .map_err(|e| format!("upstream {:?}: {e}", cfg.name))?,
            )),
            _ => None,
        };
        Ok(Self {
            metric_name: crate::telemetry::labels::Name::new(&cfg.name),
            cfg,
            signer,
            protected,
            outbound: outbound.clone(),
            slots: Mutex::default(),
            status: Mutex::new((State::Idle, 0, None)),
            cancel,
            listen,
            oauth,
        })
    }

    /// For an `auth = "oauth"` upstream: whether `caller` (a user) has
    /// connected an account there. Other upstreams: always.
    pub async fn usable_by(&self, caller: &Caller) -> bool {
        if !self.cfg.is_oauth() {
            return true;
        }
        match (self.oauth.get(), caller.user()) {
            (Some(o), Some((user_id, _))) => o.is_connected(user_id, &self.cfg.name).await,
            _ => false,
        }
    }

    /// Stops every connection for good (the upstream was removed or
    /// changed by a reload; its replacement has connections of its own).
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Stops the connection of `owner` (after a disconnect).
    pub fn stop_owner(&self, owner: &str) {
        let slot = self.slots.lock().ok().and_then(|s| s.get(owner).cloned());
        if let Some(slot) = slot {
            slot.ct.cancel();
        }
    }

    pub fn status(&self) -> Status {
        let (state, restarts, last_error) =
            self.status
                .lock()
                .map(|s| s.clone())
                .unwrap_or((State::Stopped, 0, None));
        Status {
            name: self.cfg.name.clone(),
            transport: match (&self.cfg.command, self.cfg.transport) {
                (Some(_), _) => "stdio",
                (None, HttpTransport::StreamableHttp) => "streamable_http",
                (None, HttpTransport::Sse) => "sse",
            },
            isolation: self.cfg.isolation,
            state,
            connections: self
                .slots
                .lock()
                .map(|s| {
                    s.values()
                        .filter(|slot| slot.conn.borrow().is_some())
                        .count()
                })
                .unwrap_or(0),
            restarts,
            last_error,
        }
    }

    fn set_state(&self, state: State, error: Option<String>, restarted: bool) {
        if let Some(m) = crate::telemetry::metrics::get() {
            m.upstream_state(&self.metric_name, state.into(), restarted);
        }
        if let Ok(mut s) = self.status.lock() {
            s.0 = state;
            if restarted {
                s.1 += 1;
            }
            if error.is_some() {
                s.2 = error;
            }
        }
    }

    fn key_for(&self, caller: Option<&Caller>) -> String {
        match (self.cfg.isolation, caller) {
            (Isolation::PerUser, Some(c)) => c.owner(),
            _ => String::new(),
        }
    }

    /// The connection `caller` uses, as the listen streams know it.
    pub fn source(&self, caller: &Caller) -> Source {
        Source {
            upstream: self.cfg.name.clone(),
            owner: (self.cfg.isolation == Isolation::PerUser).then(|| caller.owner()),
        }
    }

    /// Ends every connection of this upstream (the admin console's restart
    /// button): a shared upstream starts again at once, per-user ones at
    /// each user's next request. In-flight requests on the old connections
    /// fail; `restarts` counts only automatic restarts after failures.
    pub fn restart(self: &Arc<Self>) {
        let old: Vec<Arc<Slot>> = match self.slots.lock() {
            Ok(mut slots) => slots.drain().map(|(_, slot)| slot).collect(),
            Err(poisoned) => poisoned.into_inner().drain().map(|(_, s)| s).collect(),
        };
        for slot in old {
            slot.ct.cancel();
        }
        tracing::info!(event = "gateway.upstream_restart", upstream = %self.cfg.name, "upstream restarted by an admin");
        self.start_shared();
    }

    /// Starts the shared connection now (shared upstreams start with the server).
    pub fn start_shared(self: &Arc<Self>) {
        if self.cfg.isolation == Isolation::Shared {
            self.slot(None);
        }
    }

    fn slot(self: &Arc<Self>, caller: Option<&Caller>) -> Arc<Slot> {
        let key = self.key_for(caller);
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(s) = slots.get(&key) {
            return s.clone();
        }
        let (tx, _) = watch::channel(None);
        let slot = Arc::new(Slot {
            conn: tx,
            ct: self.cancel.child_token(),
            last_used: Mutex::new(Instant::now()),
        });
        slots.insert(key.clone(), slot.clone());
        let identity = caller
            .filter(|_| self.cfg.isolation == Isolation::PerUser)
            .cloned();
        tokio::spawn(supervise(self.clone(), slot.clone(), key, identity));
        slot
    }

    /// The live connection for `caller`, starting it if needed. Waits at
    /// most `startup_timeout` for a first start; fails at once while the
    /// upstream is restarting after a failure.
    pub async fn conn_for(self: &Arc<Self>, caller: &Caller) -> Result<Conn, McpError> {
        if !self.usable_by(caller).await {
            return Err(McpError::invalid_request(
                format!(
                    "{} is not connected for this user: call the {} tool first",
                    self.cfg.name,
                    super::exposed(self.cfg.prefix(), super::CONNECT_TOOL)
                ),
                None,
            ));
        }
        let slot = self.slot(Some(caller));
        if let Ok(mut t) = slot.last_used.lock() {
            *t = Instant::now();
        }
        if let Some(c) = slot.conn.borrow().clone() {
            return Ok(c);
        }
        let (state, _, last_error) =
            self.status
                .lock()
                .map(|s| s.clone())
                .unwrap_or((State::Stopped, 0, None));
        if state == State::Restarting {
            return Err(self.unavailable(last_error));
        }
        let mut rx = slot.conn.subscribe();
        match tokio::time::timeout(self.cfg.startup_timeout, rx.wait_for(Option::is_some)).await {
            Ok(Ok(c)) => c.clone().ok_or_else(|| self.unavailable(None)),
            _ => {
                let last = self.status.lock().ok().and_then(|s| s.2.clone());
                Err(self.unavailable(last))
            }
        }
    }

    fn unavailable(&self, last_error: Option<String>) -> McpError {
        McpError::internal_error(
            format!(
                "upstream {} is not available{}; try again shortly",
                self.cfg.name,
                last_error.map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            None,
        )
    }

    /// The live connection for `caller`, if there is one (none is started).
    pub fn live_conn(&self, caller: &Caller) -> Option<Conn> {
        let key = self.key_for(Some(caller));
        let slot = self.slots.lock().ok()?.get(&key)?.clone();
        slot.conn.borrow().clone()
    }

    /// Stops per-user connections idle longer than `idle_timeout`.
    pub fn reap_idle(&self) {
        if self.cfg.isolation != Isolation::PerUser {
            return;
        }
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|key, slot| {
                let idle = slot
                    .last_used
                    .lock()
                    .map(|t| t.elapsed())
                    .unwrap_or_default();
                let busy = slot
                    .conn
                    .borrow()
                    .as_ref()
                    .is_some_and(|c| c.relay.in_flight() > 0);
                // A listen stream holding a resource subscription on the
                // connection still needs it.
                let held = || {
                    !self
                        .listen
                        .held_uris(&Source {
                            upstream: self.cfg.name.clone(),
                            owner: Some(key.clone()),
                        })
                        .is_empty()
                };
                let busy = busy || held();
                let keep = busy || idle < self.cfg.idle_timeout;
                if !keep {
                    slot.ct.cancel();
                }
                keep
            });
        }
    }

    /// Removes `slot` from the map, but only if it is still the one under
    /// `key` (a new slot may have been made for the user since).
    fn drop_slot(&self, key: &str, slot: &Arc<Slot>) {
        if let Ok(mut slots) = self.slots.lock()
            && slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            slots.remove(key);
        }
    }
}

async fn supervise(up: Arc<Upstream>, slot: Arc<Slot>, key: String, identity: Option<Caller>) {
    let name = up.cfg.name.clone();
    let source = Source {
        upstream: name.clone(),
        owner: identity.as_ref().map(Caller::owner),
    };
    let mut backoff = BACKOFF_START;
    let mut first = true;
    let mut replaced = false;
    loop {
        if slot.ct.is_cancelled() {
            break;
        }
        up.set_state(
            if first {
                State::Starting
            } else {
                State::Restarting
            },
            None,
            !first,
        );
        first = false;
        let tools: Arc<Mutex<Option<Vec<Tool>>>> = Arc::default();
        let relay = Arc::new(
            RelayState::new(
                &name,
                up.cfg.isolation == Isolation::PerUser,
                up.cfg.request_timeout,
            )
            .with_listen(up.listen.clone(), source.clone())
            .with_tools_cache(tools.clone()),
        );
        let started = Instant::now();
        match tokio::time::timeout(
            up.cfg.startup_timeout,
            super::connector::connect(
                &up.cfg,
                &up.protected,
                &up.outbound,
                identity.as_ref(),
                up.signer.clone(),
                relay.clone(),
                up.oauth.get().cloned(),
            ),
        )
        .await
        {
            Ok(Ok((running, lane))) => {
                tracing::info!(upstream = %name, caller = identity.as_ref().map(|c| c.label()).unwrap_or_default(), "upstream started");
                let conn = Conn {
                    peer: running.peer().clone(),
                    lane,
                    relay,
                    tools,
                };
                if replaced {
                    tokio::spawn(reconnected(up.listen.clone(), source.clone(), conn.clone()));
                }
                replaced = true;
                slot.conn.send_replace(Some(conn));
                up.set_state(State::Running, None, false);
                let stop = running.cancellation_token();
                let ct = slot.ct.clone();
                let watcher = tokio::spawn(async move {
                    ct.cancelled().await;
                    stop.cancel();
                });
                let reason = running.waiting().await;
                watcher.abort();
                slot.conn.send_replace(None);
                if slot.ct.is_cancelled() {
                    break;
                }
                let msg = format!("exited ({reason:?})");
                tracing::warn!(event = "gateway.upstream_exited", upstream = %name, "upstream {msg}");
                // Its tools, prompts and resources are gone from the lists
                // until it is back (`reconnected` tells again then).
                publish_all(&up.listen, &source);
                up.set_state(State::Restarting, Some(msg), false);
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = BACKOFF_START;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(event = "gateway.upstream_failed", upstream = %name, error = %e, "upstream failed to start");
                up.set_state(State::Restarting, Some(e), false);
            }
            Err(_) => {
                let e = format!(
                    "did not start within {} s",
                    up.cfg.startup_timeout.as_secs()
                );
                tracing::warn!(event = "gateway.upstream_failed", upstream = %name, "upstream {e}");
                up.set_state(State::Restarting, Some(e), false);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = slot.ct.cancelled() => break,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    slot.conn.send_replace(None);
    if up.cfg.isolation == Isolation::PerUser {
        up.drop_slot(&key, &slot);
        tracing::info!(upstream = %name, "per-user upstream stopped");
        if up.slots.lock().map(|s| s.is_empty()).unwrap_or(false) {
            up.set_state(State::Idle, None, false);
        }
    } else if up
        .slots
        .lock()
        .map(|s| s.get(&key).is_none_or(|cur| Arc::ptr_eq(cur, &slot)))
        .unwrap_or(true)
    {
        // Not after a restart (`Upstream::restart`): the new slot's state stands.
        up.set_state(State::Stopped, None, false);
    }
}

/// A connection replaced one that ended: its lists may differ, and the
/// resource subscriptions listen streams held ended with the old one.
async fn reconnected(listen: Arc<ListenHub>, source: Source, conn: Conn) {
    for uri in listen.held_uris(&source) {
        if let Err(e) = conn
            .peer
            .subscribe(rmcp::model::SubscribeRequestParams::new(uri))
            .await
        {
            tracing::debug!(upstream = %source.upstream, error = %e, "resubscribing for listen streams failed");
        }
    }
    publish_all(&listen, &source);
}

/// Tells the listen streams that every list of `source` changed.
fn publish_all(listen: &ListenHub, source: &Source) {
    for c in [Change::Tools, Change::Prompts, Change::Resources] {
        listen.publish(source, Event::ListChanged(c));
    }
}
