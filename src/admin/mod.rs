//! The operator's actions, shared by the admin console (`crate::http::admin`)
//! and the command line (`crate::cli`): create, remove and reset users, give
//! and take the admin role and groups, revoke grants, remove clients.
//!
//! Every action goes through [`Ctx`], which knows who acts (an admin's
//! username, or `cli`) and where the server's state lives:
//!
//! - in the server ([`Ctx::server`]), a change to tokens clears the token
//!   cache, which also ends at once the open event streams whose token is
//!   no longer active (`crate::mcp::streams`) and, on PostgreSQL, tells the
//!   other instances (the cluster bus);
//! - on the command line ([`Ctx::cli`]), it is announced with
//!   `crate::cluster::announce_revocation`, as `mcpgate user remove` does.
//!
//! Every action is recorded twice: an audit record of kind `admin.action`
//! (`detail.action` names it, `detail.by` who did it; docs/audit.md) and a
//! tracing event `admin.action` at info.
//!
//! [`sessions`] lists a user's open MCP sessions and streams and ends them
//! (the console only: they live in the server's memory); revoking a grant
//! ends the Streamable HTTP sessions its tokens opened.
//!
//! A grant (RFC 6749 §1.3.1) is revoked as RFC 7009 §2.1 asks of a refresh
//! token: all of its access and refresh tokens, at once.

mod sessions;

pub use sessions::{OpenMcp, short as short_handle};

use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{GroupSource, User};
use mcpgate_core::policy::GroupName;

use crate::audit::{Event, Kind, Outcome};
use crate::auth::AuthServer;
use crate::auth::users::{self, UserError};
use crate::config::Settings;
use crate::store::{GrantSummary, Store, StoreError};

/// Why an action failed; `Display` is the message shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error("no client with client_id {0:?}")]
    UnknownClient(String),
    #[error("no live grant {0:?} of this user")]
    UnknownGrant(String),
    #[error("{0}")]
    InvalidGroup(String),
    #[error("{0} is not in group {1:?} (locally)")]
    NotInGroup(String, String),
    #[error(
        "you cannot remove your own account or take your own admin role here; another admin, or the command line, can"
    )]
    OwnAccount,
    #[error("no upstream named {0:?}")]
    UnknownUpstream(String),
    #[error("this user has no such open MCP session on this instance (it may have closed)")]
    UnknownSession,
    #[error("this user has no such open stream on this instance (it may have ended)")]
    UnknownStream,
    #[error("open MCP sessions are known only to the running server")]
    NotInServer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Sink<'a> {
    Server(&'a AuthServer),
    Cli(&'a Settings),
}

/// Who acts, and how the running server learns of changes.
pub struct Ctx<'a> {
    store: &'a dyn Store,
    actor: String,
    /// The acting admin's user id (none on the command line).
    actor_id: Option<String>,
    sink: Sink<'a>,
    now: i64,
    /// The running server's MCP state (the console), see [`Ctx::with_mcp`].
    mcp: Option<&'a crate::mcp::McpState>,
}

impl<'a> Ctx<'a> {
    /// An action of the admin `actor` in the console of this server.
    pub fn server(auth: &'a AuthServer, actor: &User) -> Self {
        Self {
            store: auth.store.as_ref(),
            actor: actor.username.as_str().to_string(),
            actor_id: Some(actor.id.clone()),
            sink: Sink::Server(auth),
            now: auth.now(),
            mcp: None,
        }
    }

    /// An action of the command line.
    pub fn cli(store: &'a dyn Store, settings: &'a Settings, now: i64) -> Self {
        Self {
            store,
            actor: crate::audit::CLI_INSTANCE.to_string(),
            actor_id: None,
            sink: Sink::Cli(settings),
            now,
            mcp: None,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store
    }

    /// Records the action (audit log and tracing).
    async fn record(&self, action: &'static str, event: Event) {
        tracing::info!(event = "admin.action", action, by = ?self.actor, "admin action");
        let event = event
            .detail("action", action)
            .detail_text("by", &self.actor);
        match &self.sink {
            Sink::Server(auth) => auth.audit.record(event),
            Sink::Cli(s) => crate::audit::record_direct(s, self.store, event)
                .await
                .unwrap_or_else(|e| eprintln!("warning: {e}")),
        }
    }

    /// Tells the running server(s) that tokens, or what was cached with
    /// them (groups), changed.
    async fn tokens_changed(&self) -> Result<(), AdminError> {
        match &self.sink {
            Sink::Server(auth) => {
                auth.token_cache.clear();
                Ok(())
            }
            Sink::Cli(s) => crate::cluster::announce_revocation(&s.database_url)
                .await
                .map_err(|e| AdminError::Store(StoreError::Unavailable(e.to_string()))),
        }
    }

    fn user_event(user: &User) -> Event {
        Event::new(Kind::AdminAction, Outcome::Ok).user(&user.id, user.username.as_str())
    }

    /// Creates a user (with the admin role if `admin`).
    pub async fn create_user(
        &self,
        username: &str,
        password: String,
        admin: bool,
    ) -> Result<User, AdminError> {
        let user = users::add(self.store, username, password, self.now).await?;
        if admin {
            self.store.set_user_admin(&user.id, true).await?;
        }
        self.record(
            "user.create",
            Self::user_event(&user).detail("admin", self.is_admin(&user.id).await?),
        )
        .await;
        Ok(user)
    }

    /// Whether the user has the admin role.
    pub async fn is_admin(&self, user_id: &str) -> Result<bool, AdminError> {
        Ok(self
            .store
            .admin_user_ids()
            .await?
            .iter()
            .any(|id| id == user_id))
    }

    /// Refuses an admin's action that would lock themselves out.
    fn not_self(&self, user: &User) -> Result<(), AdminError> {
        if self.actor_id.as_deref() == Some(user.id.as_str()) {
            return Err(AdminError::OwnAccount);
        }
        Ok(())
    }

    /// Gives or takes the admin role (in the console, not one's own).
    pub async fn set_admin(&self, username: &str, on: bool) -> Result<User, AdminError> {
        let user = users::find(self.store, username).await?;
        if !on {
            self.not_self(&user)?;
        }
        if !self.store.set_user_admin(&user.id, on).await? {
            return Err(UserError::NotFound(username.to_string()).into());
        }
        self.record("user.admin", Self::user_event(&user).detail("admin", on))
            .await;
        Ok(user)
    }

    /// Whether the user is disabled.
    pub async fn is_disabled(&self, user_id: &str) -> Result<bool, AdminError> {
        Ok(self
            .store
            .disabled_user_ids()
            .await?
            .iter()
            .any(|id| id == user_id))
    }

    /// Disables the user (in the console, not one's own account): they can
    /// no longer sign in, their browser sessions end and every token issued
    /// to them is revoked, in one transaction. Enabling lets them sign in
    /// again; what was revoked stays revoked.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<User, AdminError> {
        let user = users::find(self.store, username).await?;
        if disabled {
            self.not_self(&user)?;
        }
        let at = disabled.then_some(self.now);
        if !self.store.set_user_disabled(&user.id, at).await? {
            return Err(UserError::NotFound(username.to_string()).into());
        }
        if disabled {
            self.end_sessions_of(&user, None).await?;
            self.tokens_changed().await?;
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.record(action, Self::user_event(&user)).await;
        Ok(user)
    }

    /// Sets a new password (which ends the user's browser sessions).
    pub async fn reset_password(
        &self,
        username: &str,
        password: String,
    ) -> Result<User, AdminError> {
        let user = users::find(self.store, username).await?;
        users::set_password(self.store, user.username.as_str(), password).await?;
        self.record("user.password", Self::user_event(&user)).await;
        Ok(user)
    }

    /// Removes the user and everything issued to them (in the console,
    /// not one's own account).
    pub async fn remove_user(&self, username: &str) -> Result<User, AdminError> {
        let user = users::find(self.store, username).await?;
        self.not_self(&user)?;
        self.end_sessions_of(&user, None).await?;
        users::remove(self.store, user.username.as_str()).await?;
        self.tokens_changed().await?;
        self.record("user.remove", Self::user_event(&user)).await;
        Ok(user)
    }

    /// Adds the user to a group (a local membership); false if they were in it.
    pub async fn add_to_group(&self, username: &str, group: &str) -> Result<bool, AdminError> {
        let group = GroupName::parse(group).map_err(AdminError::InvalidGroup)?;
        let user = users::find(self.store, username).await?;
        let added = self
            .store
            .add_group_member(&user.id, group.as_str(), &GroupSource::Local, self.now)
            .await?;
        self.tokens_changed().await?;
        self.record(
            "user.group_add",
            Self::user_event(&user).detail_text("group", group.as_str()),
        )
        .await;
        Ok(added)
    }

    /// Removes the user's local membership of a group.
    pub async fn remove_from_group(&self, username: &str, group: &str) -> Result<(), AdminError> {
        let user = users::find(self.store, username).await?;
        if !self
            .store
            .remove_group_member(&user.id, group, &GroupSource::Local)
            .await?
        {
            return Err(AdminError::NotInGroup(
                user.username.into_string(),
                group.to_string(),
            ));
        }
        self.tokens_changed().await?;
        self.record(
            "user.group_remove",
            Self::user_event(&user).detail_text("group", group),
        )
        .await;
        Ok(())
    }

    /// The user's live grants, newest use first.
    pub async fn grants_of(&self, user: &User) -> Result<Vec<GrantSummary>, AdminError> {
        Ok(self
            .store
            .live_grants(Some(&user.id), None, self.now)
            .await?)
    }

    /// Revokes one of the user's grants (only theirs: a grant id of another
    /// user is unknown here).
    pub async fn revoke_grant(&self, username: &str, grant_id: &str) -> Result<u64, AdminError> {
        let user = users::find(self.store, username).await?;
        let grant = self
            .grants_of(&user)
            .await?
            .into_iter()
            .find(|g| g.grant_id == grant_id)
            .ok_or_else(|| AdminError::UnknownGrant(grant_id.to_string()))?;
        let sessions = self.end_sessions_of(&user, Some(&grant.grant_id)).await?;
        let n = self.store.revoke_grant(&grant.grant_id, self.now).await?;
        self.tokens_changed().await?;
        self.record(
            "grant.revoke",
            Self::user_event(&user)
                .client(&grant.client_id)
                .detail("tokens", n)
                .detail("sessions", sessions),
        )
        .await;
        Ok(n)
    }

    /// Revokes every grant of the user; returns how many grants.
    pub async fn revoke_user_grants(&self, username: &str) -> Result<usize, AdminError> {
        let user = users::find(self.store, username).await?;
        let grants = self.grants_of(&user).await?;
        let sessions = self.end_sessions_of(&user, None).await?;
        for g in &grants {
            self.store.revoke_grant(&g.grant_id, self.now).await?;
        }
        self.tokens_changed().await?;
        self.record(
            "user.revoke_grants",
            Self::user_event(&user)
                .detail("grants", grants.len())
                .detail("sessions", sessions),
        )
        .await;
        Ok(grants.len())
    }

    fn client_id(client_id: &str) -> Result<ClientId, AdminError> {
        ClientId::parse(client_id).map_err(|_| AdminError::UnknownClient(client_id.to_string()))
    }

    /// Revokes every grant given to the client; returns how many.
    pub async fn revoke_client_grants(&self, client_id: &str) -> Result<usize, AdminError> {
        let id = Self::client_id(client_id)?;
        if self.store.client(&id).await?.is_none() {
            return Err(AdminError::UnknownClient(client_id.to_string()));
        }
        let grants = self
            .store
            .live_grants(None, Some(id.as_str()), self.now)
            .await?;
        for g in &grants {
            self.store.revoke_grant(&g.grant_id, self.now).await?;
        }
        self.tokens_changed().await?;
        self.record(
            "client.revoke_grants",
            Event::new(Kind::AdminAction, Outcome::Ok)
                .client(id.as_str())
                .detail("grants", grants.len()),
        )
        .await;
        Ok(grants.len())
    }

    /// Removes the client and everything issued to it.
    pub async fn remove_client(&self, client_id: &str) -> Result<(), AdminError> {
        let id = Self::client_id(client_id)?;
        if !self.store.delete_client(&id).await? {
            return Err(AdminError::UnknownClient(client_id.to_string()));
        }
        if let Sink::Server(auth) = &self.sink {
            auth.client_cache.clear();
        }
        self.tokens_changed().await?;
        self.record(
            "client.remove",
            Event::new(Kind::ClientRemoved, Outcome::Ok).client(id.as_str()),
        )
        .await;
        Ok(())
    }

    /// Records the restart of an upstream (done by the caller, which holds
    /// the gateway).
    pub async fn upstream_restarted(&self, name: &str) {
        self.record(
            "upstream.restart",
            Event::new(Kind::AdminAction, Outcome::Ok).upstream(name),
        )
        .await;
    }
}
