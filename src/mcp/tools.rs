//! The tools mcpgate serves itself, in one registry that every transport
//! uses (Streamable HTTP, legacy SSE, REST). Each tool has typed arguments
//! (serde + a JSON Schema from schemars) and knows the authenticated caller.
//!
//! Built in: `whoami` (who the token belongs to), `echo`, `current_time`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mcpgate_core::mcp::bearer::{Caller, Subject};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::clock::{Clock, rfc3339};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler =
    Arc<dyn Fn(Caller, Value) -> BoxFuture<Result<CallToolResult, ToolError>> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool {0:?}")]
    Unknown(String),
    #[error("invalid arguments for {tool}: {message}")]
    InvalidArguments { tool: String, message: String },
    /// An upstream failed (unavailable, timed out, or returned an error).
    #[error("{0}")]
    Upstream(String),
    /// Over the rate limit of the `[[policy]]` rule that allows the call.
    #[error("too many calls of {tool}; retry in {retry_after} s")]
    RateLimited { tool: String, retry_after: u64 },
}

impl ToolError {
    /// The JSON-RPC error of a failed `tools/call` (every MCP transport):
    /// an upstream's failure is an internal error; over the rate limit,
    /// `RATE_LIMITED_CODE` with `data.retryAfter` in seconds; otherwise
    /// invalid params (an unknown or denied tool: the same bytes).
    pub fn into_mcp(self) -> rmcp::ErrorData {
        match self {
            Self::Upstream(m) => rmcp::ErrorData::internal_error(m, None),
            Self::RateLimited { retry_after, .. } => rmcp::ErrorData::new(
                rmcp::model::ErrorCode(mcpgate_core::policy::rate::RATE_LIMITED_CODE),
                self.to_string(),
                Some(json!({ "retryAfter": retry_after })),
            ),
            e => rmcp::ErrorData::invalid_params(e.to_string(), None),
        }
    }
}

pub struct Tools {
    entries: Vec<(Tool, Handler)>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

impl Tools {
    /// The built-in tools.
    pub fn builtin(clock: Arc<dyn Clock>) -> Self {
        let mut t = Self {
            entries: Vec::new(),
        };
        t.add::<NoArgs, _, _>(
            "whoami",
            "Who you are to this server: the signed-in user, the client application, the granted scopes and when the access token expires.",
            true,
            |caller, _| async move {
                let scopes: Vec<&str> = caller.scope.tokens().collect();
                let (info, text) = match &caller.subject {
                    Subject::User { id, username } => (
                        json!({
                            "subject_type": "user",
                            "user": username,
                            "user_id": id,
                            "client_id": caller.client_id.as_str(),
                            "scopes": scopes,
                            "token_expires_at": rfc3339(caller.expires_at),
                        }),
                        format!(
                            "You are {username} (user id {id}), connected through client {} with scope \"{}\"; the access token expires at {}.",
                            caller.client_id, caller.scope, rfc3339(caller.expires_at)
                        ),
                    ),
                    // A service token (client credentials): the client acts
                    // as itself; there is no user.
                    Subject::Service { name } => (
                        json!({
                            "subject_type": "service",
                            "service": name,
                            "client_id": caller.client_id.as_str(),
                            "scopes": scopes,
                            "token_expires_at": rfc3339(caller.expires_at),
                        }),
                        format!(
                            "You are the service identity {name} (client {}), not a user: the client signed in as itself (client credentials) with scope \"{}\"; the access token expires at {}.",
                            caller.client_id, caller.scope, rfc3339(caller.expires_at)
                        ),
                    ),
                };
                let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                r.structured_content = Some(info);
                Ok(r)
            },
        );
        t.add::<EchoArgs, _, _>("echo", "Returns the text it is given.", true, |_, args| async move {
            Ok(CallToolResult::success(vec![ContentBlock::text(args.text)]))
        });
        t.add::<NoArgs, _, _>(
            "current_time",
            "The current time on the server, in RFC 3339 (UTC).",
            true,
            move |_, _| {
                let now = clock.now();
                async move {
                    Ok(CallToolResult::success(vec![ContentBlock::text(rfc3339(
                        now,
                    ))]))
                }
            },
        );
        t
    }

    fn add<A, F, Fut>(
        &mut self,
        name: &'static str,
        description: &'static str,
        read_only: bool,
        f: F,
    ) where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(Caller, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        let mut tool = Tool::new(name, description, schema_for_type::<A>());
        let mut annotations = ToolAnnotations::default();
        annotations.read_only_hint = Some(read_only);
        annotations.open_world_hint = Some(false);
        tool.annotations = Some(annotations);
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |caller, value| {
            let f = f.clone();
            Box::pin(async move {
                let args: A =
                    serde_json::from_value(value).map_err(|e| ToolError::InvalidArguments {
                        tool: name.to_string(),
                        message: e.to_string(),
                    })?;
                f(caller, args).await
            })
        });
        self.entries.push((tool, handler));
    }

    pub fn list(&self) -> Vec<Tool> {
        self.entries.iter().map(|(t, _)| t.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.entries
            .iter()
            .find(|(t, _)| t.name == name)
            .map(|(t, _)| t)
    }

    /// Runs a tool as `caller`. Missing arguments count as `{}`.
    pub async fn call(
        &self,
        name: &str,
        args: Option<JsonObject>,
        caller: &Caller,
    ) -> Result<CallToolResult, ToolError> {
        let handler = self
            .entries
            .iter()
            .find(|(t, _)| t.name == name)
            .map(|(_, h)| h.clone())
            .ok_or_else(|| ToolError::Unknown(name.to_string()))?;
        handler(caller.clone(), Value::Object(args.unwrap_or_default())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use mcpgate_core::domain::{ClientId, Scope};

    fn caller() -> Caller {
        Caller {
            subject: Subject::User {
                id: "u1".into(),
                username: "alice".into(),
            },
            client_id: ClientId::parse("c1").unwrap(),
            scope: Scope::parse("mcp").unwrap(),
            expires_at: 0,
            token_hash: "h".into(),
            groups: Default::default(),
        }
    }

    #[tokio::test]
    async fn whoami_reports_the_caller() {
        let tools = Tools::builtin(Arc::new(ManualClock::starting_now()));
        let r = tools.call("whoami", None, &caller()).await.unwrap();
        let s = r.structured_content.unwrap();
        assert_eq!(s["user"], "alice");
        assert_eq!(s["client_id"], "c1");
        assert_eq!(s["scopes"], json!(["mcp"]));
        assert_eq!(s["subject_type"], "user");
    }

    #[tokio::test]
    async fn whoami_names_a_service_identity_and_no_user() {
        let tools = Tools::builtin(Arc::new(ManualClock::starting_now()));
        let service = Caller {
            subject: Subject::Service {
                name: "Nightly report".into(),
            },
            ..caller()
        };
        let r = tools.call("whoami", None, &service).await.unwrap();
        let s = r.structured_content.clone().unwrap();
        assert_eq!(s["subject_type"], "service");
        assert_eq!(s["service"], "Nightly report");
        assert_eq!(s["client_id"], "c1");
        assert!(s.get("user").is_none() && s.get("user_id").is_none());
        let text = serde_json::to_value(&r.content).unwrap()[0]["text"].clone();
        assert!(
            text.as_str()
                .unwrap()
                .contains("service identity Nightly report")
        );
    }

    #[tokio::test]
    async fn arguments_are_validated_against_the_types() {
        let tools = Tools::builtin(Arc::new(ManualClock::starting_now()));
        let args = |v: Value| v.as_object().cloned();
        let r = tools
            .call("echo", args(json!({"text": "hi"})), &caller())
            .await
            .unwrap();
        assert_eq!(serde_json::to_value(&r.content).unwrap()[0]["text"], "hi");
        let e = tools
            .call("echo", args(json!({})), &caller())
            .await
            .unwrap_err();
        assert!(matches!(e, ToolError::InvalidArguments { .. }) && e.to_string().contains("text"));
        let e = tools
            .call("echo", args(json!({"text": 5})), &caller())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("invalid type"));
        let e = tools
            .call("whoami", args(json!({"x": 1})), &caller())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"));
        assert_eq!(
            tools.call("nope", None, &caller()).await.unwrap_err(),
            ToolError::Unknown("nope".into())
        );
        let echo = tools.get("echo").unwrap();
        assert_eq!(echo.input_schema["required"], json!(["text"]));
    }
}
