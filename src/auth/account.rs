//! A user's own view of the applications they let in (the account page,
//! `GET /account`): their live grants with each client, and revoking one.
//!
//! Revoking goes through the same path as RFC 7009 revocation of a refresh
//! token (§2.1: the whole grant): every access and refresh token of the
//! grant is revoked in the store, the token cache is cleared on this
//! instance and announced on the cluster bus, and that announcement makes
//! `mcp::streams` end at once every event stream the grant's tokens
//! opened, on every instance. The user's remembered consents to that client
//! are forgotten, so that the application must ask again. The grant must be
//! the user's own: another user's grant id (or an unknown one) revokes
//! nothing.

use mcpgate_core::model::Client;
use mcpgate_core::oauth::OAuthError;

use super::{AuthServer, store_failure};
use crate::audit::{Event, Kind, Outcome};
use crate::store::UserGrant;

/// One application the user granted access to.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub grant: UserGrant,
    /// The client, unless it was removed since (its tokens then went with it,
    /// so this is `None` only in a race with the removal).
    pub client: Option<Client>,
}

impl AuthServer {
    /// The user's grants that can still be used, newest use first.
    pub async fn connected_apps(&self, user_id: &str) -> Result<Vec<ConnectedApp>, OAuthError> {
        let grants = self
            .store
            .grants_of_user(user_id, self.now())
            .await
            .map_err(store_failure)?;
        let mut apps = Vec::with_capacity(grants.len());
        for grant in grants {
            let client = self.client_of(&grant.client_id).await?;
            apps.push(ConnectedApp { grant, client });
        }
        Ok(apps)
    }

    async fn client_of(&self, client_id: &str) -> Result<Option<Client>, OAuthError> {
        match mcpgate_core::domain::ClientId::parse(client_id) {
            Ok(id) => self.store.client(&id).await.map_err(store_failure),
            Err(_) => Ok(None),
        }
    }

    /// Revokes `grant_id` if it is a live grant of `user_id`; returns it
    /// with its client, or `None` (nothing revoked) when the user holds no
    /// such grant.
    pub async fn revoke_own_grant(
        &self,
        user_id: &str,
        grant_id: &str,
    ) -> Result<Option<ConnectedApp>, OAuthError> {
        let grants = self
            .store
            .grants_of_user(user_id, self.now())
            .await
            .map_err(store_failure)?;
        let Some(grant) = grants.into_iter().find(|g| g.grant_id == grant_id) else {
            return Ok(None);
        };
        self.revoke_grant(&grant.grant_id, "revoked by the user on the account page")
            .await?;
        // The application must ask again: its remembered consent goes too.
        self.store
            .forget_consents(user_id, &grant.client_id)
            .await
            .map_err(store_failure)?;
        let event = Event::new(Kind::TokenRevoked, Outcome::Ok)
            .client(&grant.client_id)
            .detail("token_type", "grant")
            .detail("by", "user");
        self.audit.record(self.with_user(event, user_id).await);
        let client = self.client_of(&grant.client_id).await?;
        Ok(Some(ConnectedApp { grant, client }))
    }
}
