//! Log lines cannot be forged: values a client controls are logged as
//! escaped fields (`mcpgate::logging`).

use crate::federation_support::Logs;
use crate::helpers::{VERIFIER, spawn_app};

#[tokio::test]
async fn a_newline_in_redirect_uri_at_the_token_endpoint_leaves_no_forged_line_in_the_log() {
    let logs = Logs::capture();
    let app = spawn_app().await;
    app.add_user("alice").await;
    let redirect = "http://127.0.0.1:1/callback";
    let client_id = app.register_public(redirect).await;
    let code = app
        .authorize("alice", &app.auth_params(&client_id, redirect))
        .await;
    let forged = "http://127.0.0.1:1/callback\n2026-12-02T00:00:00Z  INFO event=\"auth.login\" username=\"admin\" forged";
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", forged),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", &app.resource()),
        ])
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);

    let text = logs.text();
    // The refusal was logged, with the value escaped on its own line...
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("forged")).collect();
    assert_eq!(refused.len(), 1, "one line mentions the value: {text}");
    assert!(
        refused[0].contains("callback\\n2026-12-02"),
        "the newline is escaped: {}",
        refused[0]
    );
    // ...and no line starts with what the client wrote after the newline.
    assert!(
        !text.lines().any(|l| l.starts_with("2026-12-02T00:00:00Z")),
        "a forged line: {text}"
    );
}
