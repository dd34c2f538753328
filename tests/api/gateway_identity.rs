//! Identity for per-user HTTP upstreams: the `X-MCPGate-User-*` headers and
//! a short-lived signed JWT, verified here by a real Streamable HTTP MCP
//! server (rmcp) standing in for the upstream.

use std::sync::Arc;

use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::helpers::spawn_app_with;
use crate::mcp_support::{bearer, signed_in};

const KEY: &str = "a shared identity key of at least thirty-two bytes";

#[derive(Clone)]
struct Upstream {
    audience: String,
}

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "who",
            "the verified identity",
            Arc::new(serde_json::Map::new()),
        )]))
    }

    async fn call_tool(
        &self,
        _r: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let parts = ctx
            .extensions
            .get::<Parts>()
            .ok_or_else(|| McpError::internal_error("no request parts", None))?;
        let h = |n: &str| {
            parts
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let token = h("x-mcpgate-identity");
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[&self.audience]);
        let verified =
            jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(KEY.as_bytes()), &v)
                .map(|d| d.claims)
                .map_err(|e| McpError::internal_error(format!("bad identity token: {e}"), None))?;
        let text = json!({
            "user_header": h("x-mcpgate-user-name"),
            "id_header": h("x-mcpgate-user-id"),
            "subject_header": h("x-mcpgate-subject-type"),
            "client_id_header": h("x-mcpgate-client-id"),
            "client_name_header": h("x-mcpgate-client-name"),
            "jwt": verified,
            "authorization": h("authorization"),
        })
        .to_string();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(text),
        ])))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_user_http_upstream_gets_verifiable_identity_and_never_the_token() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let handler = Upstream {
        audience: url.clone(),
    };
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().route_service("/mcp", service)).await;
    });

    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), KEY).unwrap();
    let cfg: mcpgate::gateway::config::UpstreamConfig = toml::from_str(&format!(
        "name = \"crm\"\nurl = \"{url}\"\nisolation = \"per_user\"\n[identity_jwt]\nkey_file = \"{}\"\nttl = \"30s\"\n",
        key_file.path().display()
    ))
    .unwrap();
    let app = spawn_app_with(|s| s.upstream = vec![cfg]).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let r = app
        .http
        .post(app.url("/tools/crm_who"))
        .header("authorization", bearer(&alice))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let seen: Value = serde_json::from_str(v["content"][0]["text"].as_str().unwrap()).unwrap();
    let user = app.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(seen["user_header"], "alice");
    assert_eq!(seen["id_header"], user.id.as_str());
    assert_eq!(seen["jwt"]["sub"], user.id.as_str());
    assert_eq!(seen["jwt"]["preferred_username"], "alice");
    assert_eq!(seen["jwt"]["iss"], app.urls.issuer.as_str());
    assert_eq!(seen["jwt"]["aud"], url.as_str());
    assert_eq!(
        seen["jwt"]["exp"].as_u64().unwrap() - seen["jwt"]["iat"].as_u64().unwrap(),
        30
    );
    assert_eq!(
        seen["authorization"], "",
        "the client's access token never reaches the upstream"
    );
    assert_eq!(seen["subject_header"], "user");
    assert_eq!(seen["jwt"]["mcpgate_subject_type"], "user");

    // A service (client credentials) is marked as one and named by its
    // client, never as a user, even with a user's name.
    let (client_id, service) = crate::machine_support::service_token(&app, "alice").await;
    let r = app
        .http
        .post(app.url("/tools/crm_who"))
        .header("authorization", bearer(&service))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let seen: Value = serde_json::from_str(v["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(seen["subject_header"], "service");
    assert_eq!(seen["client_id_header"], client_id.as_str());
    assert_eq!(seen["client_name_header"], "alice");
    assert_eq!(seen["user_header"], "");
    assert_eq!(seen["id_header"], "");
    assert_eq!(seen["jwt"]["sub"], format!("client:{client_id}"));
    assert_eq!(seen["jwt"]["mcpgate_subject_type"], "service");
    assert_eq!(seen["jwt"]["client_name"], "alice");
    assert!(seen["jwt"].get("preferred_username").is_none(), "{seen}");
    assert_eq!(seen["authorization"], "");
}

#[tokio::test]
async fn a_missing_identity_key_stops_the_start_with_a_clear_error() {
    let cfg: mcpgate::gateway::config::UpstreamConfig = toml::from_str(
        "name = \"crm\"\nurl = \"http://127.0.0.1:9/mcp\"\nisolation = \"per_user\"\n[identity_jwt]\nkey_file = \"/nonexistent/key\"\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = crate::helpers::test_settings(&dir.path().join("db.sqlite"));
    s.upstream = vec![cfg];
    let e = match mcpgate::app::App::build(s).await {
        Ok(_) => panic!("the app should not start"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("crm") && e.contains("/nonexistent/key"), "{e}");
}
