//! PostgreSQL out of reach (docs/scaling.md, "The database restarting"):
//! the server reaches its database through a TCP relay that the test cuts,
//! dropping the open connections and closing new ones at once, as a
//! database restart does. Requests that need the database get 503 with
//! `Retry-After` (RFC 6749 §5.2 `temporarily_unavailable`, RFC 9110
//! §10.2.3), never 500 or a 401 that would make a client drop a good token;
//! once the relay is restored the same tokens work again. The browser's
//! authorization page is a 503 page, not a 500.
//! (tests/fault/run.sh restarts a real server under load.)

use std::net::SocketAddr;

use reqwest::StatusCode;
use reqwest::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{PASSWORD, spawn_app_with};
use crate::mcp_support::{McpClient, initialize_body};
use crate::pg_support::PgTestDb;
use crate::token::{expect_tokens, refresh, s};

/// A relay from a local port to `target`; sending `true` cuts it.
async fn relay(target: SocketAddr) -> (SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (cut, rx) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut rx = rx.clone();
            if *rx.borrow() {
                continue; // dropped: closed at once
            }
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = rx.wait_for(|cut| *cut) => {}
                }
            });
        }
    });
    (addr, cut)
}

/// `db`'s URL with its host and port replaced by the relay's.
async fn through_relay(db: &PgTestDb) -> (String, watch::Sender<bool>) {
    let mut url = url::Url::parse(db.url()).expect("URL");
    let host = url.host_str().expect("host").to_string();
    let port = url.port().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let (addr, cut) = relay(target).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(addr.port())).expect("port");
    (url.to_string(), cut)
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.expect("JSON body")
}

#[tokio::test]
async fn a_database_out_of_reach_gives_503_with_retry_after_and_the_same_tokens_work_after() {
    let db = PgTestDb::create().await;
    let (url, cut) = through_relay(&db).await;
    let app = spawn_app_with(|s| s.database_url = url).await;
    app.add_user("alice").await;
    let (client_id, t) = app.full_flow("alice").await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
    // A signed-in browser, whose next authorization request reads its
    // session from the database.
    let browser = app.browser();
    let params = app.auth_params(&client_id, "http://127.0.0.1:1/callback");
    browser
        .sign_in_and_approve(&params, "alice", PASSWORD)
        .await;

    // Another browser, on the sign-in page when the database goes away.
    let signing_in = app.browser();
    let login_page = signing_in
        .open_authorize(&params)
        .await
        .text()
        .await
        .expect("sign-in page");

    cut.send(true).expect("cut");

    // Signing in: a 503 page, not 500.
    let r = signing_in
        .submit_login(&login_page, "alice", PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[RETRY_AFTER], "2");
    let html = r.text().await.expect("page");
    assert!(html.contains("The database is unavailable"), "{html}");

    // The authorization page: 503 with Retry-After, not 500.
    let r = browser.open_authorize(&params).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[RETRY_AFTER], "2");
    let html = r.text().await.expect("page");
    assert!(html.contains("The database is unavailable"), "{html}");

    // The token endpoint: temporarily_unavailable, not server_error.
    let r = refresh(&app, &rt, &client_id).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[RETRY_AFTER], "2");
    let body = json_of(r).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("database is unavailable")),
        "{body}"
    );

    // The MCP endpoint, with a token this server has not cached yet: 503
    // without a challenge, not 401 invalid_token.
    let r = McpClient::new(&app, &at)
        .post(&initialize_body(1, "2025-06-18"))
        .send()
        .await
        .expect("initialize");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[RETRY_AFTER], "2");
    assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    let body = json_of(r).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    // Back: the same refresh token rotates, the same access token works.
    cut.send(false).expect("restore");
    let t2 = expect_tokens(refresh(&app, &rt, &client_id).await).await;
    assert_ne!(s(&t2, "refresh_token"), rt);
    let mut c = McpClient::new(&app, &at);
    c.initialize("2025-06-18").await;
    let m = c.call_tool("whoami", json!({})).await;
    assert_eq!(m["result"]["structuredContent"]["user"], "alice", "{m}");
}
