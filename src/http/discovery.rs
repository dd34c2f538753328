//! Public discovery documents (RFC 8414, RFC 9728), CORS-enabled.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mcpgate_core::oauth::discovery;

use super::AppState;

pub async fn authorization_server(State(app): State<AppState>) -> impl IntoResponse {
    let a = &app.auth;
    let mut doc = discovery::authorization_server_metadata(
        &a.urls,
        &a.policy.as_scopes_supported(),
        a.policy.issue_refresh_tokens,
    );
    if a.documents.policy.enabled {
        doc.client_id_metadata_document_supported = Some(true);
    }
    if !app.dynamic_client_registration {
        doc.registration_endpoint = None;
    }
    if !a.policy.public_clients {
        doc.token_endpoint_auth_methods_supported
            .retain(|m| *m != "none");
        doc.revocation_endpoint_auth_methods_supported
            .retain(|m| *m != "none");
    }
    Json(doc)
}

pub async fn protected_resource(State(app): State<AppState>) -> impl IntoResponse {
    let a = &app.auth;
    Json(discovery::protected_resource_metadata(
        &a.urls,
        &a.urls.resource,
        &a.policy.resource_scopes_supported(),
        &app.server_name,
    ))
}

/// mcpgate is not an OpenID provider: a clear 404 rather than a partial
/// document (a partial one breaks ChatGPT's discovery).
pub async fn openid_configuration() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "error": "not_found",
            "error_description": "this server is an OAuth 2.1 authorization server, not an OpenID provider; use /.well-known/oauth-authorization-server"
        })),
    )
}

/// Metadata of the legacy SSE endpoint `<public_url>/sse`, which SSE
/// clients treat as a resource of its own (RFC 9728 §3.3).
pub async fn protected_resource_sse(State(app): State<AppState>) -> impl IntoResponse {
    let a = &app.auth;
    Json(discovery::protected_resource_metadata(
        &a.urls,
        &a.urls.sse_resource,
        &a.policy.resource_scopes_supported(),
        &app.server_name,
    ))
}
