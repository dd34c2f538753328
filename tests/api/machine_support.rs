//! Pre-registered clients for the tests: added the way `mcpgate client add`
//! adds them (the same rules, `oauth::preregister`), straight into the
//! test server's store.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcpgate_core::crypto::{hash_secret, random_uuid};
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{Client, ClientKind};
use mcpgate_core::oauth::preregister::{self, Auth, Request};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

/// Adds a pre-registered client; returns (client_id, secret if `--secret`).
pub async fn add_client(
    app: &TestApp,
    name: &str,
    auth: Auth,
    redirect_uris: &[&str],
    grants: &[&str],
    scope: Option<&str>,
) -> (String, Option<String>) {
    let request = Request {
        name: name.into(),
        redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
        auth: auth.clone(),
        grant_types: grants.iter().map(|s| s.to_string()).collect(),
        scope: scope.map(str::to_string),
        client_id: None,
    };
    let (_, metadata) = preregister::build(&request, &app.auth.policy).expect("valid client");
    let secret = (auth == Auth::Secret).then(mcpgate::auth::register::new_client_secret);
    let client = Client {
        client_id: ClientId::parse(&random_uuid()).unwrap(),
        secret_hash: secret.as_deref().map(hash_secret),
        metadata,
        issued_at: 0,
        last_used_at: None,
        kind: ClientKind::Preregistered,
    };
    app.store
        .create_client(&client)
        .await
        .expect("client stored");
    (client.client_id.to_string(), secret)
}

/// A machine client with a secret and the client_credentials grant.
pub async fn add_machine(app: &TestApp, name: &str, scope: Option<&str>) -> (String, String) {
    let (id, secret) =
        add_client(app, name, Auth::Secret, &[], &["client_credentials"], scope).await;
    (id, secret.expect("a secret"))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A client credentials request with HTTP Basic; returns status and body.
pub async fn client_credentials(
    app: &TestApp,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let r = app
        .http
        .post(app.url("/v1/oauth/token"))
        .header("authorization", basic(id, secret))
        .form(&form)
        .send()
        .await
        .expect("token request");
    let status = r.status();
    (status, r.json().await.expect("json"))
}

/// A service token for a new machine client named `name`.
pub async fn service_token(app: &TestApp, name: &str) -> (String, String) {
    let (id, secret) = add_machine(app, name, None).await;
    let (status, body) = client_credentials(app, &id, &secret, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        id,
        body["access_token"].as_str().expect("token").to_string(),
    )
}
