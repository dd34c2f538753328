//! A user's open MCP sessions and streams on this instance (issue #20:
//! "its open MCP sessions and streams; revoke one, or all"), and ending
//! them.
//!
//! They live in the server's memory (`crate::mcp::sessions::SessionOwners`,
//! `crate::mcp::streams::OpenStreams`), so only the console of a running
//! server sees them ([`Ctx::with_mcp`]); the command line does not. Each is
//! matched to its grant through the access token that opened it (its
//! `grant_id`); one whose token is gone from the store shows under no
//! grant. Session ids are bearer-like secrets: the console gets only their
//! SHA-256 ([`crate::mcp::sessions::handle`]).
//!
//! In shared mode (several instances on PostgreSQL) each instance lists
//! what it holds: the sessions it has served and the streams open on it.
//! Ending a Streamable HTTP session deletes it from the database and tells
//! every instance to close its copy (as a client's `DELETE` does).

use std::collections::HashMap;

use mcpgate_core::model::User;

use super::{AdminError, Ctx};
use crate::auth::users;
use crate::mcp::McpState;
use crate::mcp::sessions::{self, SessionView};
use crate::mcp::streams::StreamView;

/// A user's open sessions and streams on this instance, each with the
/// grant of the token that opened it.
#[derive(Debug, Default)]
pub struct OpenMcp {
    pub sessions: Vec<(SessionView, Option<String>)>,
    pub streams: Vec<(StreamView, Option<String>)>,
}

impl<'a> Ctx<'a> {
    /// With the running server's MCP state (the console): lists and ends
    /// open sessions and streams, and revoking a grant ends its sessions.
    pub fn with_mcp(mut self, mcp: &'a McpState) -> Self {
        self.mcp = Some(mcp);
        self
    }

    /// The instance whose sessions the console lists (shared mode).
    pub fn instance_id(&self) -> Option<&str> {
        self.mcp.map(|m| m.cluster.instance_id.as_str())
    }

    /// The grant of each token (only the user's own).
    async fn grants_of_tokens<'t>(
        &self,
        user: &User,
        tokens: impl Iterator<Item = &'t str>,
    ) -> Result<HashMap<String, String>, AdminError> {
        let mut grants = HashMap::new();
        for hash in tokens {
            if grants.contains_key(hash) {
                continue;
            }
            if let Some(t) = self.store.access_token(hash).await?
                && t.user_id.as_deref() == Some(user.id.as_str())
            {
                grants.insert(hash.to_string(), t.grant_id);
            }
        }
        Ok(grants)
    }

    /// The user's open sessions and streams on this instance (none on the
    /// command line).
    pub async fn open_of(&self, user: &User) -> Result<OpenMcp, AdminError> {
        let Some(mcp) = self.mcp else {
            return Ok(OpenMcp::default());
        };
        let sessions = mcp.inline.owners.of_owner(&user.id);
        let streams = mcp.streams.of_owner(&user.id);
        let tokens = sessions
            .iter()
            .filter_map(|s| s.token_hash.as_deref())
            .chain(streams.iter().map(|s| s.token_hash.as_str()));
        let grants = self.grants_of_tokens(user, tokens).await?;
        let grant = |t: Option<&str>| t.and_then(|t| grants.get(t).cloned());
        Ok(OpenMcp {
            sessions: sessions
                .into_iter()
                .map(|s| {
                    let g = grant(s.token_hash.as_deref());
                    (s, g)
                })
                .collect(),
            streams: streams
                .into_iter()
                .map(|s| {
                    let g = grant(Some(&s.token_hash));
                    (s, g)
                })
                .collect(),
        })
    }

    fn mcp(&self) -> Result<&'a McpState, AdminError> {
        self.mcp.ok_or(AdminError::NotInServer)
    }

    /// Ends one of the user's Streamable HTTP sessions, by its handle
    /// (another user's is unknown here).
    pub async fn end_session(&self, username: &str, handle: &str) -> Result<(), AdminError> {
        let mcp = self.mcp()?;
        let user = users::find(self.store, username).await?;
        let client = mcp
            .inline
            .owners
            .of_owner(&user.id)
            .into_iter()
            .find(|s| s.handle == handle)
            .and_then(|s| s.client_id);
        if !sessions::end_session(mcp, &user.id, handle).await {
            return Err(AdminError::UnknownSession);
        }
        let mut event = Self::user_event(&user).detail_text("session", short(handle));
        if let Some(c) = client {
            event = event.client(&c);
        }
        self.record("session.end", event).await;
        Ok(())
    }

    /// Ends one of the user's open streams, by its number on this instance.
    pub async fn end_stream(&self, username: &str, id: &str) -> Result<(), AdminError> {
        let mcp = self.mcp()?;
        let user = users::find(self.store, username).await?;
        let id: u64 = id.parse().map_err(|_| AdminError::UnknownStream)?;
        let Some(stream) = mcp
            .streams
            .of_owner(&user.id)
            .into_iter()
            .find(|s| s.id == id)
        else {
            return Err(AdminError::UnknownStream);
        };
        if !mcp.streams.end_one(&user.id, id) {
            return Err(AdminError::UnknownStream);
        }
        self.record(
            "stream.end",
            Self::user_event(&user)
                .client(&stream.client_id)
                .detail_text("stream", stream.kind.label()),
        )
        .await;
        Ok(())
    }

    /// Ends the user's sessions opened through `grant` (every one when
    /// `None`); returns how many. Their streams end with their tokens.
    pub(super) async fn end_sessions_of(
        &self,
        user: &User,
        grant: Option<&str>,
    ) -> Result<usize, AdminError> {
        let Some(mcp) = self.mcp else { return Ok(0) };
        let open = self.open_of(user).await?;
        let mut n = 0;
        for (s, g) in open.sessions {
            if (grant.is_none() || g.as_deref() == grant)
                && sessions::end_session(mcp, &user.id, &s.handle).await
            {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The first 12 hex digits of a handle (what the console and the audit
/// log show).
pub fn short(handle: &str) -> &str {
    handle.get(..12).unwrap_or(handle)
}
