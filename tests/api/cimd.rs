//! Client ID Metadata Documents: the whole flow for a Claude-shaped
//! document, a ChatGPT-shaped one accepted and stored, and every refusal
//! (draft-ietf-oauth-client-id-metadata-document §4, §6; issue #16). The
//! documents are served by the test's own HTTPS server
//! ([`crate::https_support`]), trusted through `outbound_ca_file`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, VERIFIER, location, query_param, spawn_app_with};
use crate::https_support::{HttpsServer, Route};
use crate::mcp_support::bearer;
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{ClientKind, TokenEndpointAuthMethod};

pub(crate) const DOC: &str = "/oauth/client.json";

/// A document shaped like Claude Code's: a public client whose loopback
/// redirect URI has no port.
pub(crate) fn claude_doc(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Claude Code",
        "client_uri": "https://claude.ai",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none"
    })
}

/// A document shaped like ChatGPT's: `private_key_jwt` with an RS256
/// `jwks_uri`.
pub(crate) fn chatgpt_doc(client_id: &str, jwks_uri: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "ChatGPT",
        "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg": "RS256",
        "jwks_uri": jwks_uri,
        "scope": "openid profile"
    })
}

/// A server with a Claude-shaped document at [`DOC`], and mcpgate
/// trusting it.
pub(crate) async fn claude_setup() -> (HttpsServer, TestApp, String) {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&id), &[("cache-control", "max-age=600")]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    app.add_user("alice").await;
    (server, app, id)
}

/// The authorization server metadata (RFC 8414).
pub(crate) async fn as_metadata(app: &TestApp) -> Value {
    app.http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Opens the authorize URL in a fresh browser; returns status and body.
pub(crate) async fn open(app: &TestApp, client_id: &str, redirect: &str) -> (StatusCode, String) {
    let r = app
        .browser()
        .open_authorize(&app.auth_params(client_id, redirect))
        .await;
    (r.status(), r.text().await.unwrap())
}

/// Asserts an error page (no redirect) that contains every `needle`.
pub(crate) async fn refused_page(app: &TestApp, client_id: &str, redirect: &str, needles: &[&str]) {
    let (status, html) = open(app, client_id, redirect).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    // The page starts its message with a capital letter.
    let lower = html.to_lowercase();
    for n in needles {
        assert!(lower.contains(&n.to_lowercase()), "{n:?} not in {html}");
    }
}

#[tokio::test]
async fn a_claude_shaped_document_runs_the_whole_flow_with_an_ephemeral_loopback_port() {
    let (server, app, id) = claude_setup().await;
    let meta = as_metadata(&app).await;
    assert_eq!(
        meta["client_id_metadata_document_supported"], true,
        "{meta}"
    );

    let redirect = "http://localhost:53682/callback";
    let browser = app.browser();
    let params = app.auth_params(&id, redirect);
    let r = browser.open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let consent = r.text().await.unwrap();
    assert!(
        consent.contains("<strong class=\"client-host\">127.0.0.1</strong>"),
        "{consent}"
    );
    assert!(consent.contains("identified by its domain"), "{consent}");
    assert!(consent.contains("Claude Code"), "{consent}");
    assert!(
        consent.contains("application running on this computer"),
        "{consent}"
    );
    let r = browser.submit_consent(&consent, "approve").await;
    let back = location(&r);
    assert!(back.starts_with(redirect), "{back}");
    let code = query_param(&back, "code").unwrap();

    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &id),
            ("code_verifier", VERIFIER),
            ("resource", &app.resource()),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    let r = app
        .http
        .post(app.url("/tools/whoami"))
        .header("authorization", bearer(at))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.contains("alice"), "{body}");
    assert_eq!(server.hits(DOC), 1, "fetched once, then cached");

    let stored = app
        .store
        .client(&ClientId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.kind, ClientKind::MetadataDocument);
    assert!(stored.secret_hash.is_none());
    assert!(stored.last_used_at.is_some());

    // Consent is remembered for this redirect URI (any loopback port)...
    let again = browser
        .open_authorize(&app.auth_params(&id, "http://localhost:61000/callback"))
        .await;
    assert_eq!(again.status(), StatusCode::FOUND);
    assert!(location(&again).starts_with("http://localhost:61000/callback?code="));
    // ...and not for another one.
    let other = browser
        .open_authorize(&app.auth_params(&id, "http://127.0.0.1:61000/callback"))
        .await;
    assert_eq!(other.status(), StatusCode::OK);
    assert!(other.text().await.unwrap().contains("Allow access?"));
}

/// One metadata-document client is shared by everyone who uses it (one
/// cached row, one client id), so nothing of one user may carry over to
/// another: alice's remembered consent does not approve bob, each gets a
/// code only for themselves, and each token is its own user's.
#[tokio::test]
async fn two_users_of_one_document_client_share_no_consent_and_no_token() {
    let (server, app, id) = claude_setup().await;
    app.add_user("bob").await;
    let redirect = "http://localhost:53682/callback";

    let mut tokens = Vec::new();
    for user in ["alice", "bob"] {
        let browser = app.browser();
        let r = browser
            .open_authorize(&app.auth_params(&id, redirect))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{user} signs in first");
        let html = r.text().await.unwrap();
        let r = browser.submit_login(&html, user, PASSWORD).await;
        let r = browser.get(&location(&r)).await;
        assert_eq!(r.status(), StatusCode::OK, "{user} is asked to consent");
        let consent = r.text().await.unwrap();
        assert!(consent.contains("Allow access?"), "{user}: {consent}");
        let r = browser.submit_consent(&consent, "approve").await;
        let code = query_param(&location(&r), "code").unwrap();
        let r = app
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &id),
                ("code_verifier", VERIFIER),
                ("resource", &app.resource()),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        tokens.push((user, body["access_token"].as_str().unwrap().to_string()));
    }
    for (user, at) in &tokens {
        let body = app
            .http
            .post(app.url("/tools/whoami"))
            .header("authorization", bearer(at))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let other = if *user == "alice" { "bob" } else { "alice" };
        assert!(
            body.contains(user) && !body.contains(other),
            "{user}: {body}"
        );
    }
    assert_eq!(server.hits(DOC), 1, "one cached document for both users");
}

#[tokio::test]
async fn a_chatgpt_shaped_document_is_accepted_and_stored_with_its_jwks_uri() {
    let server = HttpsServer::start().await;
    let id = server.url("/oauth/chatgpt/client.json");
    let jwks = server.url("/oauth/jwks.json");
    server.json("/oauth/chatgpt/client.json", &chatgpt_doc(&id, &jwks), &[]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    let (status, html) = open(&app, &id, "https://chatgpt.com/connector/oauth/abc123").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("name=\"password\""),
        "the sign-in page: {html}"
    );
    let c = app
        .store
        .client(&ClientId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.kind, ClientKind::MetadataDocument);
    assert_eq!(
        c.metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );
    assert_eq!(c.metadata.jwks_uri.as_deref(), Some(jwks.as_str()));
    assert_eq!(c.metadata.client_name.as_deref(), Some("ChatGPT"));
    assert!(c.metadata.scope.is_none(), "a document's scope is ignored");
}

#[tokio::test]
async fn a_document_whose_client_id_differs_from_its_url_is_refused() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&server.url("/other.json")), &[]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    refused_page(
        &app,
        &id,
        "http://localhost:5000/callback",
        &["127.0.0.1", "client_id is not the URL it was fetched from"],
    )
    .await;
}

#[tokio::test]
async fn a_redirect_instead_of_the_document_is_refused() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json("/real.json", &claude_doc(&id), &[]);
    server.route(DOC, Route::redirect(302, &server.url("/real.json")));
    let app = spawn_app_with(|s| server.trust(s)).await;
    refused_page(&app, &id, "http://localhost:5000/callback", &["redirect"]).await;
    assert_eq!(server.hits("/real.json"), 0, "the redirect is not followed");
}

#[tokio::test]
async fn an_oversized_document_is_refused() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    let mut doc = claude_doc(&id);
    doc["padding"] = json!("x".repeat(70 * 1024));
    server.json(DOC, &doc, &[]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    refused_page(
        &app,
        &id,
        "http://localhost:5000/callback",
        &["larger than 64 KiB"],
    )
    .await;
}

#[tokio::test]
async fn a_private_address_is_refused_without_the_allow_list_and_fetched_with_it() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&id), &[]);
    let app = spawn_app_with(|s| server.trust_ca_only(s)).await;
    refused_page(
        &app,
        &id,
        "http://localhost:5000/callback",
        &["127.0.0.1 is a loopback address", "outbound_allow_networks"],
    )
    .await;
    assert_eq!(server.hits(DOC), 0, "no request was sent");
    // A name that resolves to loopback is refused after resolution.
    let by_name = format!("https://localhost:{}{DOC}", server.addr.port());
    refused_page(
        &app,
        &by_name,
        "http://localhost:5000/callback",
        &["resolves to", "loopback"],
    )
    .await;
    assert_eq!(server.hits(DOC), 0, "no request was sent");

    let allowed = spawn_app_with(|s| server.trust(s)).await;
    let (status, _) = open(&allowed, &id, "http://localhost:5000/callback").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.hits(DOC), 1);
}

#[tokio::test]
async fn a_redirect_uri_not_in_the_document_is_refused_with_a_page() {
    let (_server, app, id) = claude_setup().await;
    refused_page(
        &app,
        &id,
        "https://evil.example/callback",
        &["redirect URI mismatch"],
    )
    .await;
    refused_page(
        &app,
        &id,
        "http://localhost:5000/other",
        &["redirect URI mismatch"],
    )
    .await;
}

#[tokio::test]
async fn a_shared_secret_method_is_refused() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    let mut doc = claude_doc(&id);
    doc["token_endpoint_auth_method"] = json!("client_secret_post");
    server.json(DOC, &doc, &[]);
    let app = spawn_app_with(|s| server.trust(s)).await;
    refused_page(
        &app,
        &id,
        "http://localhost:5000/callback",
        &["shared secret"],
    )
    .await;
    // At the token endpoint: invalid_client, with the reason.
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("client_id", &id),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("shared secret"),
        "{body}"
    );
}

#[tokio::test]
async fn with_documents_off_url_client_ids_are_ordinary_and_nothing_is_fetched() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&id), &[]);
    let app = spawn_app_with(|s| {
        server.trust(s);
        s.client_id_metadata_documents = false;
    })
    .await;
    let meta = as_metadata(&app).await;
    assert!(
        meta.get("client_id_metadata_document_supported").is_none(),
        "{meta}"
    );
    refused_page(
        &app,
        &id,
        "http://localhost:5000/callback",
        &["no application is registered"],
    )
    .await;
    assert_eq!(server.hits(DOC), 0);
}

#[tokio::test]
async fn a_host_outside_trusted_client_hosts_is_refused() {
    let server = HttpsServer::start().await;
    let id = server.url(DOC);
    server.json(DOC, &claude_doc(&id), &[]);
    let app = spawn_app_with(|s| {
        server.trust(s);
        s.trusted_client_hosts = vec!["claude.ai".into()];
    })
    .await;
    refused_page(
        &app,
        &id,
        "http://localhost:5000/callback",
        &["trusted_client_hosts", "127.0.0.1"],
    )
    .await;
    assert_eq!(server.hits(DOC), 0);
    let listed = spawn_app_with(|s| {
        server.trust(s);
        s.trusted_client_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let (status, _) = open(&listed, &id, "http://localhost:5000/callback").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_document_url_breaking_the_drafts_rules_is_refused() {
    let server = HttpsServer::start().await;
    let app = spawn_app_with(|s| server.trust(s)).await;
    let with_fragment = format!("{}#x", server.url(DOC));
    refused_page(
        &app,
        &with_fragment,
        "http://localhost:5000/callback",
        &["fragment"],
    )
    .await;
    let dots = server.url("/a/../client.json");
    refused_page(&app, &dots, "http://localhost:5000/callback", &["segment"]).await;
}

#[tokio::test]
async fn client_list_shows_the_kind_of_every_client_and_a_documents_host_and_last_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
    let store = mcpgate::app::open_store(&db).await.unwrap();
    let url = "https://chatgpt.com/oauth/abc/client.json";
    let metadata = mcpgate_core::oauth::cimd::validate(
        &mcpgate_core::domain::MetadataDocumentUrl::parse(url).unwrap(),
        chatgpt_doc(url, "https://chatgpt.com/oauth/jwks.json")
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let doc = mcpgate_core::model::CachedDocument {
        client: mcpgate_core::model::Client {
            client_id: ClientId::parse(url).unwrap(),
            secret_hash: None,
            metadata,
            issued_at: 1_700_000_000,
            last_used_at: Some(1_700_000_600),
            kind: ClientKind::MetadataDocument,
        },
        fetched_at: 1_700_000_000,
        fresh_until: 1_700_003_600,
    };
    store.save_client_document(&doc).await.unwrap();
    drop(store);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["client", "list", "--database-url", &db])
        .env_remove("MCPGATE_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{list} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = list.lines().find(|l| l.starts_with(url)).expect(&list);
    assert!(line.contains("metadata_document"), "{line}");
    assert!(line.contains("host chatgpt.com"), "{line}");
    assert!(line.contains("private_key_jwt"), "{line}");
    assert!(line.contains("last used 2023-11-14"), "{line}");
}
