//! The `<prefix>_connect` tool of `auth = "oauth"` upstreams a user has not
//! connected, and the gateway's side of connecting and disconnecting
//! (`crate::upstream_oauth`, docs/upstream-oauth.md).

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, JsonObject, Tool};

use super::config::UpstreamConfig;
use super::{CONNECT_TOOL, Call, Gateway, exposed};

/// The `<prefix>_connect` tool of an `auth = "oauth"` upstream the user has
/// not connected: described so that an assistant knows to call it.
pub(super) fn connect_tool(cfg: &UpstreamConfig) -> Tool {
    let schema: JsonObject = serde_json::from_value(serde_json::json!({
        "type": "object", "properties": {}, "additionalProperties": false
    }))
    .unwrap_or_default();
    Tool::new(
        exposed(cfg.prefix(), CONNECT_TOOL),
        format!(
            "Connect the user's own {name} account. {name}'s tools are available only after \
             the user has connected their account there. Call this tool when the user wants \
             to use {name}: it gives a link for the user to open in their browser.",
            name = cfg.name
        ),
        Arc::new(schema),
    )
}

impl Gateway {
    /// Gives the `auth = "oauth"` upstreams their OAuth service (once).
    pub fn attach_oauth(&self, oauth: Arc<crate::upstream_oauth::UpstreamOAuth>) {
        oauth.set_listen(self.listen.clone());
        let _ = self.oauth.set(oauth);
    }

    pub fn oauth(&self) -> Option<&Arc<crate::upstream_oauth::UpstreamOAuth>> {
        self.oauth.get()
    }

    /// Ends `user_id`'s connection to `upstream` (revoked at the upstream,
    /// deleted here) and stops its live connection.
    pub async fn disconnect(&self, user_id: &str, upstream: &str) -> Result<bool, String> {
        let Some(oauth) = self.oauth.get() else {
            return Ok(false);
        };
        let done = oauth
            .disconnect(user_id, upstream)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(up) = self.upstreams().iter().find(|u| u.cfg.name == upstream) {
            up.stop_owner(user_id);
        }
        Ok(done)
    }

    /// `<prefix>_connect` of an `auth = "oauth"` upstream: a one-time link
    /// for the calling user (`crate::upstream_oauth::service`).
    pub(super) async fn call_connect_tool(
        &self,
        call: &Call<'_>,
        name: &str,
    ) -> Option<Result<CallToolResult, McpError>> {
        let up = self
            .visible(call.caller)
            .into_iter()
            .find(|u| u.cfg.is_oauth() && exposed(u.cfg.prefix(), CONNECT_TOOL) == name)?;
        let Some((user_id, _)) = call.caller.user() else {
            return Some(Err(McpError::invalid_request(
                format!(
                    "{} is connected per user; a service cannot connect it",
                    up.cfg.name
                ),
                None,
            )));
        };
        let oauth = self.oauth.get()?;
        let peer = call
            .downstream
            .as_ref()
            .filter(|d| !d.per_request)
            .map(|d| d.peer.clone());
        Some(
            match oauth.connect_link(user_id, &up.cfg.name, peer).await {
                Ok(link) => Ok(CallToolResult::success(vec![
                    rmcp::model::ContentBlock::text(format!(
                        "To use {name}, the user must connect their own {name} account. \
                         Ask them to open this link in their browser and sign in to {name} there \
                         (it works once, for 10 minutes):\n\n{link}\n\n\
                         Once they are connected, {name}'s tools appear in the tool list.",
                        name = up.cfg.name
                    )),
                ])),
                Err(e) => Err(McpError::internal_error(e.to_string(), None)),
            },
        )
    }
}
