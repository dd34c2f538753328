//! Live configuration reload: `SIGHUP` to the server, or `mcpgate reload`
//! (which posts to `POST <public_url>/admin/reload` with the operator
//! token, [`crate::http::reload`]). See docs/operations.md, "Reload".
//!
//! A reload reads the configuration exactly as start-up did (the same
//! file, the environment as it is now, the same flags: [`Loader`]) and
//! checks it as start-up does ([`Settings::resolve`], the policy compiled
//! against the store's groups). If anything is wrong, nothing changes: the
//! running configuration stays in force and one error names the problem.
//!
//! What changes live ([`LIVE`]): `[[upstream]]` (only the upstreams added,
//! removed or changed restart, `crate::gateway::reload`), `[[policy]]` and
//! `default_policy` (with their rate limits), `[[identity_provider]]` and
//! `password_login`, `allowed_hosts` and `allowed_origins`. Every other
//! setting is fixed at start (the listener, the database, the public URL,
//! TLS, scopes, token lifetimes, ...): a change is logged as needing a
//! restart, naming the setting, and its running value is kept.
//!
//! When the catalog a client can see may have changed, open sessions and
//! `subscriptions/listen` streams get `notifications/*/list_changed`
//! (`Gateway::announce`); each then reads its own, filtered, list.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;

use crate::auth::AuthServer;
use crate::config::{ConfigError, Settings};
use crate::federation::Federation;
use crate::gateway::Gateway;
use crate::live::Live;
use crate::mcp::gate::OriginPolicy;

/// The settings a reload puts in force; all others need a restart.
pub const LIVE: &[&str] = &[
    "upstream",
    "policy",
    "default_policy",
    "identity_provider",
    "password_login",
    "allowed_hosts",
    "allowed_origins",
];

/// Reads the configuration as start-up did.
pub type Loader = Box<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The server was started without a configuration source (tests that
    /// build settings in code).
    #[error("this server has no configuration source to reload")]
    NoSource,
    /// The configuration does not load or does not pass the start-up
    /// checks; the message names the problem.
    #[error("{0}")]
    Invalid(String),
}

/// What a reload did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Live settings whose value changed (and is now in force).
    pub changed: Vec<String>,
    /// Settings whose change needs a restart (running value kept); an
    /// `auth = "oauth"` upstream as `upstream.<name>`.
    pub needs_restart: Vec<String>,
    pub upstreams_added: Vec<String>,
    pub upstreams_removed: Vec<String>,
    pub upstreams_changed: Vec<String>,
    /// Open sessions told that lists changed.
    pub sessions_notified: usize,
}

/// The parts of a running server a reload replaces.
pub struct Reloader {
    loader: OnceLock<Loader>,
    /// The settings in force; held for the whole reload, so reloads run
    /// one at a time.
    running: tokio::sync::Mutex<Settings>,
    bound: SocketAddr,
    auth: Arc<AuthServer>,
    gateway: Arc<Gateway>,
    origin: Arc<Live<OriginPolicy>>,
    federation: Arc<Live<Federation>>,
}

/// The settings as a JSON object, key by key.
fn as_map(s: &Settings) -> Result<serde_json::Map<String, Value>, ReloadError> {
    match serde_json::to_value(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(ReloadError::Invalid(
            "the settings could not be compared".into(),
        )),
    }
}

impl Reloader {
    pub fn new(
        running: Settings,
        bound: SocketAddr,
        auth: Arc<AuthServer>,
        gateway: Arc<Gateway>,
        origin: Arc<Live<OriginPolicy>>,
        federation: Arc<Live<Federation>>,
    ) -> Self {
        Self {
            loader: OnceLock::new(),
            running: tokio::sync::Mutex::new(running),
            bound,
            auth,
            gateway,
            origin,
            federation,
        }
    }

    /// Sets where a reload reads the configuration (once).
    pub fn set_loader(&self, loader: Loader) {
        let _ = self.loader.set(loader);
    }

    /// Reloads; logs the outcome (one error line when nothing changed
    /// because the configuration is invalid).
    pub async fn reload(&self) -> Result<Report, ReloadError> {
        let result = self.try_reload().await;
        match &result {
            Ok(r) => {
                for name in &r.needs_restart {
                    tracing::warn!(
                        event = "config.reload_needs_restart",
                        setting = %name,
                        "configuration reload: {name} changed but needs a restart; the running value is kept"
                    );
                }
                tracing::info!(
                    event = "config.reloaded",
                    changed = ?r.changed,
                    upstreams_added = ?r.upstreams_added,
                    upstreams_removed = ?r.upstreams_removed,
                    upstreams_changed = ?r.upstreams_changed,
                    sessions_notified = r.sessions_notified,
                    "configuration reloaded"
                );
            }
            Err(e) => tracing::error!(
                event = "config.reload_failed",
                error = %e,
                "configuration reload failed; the running configuration is kept: {e}"
            ),
        }
        result
    }

    async fn try_reload(&self) -> Result<Report, ReloadError> {
        let loader = self.loader.get().ok_or(ReloadError::NoSource)?;
        let mut running = self.running.lock().await;
        let loaded = loader().map_err(|e| ReloadError::Invalid(e.to_string()))?;
        // The file as a whole must pass the start-up checks.
        loaded
            .resolve(self.bound)
            .map_err(|e| ReloadError::Invalid(e.to_string()))?;
        let old = as_map(&running)?;
        let new = as_map(&loaded)?;
        let mut report = Report::default();
        let mut effective = old.clone();
        for (key, value) in &new {
            if old.get(key) == Some(value) {
                continue;
            }
            if LIVE.contains(&key.as_str()) {
                report.changed.push(key.clone());
                effective.insert(key.clone(), value.clone());
            } else {
                report.needs_restart.push(key.clone());
            }
        }
        let effective: Settings = serde_json::from_value(Value::Object(effective))
            .map_err(|e| ReloadError::Invalid(format!("invalid configuration: {e}")))?;
        // Live and restart-only settings together must still be valid
        // (a rule naming a scope that only a restart would add, say).
        let resolved = effective
            .resolve(self.bound)
            .map_err(|e| ReloadError::Invalid(e.to_string()))?;
        let changed = |k: &str| report.changed.iter().any(|c| c == k);
        let policy_changed = changed("policy") || changed("default_policy");
        let local_groups: HashSet<String> = self
            .auth
            .store
            .list_groups()
            .await
            .map_err(|e| ReloadError::Invalid(format!("cannot read the groups: {e}")))?
            .into_iter()
            .map(|g| g.name)
            .collect();
        let policy = effective
            .compile_policy(Some(&local_groups))
            .map_err(|e| ReloadError::Invalid(e.to_string()))?;
        let federation = if changed("identity_provider") || changed("password_login") {
            Some(
                Federation::new(
                    &effective.identity_provider,
                    effective.password_login,
                    format!(
                        "{}/oauth/callback",
                        self.auth.urls.issuer.trim_end_matches('/')
                    ),
                    &resolved.outbound,
                )
                .map_err(ReloadError::Invalid)?,
            )
        } else {
            None
        };
        // The last step that can fail; it changes nothing when it does.
        let upstreams = if changed("upstream") {
            self.gateway
                .replace_upstreams(
                    effective.upstream.clone(),
                    crate::gateway::env::Protected::new(
                        &effective.upstream,
                        &effective.identity_provider,
                    ),
                )
                .map_err(ReloadError::Invalid)?
        } else {
            Default::default()
        };
        // From here on nothing fails.
        self.gateway
            .set_scopes(Arc::new(resolved.scope_requirements.clone()));
        self.gateway.access().replace(policy);
        if let Some(f) = federation {
            self.federation.set(f);
        }
        self.origin.set(crate::app::origin_policy(
            &self.auth.urls.issuer,
            &effective,
        ));
        report.upstreams_added = upstreams.added.clone();
        report.upstreams_removed = upstreams.removed.clone();
        report.upstreams_changed = upstreams.changed.clone();
        *running = effective;
        drop(running);
        if policy_changed || !upstreams.is_empty() {
            report.sessions_notified = self.gateway.announce(&upstreams, policy_changed).await;
        }
        Ok(report)
    }
}

/// Reloads on every `SIGHUP` until `cancel`.
#[cfg(unix)]
pub fn on_sighup(reloader: Arc<Reloader>, cancel: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload with `mcpgate reload`");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                s = hup.recv() => {
                    if s.is_none() {
                        break;
                    }
                    tracing::info!(event = "config.reload_requested", trigger = "SIGHUP", "reloading the configuration");
                    let _ = reloader.reload().await;
                }
                _ = cancel.cancelled() => break,
            }
        }
    });
}

#[cfg(not(unix))]
pub fn on_sighup(_reloader: Arc<Reloader>, _cancel: tokio_util::sync::CancellationToken) {}
