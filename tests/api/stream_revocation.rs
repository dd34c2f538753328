//! Revocation and expiry end open event streams (src/mcp/streams.rs): every
//! way a token dies × every kind of long-lived stream. Each case opens the
//! stream with alice's token, kills that token, and checks that the stream
//! ends cleanly (the client reads the end of the body) while streams of
//! other tokens (bob's, and alice's other grant where it survives) stay
//! open; then that the legacy SSE session is gone, or that the Streamable
//! HTTP session can open a new GET stream with a live token of its user.
//!
//! mcpgate ends such a stream within about a second (at once on an
//! announced revocation, else at its next check every 500 ms). The tests
//! allow [`ENDS_WITHIN`], 3 seconds, so that a loaded CI machine does not
//! make them flaky: what they prove is that the stream ends, and within a
//! bound even under load.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::cluster_support::two_instances;
use crate::gateway_support::{spawn_gateway_logging_cancellations, wait_for_cancellation};
use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{MCP, McpClient, bearer, header, insert_token};
use crate::token::{REDIRECT, code_for, exchange, expect_tokens, post_form, refresh, s};

/// Generous on purpose (see the module documentation).
const ENDS_WITHIN: Duration = Duration::from_secs(3);
/// How long a stream that must stay open is watched after the others ended.
const STAYS_OPEN_FOR: Duration = Duration::from_millis(800);
const VERSION: &str = "2025-06-18";
const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

/// How alice's token dies.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    /// RFC 7009 revocation of the access token at this path.
    RevokeAccessToken(&'static str),
    /// RFC 7009 revocation of the refresh token, which revokes the grant.
    RevokeRefreshToken,
    /// The authorization code is redeemed again.
    CodeReplay,
    /// A rotated refresh token is presented again after the grace period.
    RefreshReuse,
    /// `mcpgate user remove alice`, another process.
    CliUserRemove,
    /// `mcpgate client remove <alice's client>`, another process.
    CliClientRemove,
    /// Its `expires_at` passes.
    Expiry,
}

/// The kind of stream alice opens.
#[derive(Clone, Copy)]
enum Kind {
    /// A legacy SSE stream at this path.
    LegacySse(&'static str),
    /// The standalone GET stream of a Streamable HTTP session.
    StreamableGet,
}

/// An open event stream.
struct Stream {
    resp: reqwest::Response,
    /// The legacy session's message path, or the Streamable HTTP session id.
    session: String,
}

impl Stream {
    /// Reads until the body ends (true) or `limit` passes (false). An
    /// error instead of a clean end fails the test.
    async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return false,
                Ok(Ok(None)) => return true,
                Ok(Ok(Some(_))) => {}
                Ok(Err(e)) => panic!("the stream broke instead of ending cleanly: {e}"),
            }
        }
    }

    async fn assert_ends(&mut self, what: &str) {
        let start = Instant::now();
        assert!(
            self.ends_within(ENDS_WITHIN).await,
            "{what}: the stream is still open after {ENDS_WITHIN:?}"
        );
        eprintln!("{what}: ended after {:?}", start.elapsed());
    }

    async fn assert_open(&mut self, what: &str) {
        assert!(
            !self.ends_within(STAYS_OPEN_FOR).await,
            "{what}: the stream ended, but its token is still valid"
        );
    }
}

/// Opens a stream of `kind` on `app` with `token`.
async fn open(app: &TestApp, kind: Kind, token: &str) -> Stream {
    match kind {
        Kind::LegacySse(path) => {
            let mut resp = app
                .http
                .get(app.url(path))
                .header("authorization", bearer(token))
                .header("accept", "text/event-stream")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let mut text = String::new();
            while !text.contains("\n\n") {
                let chunk = tokio::time::timeout(ENDS_WITHIN, resp.chunk())
                    .await
                    .expect("the endpoint event in time")
                    .unwrap()
                    .expect("an endpoint event before the end");
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            let session = text
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("no endpoint data in {text:?}"))
                .to_string();
            Stream { resp, session }
        }
        Kind::StreamableGet => {
            let mut client = McpClient::new(app, token);
            client.initialize(VERSION).await;
            let session = client.session.clone().unwrap();
            Stream {
                resp: streamable_get(app, &session, token).await,
                session,
            }
        }
    }
}

async fn streamable_get(app: &TestApp, session: &str, token: &str) -> reqwest::Response {
    let r = app
        .http
        .get(app.url(MCP))
        .header("authorization", bearer(token))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {MCP}");
    assert!(
        header(&r, "content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    r
}

/// Runs `mcpgate <args>` on `database_url` as another process.
async fn cli(database_url: &str, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--database-url")
        .arg(database_url)
        .args(args)
        .current_dir(dir.path())
        .env_remove("MCPGATE_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().await.expect("the CLI runs");
    assert!(
        out.status.success(),
        "mcpgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Alice's victim token, with what killing it needs.
struct Victim {
    client_id: String,
    access: String,
    refresh: String,
    code: String,
}

/// Alice signs in through a fresh client; for [`Way::RefreshReuse`] she
/// refreshes once, and the victim is the successor's access token (the
/// refresh token kept is the rotated one, to be reused).
async fn victim(app: &TestApp, way: Way) -> Victim {
    let client_id = app.register_public(REDIRECT).await;
    let code = code_for(app, "alice", &client_id).await;
    let t = expect_tokens(exchange(app, &code, &client_id).await).await;
    let (mut access, refresh_token) = (s(&t, "access_token"), s(&t, "refresh_token"));
    if way == Way::RefreshReuse {
        let t2 = expect_tokens(refresh(app, &refresh_token, &client_id).await).await;
        access = s(&t2, "access_token");
    }
    Victim {
        client_id,
        access,
        refresh: refresh_token,
        code,
    }
}

/// Kills the victim's token `way`.
async fn kill(app: &TestApp, way: Way, v: &Victim) {
    let database_url = format!("sqlite://{}", app.db_path.display());
    match way {
        Way::RevokeAccessToken(path) => {
            let form = [("token", v.access.as_str()), ("client_id", &v.client_id)];
            let r = post_form(app, path, &form, None).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        Way::RevokeRefreshToken => {
            let form = [
                ("token", v.refresh.as_str()),
                ("token_type_hint", "refresh_token"),
                ("client_id", &v.client_id),
            ];
            let r = post_form(app, "/v1/oauth/revoke", &form, None).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        Way::CodeReplay => {
            let r = exchange(app, &v.code, &v.client_id).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        }
        Way::RefreshReuse => {
            app.clock.advance(31);
            let r = refresh(app, &v.refresh, &v.client_id).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        }
        Way::CliUserRemove => cli(&database_url, &["user", "remove", "alice"]).await,
        Way::CliClientRemove => cli(&database_url, &["client", "remove", &v.client_id]).await,
        Way::Expiry => app.clock.advance(60),
    }
}

async fn case(way: Way, kind: Kind) {
    let app = spawn_app_with(|s| s.access_token_ttl = Duration::from_secs(60)).await;
    app.add_user("alice").await;
    app.add_user("bob").await;
    let v = victim(&app, way).await;
    // Bystanders at another client, valid for an hour.
    let other_client = app.register_public(REDIRECT).await;
    let resource = app.resource();
    let bob = insert_token(&app, "bob", &other_client, "mcp", &resource).await;
    let alice_other = insert_token(&app, "alice", &other_client, "mcp", &resource).await;
    let alice_other_survives = way != Way::CliUserRemove;

    let mut doomed = open(&app, kind, &v.access).await;
    let mut bobs = open(&app, kind, &bob).await;
    let mut alices_other = open(&app, kind, &alice_other).await;
    doomed.assert_open("alice's stream before").await;

    kill(&app, way, &v).await;
    doomed.assert_ends("alice's stream").await;
    bobs.assert_open("bob's stream").await;
    if alice_other_survives {
        alices_other
            .assert_open("alice's stream of another grant")
            .await;
    } else {
        alices_other
            .assert_ends("alice's stream of another grant")
            .await;
        return;
    }
    // What remains of the session: the legacy one is gone, the Streamable
    // HTTP one opens a new stream for a live token of its user.
    match kind {
        Kind::LegacySse(_) => {
            let r = app
                .http
                .post(app.url(&doomed.session))
                .header("authorization", bearer(&alice_other))
                .header("content-type", "application/json")
                .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "the ended session");
        }
        Kind::StreamableGet => {
            let mut again = Stream {
                resp: streamable_get(&app, &doomed.session, &alice_other).await,
                session: doomed.session.clone(),
            };
            again.assert_open("the session's new stream").await;
        }
    }
}

macro_rules! cases {
    ($($name:ident: $way:expr, $kind:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            case($way, $kind).await;
        }
    )*};
}

use Kind::{LegacySse, StreamableGet};
use Way::*;

cases! {
    revoking_the_access_token_at_revoke_ends_its_legacy_sse_stream:
        RevokeAccessToken("/revoke"), LegacySse("/sse");
    revoking_the_access_token_at_v1_oauth_revoke_ends_its_legacy_sse_stream_below_the_mcp_path:
        RevokeAccessToken("/v1/oauth/revoke"), LegacySse("/v1/ai/mcp/sse");
    revoking_the_access_token_ends_its_streamable_http_get_stream:
        RevokeAccessToken("/v1/oauth/revoke"), StreamableGet;
    revoking_the_refresh_token_ends_the_legacy_sse_stream_of_its_grant:
        RevokeRefreshToken, LegacySse("/sse");
    revoking_the_refresh_token_ends_the_streamable_http_get_stream_of_its_grant:
        RevokeRefreshToken, StreamableGet;
    a_code_replay_ends_the_legacy_sse_stream_of_its_grant:
        CodeReplay, LegacySse("/v1/ai/mcp/sse");
    a_code_replay_ends_the_streamable_http_get_stream_of_its_grant:
        CodeReplay, StreamableGet;
    refresh_token_reuse_ends_the_legacy_sse_stream_of_its_family:
        RefreshReuse, LegacySse("/sse");
    refresh_token_reuse_ends_the_streamable_http_get_stream_of_its_family:
        RefreshReuse, StreamableGet;
    removing_the_user_from_the_cli_ends_their_legacy_sse_streams:
        CliUserRemove, LegacySse("/sse");
    removing_the_user_from_the_cli_ends_their_streamable_http_get_streams:
        CliUserRemove, StreamableGet;
    removing_the_client_from_the_cli_ends_the_legacy_sse_streams_of_its_tokens:
        CliClientRemove, LegacySse("/v1/ai/mcp/sse");
    removing_the_client_from_the_cli_ends_the_streamable_http_get_streams_of_its_tokens:
        CliClientRemove, StreamableGet;
    an_expiring_token_ends_its_legacy_sse_stream:
        Expiry, LegacySse("/sse");
    an_expiring_token_ends_its_streamable_http_get_stream:
        Expiry, StreamableGet;
}

#[tokio::test]
async fn revoking_the_token_of_a_long_tool_call_ends_its_event_stream_and_cancels_the_call() {
    let (app, _dir, log) = spawn_gateway_logging_cancellations().await;
    app.add_user("alice").await;
    let v = victim(&app, Way::RevokeAccessToken("/revoke")).await;
    let mut client = McpClient::new(&app, &v.access);
    client.initialize(VERSION).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "fx_slow", "arguments": {"steps": 400, "step_ms": 50},
        "_meta": {"progressToken": "p"}}});
    let r = client.post(&call).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        header(&r, "content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let mut stream = Stream {
        resp: r,
        session: String::new(),
    };
    stream.assert_open("the call's stream before").await;

    kill(&app, Way::RevokeAccessToken("/revoke"), &v).await;
    stream.assert_ends("the call's stream").await;
    wait_for_cancellation(&log).await;
}

// ---- several instances on PostgreSQL ----

async fn across_instances(kind: Kind, way: Way) {
    let (db, a, b) = two_instances().await;
    a.add_user("alice").await;
    a.add_user("bob").await;
    let v = victim(&a, way).await;
    let other_client = a.register_public(REDIRECT).await;
    let bob = insert_token(&a, "bob", &other_client, "mcp", &a.resource()).await;

    let mut doomed = open(&b, kind, &v.access).await;
    let mut bobs = open(&b, kind, &bob).await;
    match way {
        Way::CliUserRemove => cli(db.url(), &["user", "remove", "alice"]).await,
        other => kill(&a, other, &v).await,
    }
    doomed.assert_ends("alice's stream on b").await;
    bobs.assert_open("bob's stream on b").await;
}

#[tokio::test]
async fn a_legacy_sse_stream_on_one_instance_ends_when_its_token_is_revoked_through_another() {
    across_instances(LegacySse("/sse"), RevokeAccessToken("/revoke")).await;
}

#[tokio::test]
async fn a_streamable_http_get_stream_on_one_instance_ends_when_its_grant_is_revoked_through_another()
 {
    across_instances(StreamableGet, RevokeRefreshToken).await;
}

#[tokio::test]
async fn streams_on_every_instance_end_when_the_cli_removes_their_user_on_postgresql() {
    across_instances(StreamableGet, CliUserRemove).await;
}
