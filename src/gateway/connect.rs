//! The `<prefix>_connect` tool of `auth = "oauth"` upstreams a user has not
//! connected, and the gateway's side of connecting and disconnecting
//! (`crate::upstream_oauth`, docs/upstream-oauth.md). The tool sends a
//! URL-mode elicitation (MCP 2025-11-25, client/elicitation "URL mode")
//! to clients that declared `elicitation.url`, and returns the link
//! otherwise.

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResult, ClientResult, ContentBlock, ElicitRequest, ElicitRequestParams,
    ElicitationAction, JsonObject, ServerRequest, Tool,
};

use super::config::UpstreamConfig;
use super::relay::{Downstream, ask_downstream};
use super::{CONNECT_TOOL, Call, Gateway, Upstream, exposed};

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

    /// The per-user OAuth service, while any `auth = "oauth"` upstream is
    /// configured (a reload may add the first or remove the last).
    pub fn oauth(&self) -> Option<&Arc<crate::upstream_oauth::UpstreamOAuth>> {
        self.oauth.get().filter(|o| o.has_upstreams())
    }

    /// The per-user OAuth service, with or without upstreams.
    pub fn oauth_service(&self) -> Option<&Arc<crate::upstream_oauth::UpstreamOAuth>> {
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
    ///
    /// A session whose client declared URL-mode elicitation
    /// (`capabilities.elicitation.url`, MCP 2025-11-25) is sent the link in
    /// an `elicitation/create` with `mode: "url"` and a fresh
    /// `elicitationId`; the session is told `notifications/elicitation/complete`
    /// with that id, then `notifications/tools/list_changed`, when the
    /// browser flow completes. Any other caller gets the link in the result.
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
        let session = call.downstream.as_ref().filter(|d| !d.per_request);
        let upstream = up.cfg.name.as_str();
        if let Some(d) = session.filter(|d| accepts_url_elicitation(d)) {
            let id = mcpgate_core::crypto::random_b64::<16>();
            let link = match oauth
                .connect_link(
                    user_id,
                    upstream,
                    Some(d.link.clone()),
                    Some(id.clone()),
                    None,
                )
                .await
            {
                Ok(link) => link,
                Err(e) => return Some(Err(McpError::internal_error(e.to_string(), None))),
            };
            return Some(Ok(elicit_connect(d, upstream, &link, id, None).await));
        }
        let link = session.map(|d| d.link.clone());
        Some(
            match oauth
                .connect_link(user_id, upstream, link, None, None)
                .await
            {
                Ok(link) => Ok(link_result(upstream, &link)),
                Err(e) => Err(McpError::internal_error(e.to_string(), None)),
            },
        )
    }

    /// A failed call of a tool of `up`: when the upstream refused the
    /// user's token with `403 insufficient_scope`
    /// (`crate::upstream_oauth::step_up`), the answer is a step-up, a
    /// connect link (or URL-mode elicitation) asking for the larger scope,
    /// as the `<prefix>_connect` tool gives; otherwise `error`.
    pub(super) async fn step_up_or(
        &self,
        call: &Call<'_>,
        up: &Upstream,
        error: McpError,
    ) -> Result<CallToolResult, McpError> {
        let (Some(oauth), Some((user_id, _))) = (self.oauth.get(), call.caller.user()) else {
            return Err(error);
        };
        if !up.cfg.is_oauth() {
            return Err(error);
        }
        let upstream = up.cfg.name.as_str();
        let Some(scope) = oauth.take_step_up(user_id, upstream).await else {
            return Err(error);
        };
        // The connection with the smaller token stays until the user
        // approves the larger scope; its tools keep working meanwhile.
        let session = call.downstream.as_ref().filter(|d| !d.per_request);
        let wanted = scope.clone().unwrap_or_else(|| "more access".into());
        if let Some(d) = session.filter(|d| accepts_url_elicitation(d)) {
            let id = mcpgate_core::crypto::random_b64::<16>();
            let link = oauth
                .connect_link(
                    user_id,
                    upstream,
                    Some(d.link.clone()),
                    Some(id.clone()),
                    scope,
                )
                .await
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            return Ok(elicit_connect(d, upstream, &link, id, Some(&wanted)).await);
        }
        let link = session.map(|d| d.link.clone());
        let link = oauth
            .connect_link(user_id, upstream, link, None, scope)
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(step_up_result(upstream, &wanted, &link))
    }
}

/// The result of a call an upstream refused for lack of scope, with the
/// link that asks the user for it.
fn step_up_result(name: &str, scope: &str, link: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{name} needs more access for this tool ({scope}) than the user granted. \
         Ask them to open this link in their browser and approve it at {name} \
         (it works once, for 10 minutes), then call the tool again:\n\n{link}"
    ))])
}

/// Whether the session's client declared URL-mode elicitation and is asked
/// with requests (not through 2026-07-28 input requests).
fn accepts_url_elicitation(d: &Downstream) -> bool {
    d.input.is_none()
        && d.link
            .client_info()
            .and_then(|i| i.capabilities.elicitation.as_ref().map(|e| e.url.is_some()))
            .unwrap_or(false)
}

/// The result with the link, for a client that is not sent an elicitation
/// (or that failed to answer one).
fn link_result(name: &str, link: &str) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(format!(
        "To use {name}, the user must connect their own {name} account. \
         Ask them to open this link in their browser and sign in to {name} there \
         (it works once, for 10 minutes):\n\n{link}\n\n\
         Once they are connected, {name}'s tools appear in the tool list."
    ))])
}

/// Sends the URL-mode elicitation and answers the tool call by the user's
/// choice; the link itself never goes into the result (the client showed
/// it to the user, who may have declined).
/// `step_up`: the larger scope asked for, when an upstream refused a call
/// for lack of it (otherwise a first connection).
async fn elicit_connect(
    d: &Downstream,
    name: &str,
    link: &str,
    id: String,
    step_up: Option<&str>,
) -> CallToolResult {
    let message = match step_up {
        None => format!(
            "Connect your {name} account: sign in to {name} in your browser. \
             {name}'s tools appear once you are connected."
        ),
        Some(scope) => format!(
            "{name} needs more access ({scope}): approve it at {name} in your browser, \
             then the tool can be called again."
        ),
    };
    let params = ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message,
        url: link.to_string(),
        elicitation_id: id,
    };
    let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
    let text = match ask_downstream(d, request, None).await {
        Ok(ClientResult::ElicitResult(r)) => match (r.action, step_up) {
            (ElicitationAction::Accept, Some(_)) => format!(
                "The user was sent to their browser to approve more access at {name}; \
                 call the tool again once they have."
            ),
            (_, Some(_)) => format!(
                "The user declined to give {name} more access; this tool stays unavailable."
            ),
            (ElicitationAction::Accept, None) => format!(
                "The user was sent to their browser to connect their {name} account. \
                 {name}'s tools appear in the tool list once they are connected \
                 (the tool list changes)."
            ),
            (_, None) => format!(
                "The user declined to connect their {name} account; {name}'s tools stay \
                 unavailable."
            ),
        },
        Ok(_) | Err(_) => {
            tracing::info!(event = "upstream_oauth.elicitation_failed", upstream = %name, "the client did not answer the URL elicitation; the link goes in the result");
            return match step_up {
                Some(scope) => step_up_result(name, scope, link),
                None => link_result(name, link),
            };
        }
    };
    CallToolResult::success(vec![ContentBlock::text(text)])
}
