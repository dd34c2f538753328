//! `GET /.well-known/mcp/manifest.json` (public): what this server is and
//! where its endpoints are, for clients that look for it before OAuth
//! (the ChatGPT flow document). The shape is documented in `docs/clients.md`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::http::AppState;

pub fn manifest(app: &AppState) -> Value {
    let urls = &app.auth.urls;
    let origin = urls
        .issuer
        .strip_suffix(&urls.base_path)
        .unwrap_or(&urls.issuer);
    json!({
        "schema_version": "2025-06-18",
        "name": app.server_name.as_ref(),
        "version": env!("CARGO_PKG_VERSION"),
        "description": format!("{} exposes MCP tools behind OAuth 2.1 sign-in", app.server_name),
        "endpoints": {
            "streamable_http": urls.resource,
            "sse": format!("{}/sse", urls.issuer),
            "messages": format!("{}/messages/", urls.issuer),
            "tools": format!("{}/tools", urls.issuer),
        },
        "authentication": {
            "type": "oauth2",
            "protected_resource_metadata": urls.resource_metadata,
            "authorization_server_metadata": format!("{origin}{}", urls.as_metadata_path),
            "authorization_servers": [urls.issuer],
            "scopes": app.auth.policy.scopes_supported,
        },
        "protocol_versions": ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
    })
}

pub async fn get(State(app): State<AppState>) -> Json<Value> {
    Json(manifest(&app))
}
