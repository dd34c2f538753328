//! The audit log end to end (docs/audit.md): every action of the OAuth and
//! MCP flows is exactly one record with the right fields, in the table and
//! in the JSON-lines stream; no record holds a token, secret, password,
//! code or PKCE verifier; tool arguments only when asked; refusals by
//! `allowed_users`; retention.

use mcpgate::clock::Clock;
use mcpgate::store::{AuditQuery, AuditRecord};
use mcpgate_core::crypto::hash_secret;
use reqwest::StatusCode;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use serde_json::{Value, json};

use crate::gateway_support::{call, call_text, connect, fixture, user_id};
use crate::helpers::{
    Browser, CHALLENGE, PASSWORD, TestApp, VERIFIER, form_action, hidden_inputs, location,
    query_param, spawn_app_with,
};
use crate::machine_support::{add_machine, client_credentials};

const REDIRECT: &str = "http://127.0.0.1:1/callback";

/// Every record, oldest first, once everything queued is written.
async fn records(app: &TestApp) -> Vec<AuditRecord> {
    app.auth.audit.flush().await;
    app.store
        .search_audit(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

fn detail(r: &AuditRecord) -> Value {
    r.detail
        .as_deref()
        .map(|d| serde_json::from_str(d).unwrap())
        .unwrap_or(Value::Null)
}

/// (kind, outcome, username, client_id, target) of each record.
fn summary(records: &[AuditRecord]) -> Vec<(String, String, String, String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r.kind.clone(),
                r.outcome.clone(),
                r.username.clone().unwrap_or_default(),
                r.client_id.clone().unwrap_or_default(),
                r.target.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn row(
    kind: &str,
    outcome: &str,
    user: &str,
    client: &str,
    target: &str,
) -> (String, String, String, String, String) {
    (
        kind.into(),
        outcome.into(),
        user.into(),
        client.into(),
        target.into(),
    )
}

fn auth_params(app: &TestApp, client_id: &str) -> Vec<(String, String)> {
    app.auth_params(client_id, REDIRECT)
}

/// Opens the authorization request in `browser` and signs in: the consent page.
async fn consent_page(
    app: &TestApp,
    browser: &Browser,
    client_id: &str,
    password: &str,
) -> reqwest::Response {
    let r = browser.open_authorize(&auth_params(app, client_id)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let r = browser.submit_login(&html, "alice", password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    browser.get(&location(&r)).await
}

async fn revoke(app: &TestApp, form: &[(&str, &str)]) {
    let r = app
        .http
        .post(app.url("/v1/oauth/revoke"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_action_of_the_oauth_and_mcp_flows_is_one_record_and_none_holds_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("audit.jsonl");
    let jsonl_setting = jsonl.display().to_string();
    let app = spawn_app_with(|s| {
        s.upstream = vec![fixture("fx", "")];
        s.audit_jsonl = jsonl_setting;
    })
    .await;
    app.add_user("alice").await;
    let alice = user_id(&app, "alice").await;
    let start_ms = app.clock.now_ms();

    // A confidential client (DCR), so that there is a client secret to look for.
    let (client_id, secret) = app
        .register_confidential(REDIRECT, "client_secret_post")
        .await;

    // A wrong password, then the right one and consent.
    let browser = app.browser();
    let r = browser.open_authorize(&auth_params(&app, &client_id)).await;
    let html = r.text().await.unwrap();
    let wrong = "not-the-password-1234";
    let r = browser.submit_login(&html, "alice", wrong).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the sign-in page again"
    );
    let loc = browser
        .sign_in_and_approve(&auth_params(&app, &client_id), "alice", PASSWORD)
        .await;
    let code = query_param(&loc, "code").unwrap();

    // The code for tokens.
    let resource = app.resource();
    let r = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("code_verifier", VERIFIER),
            ("resource", &resource),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t1: Value = r.json().await.unwrap();
    let access1 = t1["access_token"].as_str().unwrap().to_string();
    let refresh1 = t1["refresh_token"].as_str().unwrap().to_string();

    // MCP: a built-in tool, an upstream tool, an upstream tool failing, an
    // unknown tool, a prompt and a resource.
    let (mcp, _events) = connect(&app, &access1).await;
    call_text(&mcp, "echo", json!({"text": "built-in hello"})).await;
    call_text(&mcp, "fx_add", json!({"a": 2, "b": 3})).await;
    let failed = call(&mcp, "fx_add", json!({"a": "not a number"})).await;
    assert!(
        failed.is_err() || failed.as_ref().is_ok_and(|r| r.is_error == Some(true)),
        "{failed:?}"
    );
    assert!(call(&mcp, "no_such_tool", json!({})).await.is_err());
    mcp.get_prompt(
        GetPromptRequestParams::new("fx_greet")
            .with_arguments(json!({"name": "Ada"}).as_object().unwrap().clone()),
    )
    .await
    .unwrap();
    mcp.read_resource(ReadResourceRequestParams::new("fixture://static"))
        .await
        .unwrap();
    drop(mcp);

    // Refresh, revoke the new access token, then reuse the old refresh token.
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh1),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: Value = r.json().await.unwrap();
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    revoke(
        &app,
        &[
            ("token", &access2),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    app.clock.advance(120);
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh1),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "reuse is refused");

    // Another client and browser: consent denied; then sign-out from the
    // consent page.
    let other = app.register_public(REDIRECT).await;
    let second = app.browser();
    let r = consent_page(&app, &second, &other, PASSWORD).await;
    let html = r.text().await.unwrap();
    let r = second.submit_consent(&html, "deny").await;
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("access_denied")
    );
    let r = second.open_authorize(&auth_params(&app, &other)).await;
    let html = r.text().await.unwrap();
    assert!(html.contains("Allow access?"), "{html}");
    let at = html.find("formaction=\"").unwrap() + "formaction=\"".len();
    let action = html[at..][..html[at..].find('"').unwrap()].to_string();
    let r = second.post_form(&action, &hidden_inputs(&html)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let _ = form_action; // (the consent form's own action is not used here)

    // A service token.
    let (machine, machine_secret) = add_machine(&app, "Nightly", None).await;
    let (status, body) = client_credentials(&app, &machine, &machine_secret, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let service_token = body["access_token"].as_str().unwrap().to_string();

    let all = records(&app).await;
    let c = client_id.as_str();
    assert_eq!(
        summary(&all),
        vec![
            row("client.registered", "ok", "", c, ""),
            row("sign_in", "denied", "alice", "", ""),
            row("sign_in", "ok", "alice", "", ""),
            row("consent", "ok", "alice", c, ""),
            row("token.issued", "ok", "alice", c, ""),
            row("tool.call", "ok", "alice", c, "echo"),
            row("tool.call", "ok", "alice", c, "fx_add"),
            row("tool.call", "error", "alice", c, "fx_add"),
            row("tool.call", "denied", "alice", c, "no_such_tool"),
            row("prompt.get", "ok", "alice", c, "fx_greet"),
            row("resource.read", "ok", "alice", c, "fixture://static"),
            row("token.refreshed", "ok", "alice", c, ""),
            row("token.revoked", "ok", "alice", c, ""),
            row("token.reuse_detected", "denied", "alice", c, ""),
            row("client.registered", "ok", "", &other, ""),
            row("sign_in", "ok", "alice", "", ""),
            row("consent", "denied", "alice", &other, ""),
            row("sign_out", "ok", "alice", "", ""),
            row("token.issued", "ok", "", &machine, ""),
        ],
        "{all:#?}"
    );

    // The fields of each kind.
    let by = |kind: &str, target: &str| {
        all.iter()
            .find(|r| r.kind == kind && r.target.as_deref().unwrap_or("") == target)
            .unwrap_or_else(|| panic!("no {kind} {target}"))
    };
    for r in &all {
        assert!(!r.instance.is_empty());
        assert!(r.at_ms >= start_ms, "{r:?}");
        if r.username.as_deref() == Some("alice") {
            assert_eq!(r.user_id.as_deref(), Some(alice.as_str()), "{r:?}");
        }
    }
    assert_eq!(detail(by("client.registered", ""))["via"], "dcr");
    assert_eq!(
        detail(by("client.registered", ""))["auth_method"],
        "client_secret_post"
    );
    let failed = &all[1];
    assert_eq!(detail(failed)["reason"], "wrong_password");
    assert_eq!(failed.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(detail(&all[2])["method"], "password");
    assert_eq!(
        detail(by("token.issued", ""))["grant"],
        "authorization_code"
    );
    let echo = by("tool.call", "echo");
    assert_eq!(detail(echo)["builtin"], true);
    assert!(echo.upstream.is_none());
    assert!(echo.duration_ms.is_some());
    let add = by("tool.call", "fx_add");
    assert_eq!(add.upstream.as_deref(), Some("fx"));
    assert!(add.duration_ms.is_some());
    assert!(
        detail(add).get("arguments").is_none(),
        "arguments are off by default"
    );
    let unknown = by("tool.call", "no_such_tool");
    assert_eq!(detail(unknown)["reason"], "unknown");
    assert!(unknown.upstream.is_none());
    assert_eq!(by("prompt.get", "fx_greet").upstream.as_deref(), Some("fx"));
    assert_eq!(
        by("resource.read", "fixture://static").upstream.as_deref(),
        Some("fx")
    );
    assert_eq!(detail(by("token.refreshed", ""))["grant"], "refresh_token");
    assert_eq!(
        detail(by("token.revoked", ""))["token_type"],
        "access_token"
    );
    assert_eq!(
        detail(by("token.reuse_detected", ""))["token_type"],
        "refresh_token"
    );
    let service = all.last().unwrap();
    assert_eq!(detail(service)["grant"], "client_credentials");
    assert!(service.user_id.is_none());

    // The stream holds the same records, line for line.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), all.len());
    for (line, r) in lines.iter().zip(&all) {
        assert_eq!(line["kind"], r.kind.as_str());
        assert_eq!(line["outcome"], r.outcome.as_str());
        assert_eq!(line["at_ms"], r.at_ms);
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }

    // No secret anywhere: not in any column of any row, not in any line.
    let secrets = [
        access1.as_str(),
        refresh1.as_str(),
        access2.as_str(),
        refresh2.as_str(),
        code.as_str(),
        secret.as_str(),
        machine_secret.as_str(),
        service_token.as_str(),
        PASSWORD,
        wrong,
        VERIFIER,
        CHALLENGE,
    ];
    let hashes: Vec<String> = secrets.iter().map(|s| hash_secret(s)).collect();
    let rows: Vec<String> = all
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    for haystack in rows
        .iter()
        .chain(text.lines().map(str::to_string).collect::<Vec<_>>().iter())
    {
        for s in secrets
            .iter()
            .copied()
            .chain(hashes.iter().map(String::as_str))
        {
            assert!(
                !haystack.contains(s),
                "a secret in an audit record: {haystack}"
            );
        }
    }
}

#[tokio::test]
async fn tool_arguments_are_recorded_only_when_asked() {
    let app = spawn_app_with(|s| s.audit_tool_arguments = true).await;
    let (_, token) = crate::mcp_support::signed_in(&app, "alice").await;
    let (mcp, _events) = connect(&app, token.as_str()).await;
    call_text(&mcp, "echo", json!({"text": "kept"})).await;
    drop(mcp);
    let all = records(&app).await;
    let echo = all.iter().find(|r| r.kind == "tool.call").unwrap();
    assert_eq!(detail(echo)["arguments"], json!({"text": "kept"}));
}

#[tokio::test]
async fn a_tool_of_an_upstream_the_user_may_not_use_is_recorded_as_denied_and_answered_as_unknown()
{
    let app = spawn_app_with(|s| {
        s.upstream = vec![fixture("private", "allowed_users = [\"bob\"]")];
    })
    .await;
    let (_, token) = crate::mcp_support::signed_in(&app, "alice").await;
    let (mcp, _events) = connect(&app, token.as_str()).await;
    let hidden = call(&mcp, "private_add", json!({"a": 1, "b": 2})).await;
    let unknown = call(&mcp, "nothing_add", json!({"a": 1, "b": 2})).await;
    drop(mcp);
    let (hidden, unknown) = (
        hidden.unwrap_err().to_string(),
        unknown.unwrap_err().to_string(),
    );
    assert_eq!(
        hidden.replace("private_add", "X"),
        unknown.replace("nothing_add", "X"),
        "the caller cannot tell a hidden tool from an unknown one"
    );
    let all = records(&app).await;
    let calls: Vec<_> = all.iter().filter(|r| r.kind == "tool.call").collect();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].outcome, "denied");
    assert_eq!(calls[0].upstream.as_deref(), Some("private"));
    assert_eq!(detail(calls[0])["reason"], "not_allowed");
    assert_eq!(calls[1].outcome, "denied");
    assert_eq!(detail(calls[1])["reason"], "unknown");
}

#[tokio::test]
async fn records_are_per_user_and_a_search_by_user_finds_only_theirs() {
    let app = spawn_app_with(|_| {}).await;
    let (_, alice_token) = crate::mcp_support::signed_in(&app, "alice").await;
    let (_, bob_token) = crate::mcp_support::signed_in(&app, "bob").await;
    for (token, message) in [(&alice_token, "from alice"), (&bob_token, "from bob")] {
        let (mcp, _events) = connect(&app, token.as_str()).await;
        call_text(&mcp, "echo", json!({"text": message})).await;
        drop(mcp);
    }
    app.auth.audit.flush().await;
    for user in ["alice", "bob"] {
        let mine = app
            .store
            .search_audit(&AuditQuery {
                user: Some(user.into()),
                kind: Some("tool.call".into()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(mine.len(), 1, "{mine:#?}");
        assert_eq!(mine[0].username.as_deref(), Some(user));
        assert_eq!(mine[0].user_id, Some(user_id(&app, user).await));
    }
}

#[tokio::test]
async fn housekeeping_prunes_records_older_than_the_retention() {
    let app = spawn_app_with(|s| s.audit_retention_days = 7).await;
    let now_ms = app.clock.now_ms();
    let day = 86_400_000;
    let old = AuditRecord {
        at_ms: now_ms - 8 * day,
        kind: "sign_in".into(),
        outcome: "ok".into(),
        instance: "i".into(),
        ..AuditRecord::default()
    };
    let recent = AuditRecord {
        at_ms: now_ms - 6 * day,
        ..old.clone()
    };
    app.store
        .append_audit(&[old, recent.clone()])
        .await
        .unwrap();
    app.auth.housekeeping().await.unwrap();
    let left = records(&app).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at_ms, recent.at_ms);
}

#[tokio::test]
async fn a_retention_of_zero_keeps_everything() {
    let app = spawn_app_with(|s| s.audit_retention_days = 0).await;
    let r = AuditRecord {
        at_ms: 1,
        kind: "sign_in".into(),
        outcome: "ok".into(),
        instance: "i".into(),
        ..AuditRecord::default()
    };
    app.store.append_audit(&[r]).await.unwrap();
    app.auth.housekeeping().await.unwrap();
    assert_eq!(records(&app).await.len(), 1);
}

#[tokio::test]
async fn with_the_store_off_nothing_is_written_to_the_table() {
    let app = spawn_app_with(|s| s.audit_store = false).await;
    crate::mcp_support::signed_in(&app, "alice").await;
    assert!(records(&app).await.is_empty());
}

#[tokio::test]
async fn a_federated_sign_in_and_a_failed_one_are_one_record_each() {
    use crate::federation_fixture::Mode;
    use crate::federation_support::{PROVIDER_ID, fed};
    let f = fed(Mode::Oidc, json!({})).await;
    f.sign_in().await;
    // A callback nobody started (forged state), with a provider code.
    let provider_code = "provider-code-never-recorded-4711";
    let r = f
        .app
        .browser()
        .get(&format!(
            "/oauth/callback?state=forged&code={provider_code}"
        ))
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());

    let all = records(&f.app).await;
    let sign_ins: Vec<_> = all.iter().filter(|r| r.kind == "sign_in").collect();
    assert_eq!(sign_ins.len(), 2, "{all:#?}");
    assert_eq!(sign_ins[0].outcome, "ok");
    assert_eq!(sign_ins[0].username.as_deref(), Some("ann"));
    assert_eq!(detail(sign_ins[0])["method"], "federated");
    assert_eq!(detail(sign_ins[0])["provider"], PROVIDER_ID);
    assert_eq!(sign_ins[0].client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(sign_ins[1].outcome, "denied");
    assert_eq!(detail(sign_ins[1])["method"], "federated");
    assert!(
        detail(sign_ins[1])["reason"]
            .as_str()
            .unwrap()
            .starts_with("federation.")
    );
    for r in &all {
        let text = serde_json::to_string(r).unwrap();
        assert!(!text.contains(provider_code), "{text}");
        assert!(
            !text.contains(crate::federation_fixture::CLIENT_SECRET),
            "{text}"
        );
    }
}

/// A call `[[policy]]` refuses, and one over a rule's rate limit, are one
/// `denied` record each (`reason` `policy`, `rate_limited`); allowed calls
/// are `ok`.
#[tokio::test]
async fn policy_refusals_and_rate_limits_are_recorded_as_denied() {
    use mcpgate_core::policy::{Effect, RuleConfig};
    let app = spawn_app_with(|s| {
        s.upstream = vec![fixture("fx", "")];
        s.policy = vec![
            RuleConfig {
                effect: Some(Effect::Deny),
                tools: vec!["fx_add".into()],
                users: vec!["*".into()],
                ..Default::default()
            },
            RuleConfig {
                effect: Some(Effect::Allow),
                tools: vec!["fx_echo".into()],
                users: vec!["*".into()],
                rate: Some("1/h".into()),
                ..Default::default()
            },
        ];
    })
    .await;
    let (_, token) = crate::mcp_support::signed_in(&app, "alice").await;
    let (mcp, _events) = connect(&app, token.as_str()).await;
    assert!(call(&mcp, "fx_add", json!({"a": 1, "b": 2})).await.is_err());
    assert!(call(&mcp, "fx_echo", json!({"text": "one"})).await.is_ok());
    assert!(call(&mcp, "fx_echo", json!({"text": "two"})).await.is_err());
    drop(mcp);
    let all = records(&app).await;
    let calls: Vec<_> = all.iter().filter(|r| r.kind == "tool.call").collect();
    let got: Vec<_> = calls
        .iter()
        .map(|r| {
            (
                r.target.clone().unwrap_or_default(),
                r.outcome.clone(),
                detail(r)["reason"].as_str().unwrap_or_default().to_string(),
                r.username.clone().unwrap_or_default(),
            )
        })
        .collect();
    let want = |t: &str, o: &str, why: &str| {
        (
            t.to_string(),
            o.to_string(),
            why.to_string(),
            "alice".to_string(),
        )
    };
    assert_eq!(
        got,
        vec![
            want("fx_add", "denied", "policy"),
            want("fx_echo", "ok", ""),
            want("fx_echo", "denied", "rate_limited"),
        ],
        "{calls:#?}"
    );
}

/// The token endpoint's records name the user from a cache of user names
/// (`auth::client_cache::UserNames`, docs/audit.md) instead of reading the
/// user for every grant: a refresh grant after a rename within the cache's
/// lifetime is still recorded under the name last read, and its user id,
/// which identifies the user, is the same.
#[tokio::test]
async fn refresh_grants_name_their_user_as_last_read_and_keep_its_id() {
    let app = spawn_app_with(|_| {}).await;
    app.add_user("carol").await;
    let carol = user_id(&app, "carol").await;
    let (client_id, t) = app.full_flow("carol").await;
    let mut rt = t["refresh_token"].as_str().unwrap().to_string();
    let renamed = mcpgate_core::domain::Username::parse("caroline").unwrap();
    for i in 0..3 {
        if i == 1 {
            // As `mcpgate user rename` does from another process.
            assert!(app.store.rename_user(&carol, &renamed).await.unwrap());
        }
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client_id),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        rt = body["refresh_token"].as_str().unwrap().to_string();
    }
    let refreshed: Vec<_> = records(&app)
        .await
        .into_iter()
        .filter(|r| r.kind == "token.refreshed")
        .collect();
    assert_eq!(refreshed.len(), 3, "{refreshed:#?}");
    for r in &refreshed {
        assert_eq!(r.user_id.as_deref(), Some(carol.as_str()), "{r:?}");
        assert_eq!(r.username.as_deref(), Some("carol"), "{r:?}");
    }
}

/// The cache of user names is keyed by user id: grants of two users,
/// interleaved, are each recorded under their own id and name.
#[tokio::test]
async fn interleaved_refresh_grants_of_two_users_each_name_their_own_user() {
    let app = spawn_app_with(|_| {}).await;
    let mut chains = Vec::new();
    for name in ["dora", "erin"] {
        app.add_user(name).await;
        let id = user_id(&app, name).await;
        let (client_id, t) = app.full_flow(name).await;
        let rt = t["refresh_token"].as_str().unwrap().to_string();
        chains.push((name, id, client_id, rt));
    }
    for _ in 0..3 {
        for (_, _, client_id, rt) in chains.iter_mut() {
            let r = app
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", client_id.as_str()),
                ])
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.unwrap();
            *rt = body["refresh_token"].as_str().unwrap().to_string();
        }
    }
    let refreshed: Vec<_> = records(&app)
        .await
        .into_iter()
        .filter(|r| r.kind == "token.refreshed")
        .collect();
    assert_eq!(refreshed.len(), 6, "{refreshed:#?}");
    for (name, id, client_id, _) in &chains {
        let theirs: Vec<_> = refreshed
            .iter()
            .filter(|r| r.client_id.as_deref() == Some(client_id.as_str()))
            .collect();
        assert_eq!(theirs.len(), 3, "{refreshed:#?}");
        for r in theirs {
            assert_eq!(r.user_id.as_deref(), Some(id.as_str()), "{r:?}");
            assert_eq!(r.username.as_deref(), Some(*name), "{r:?}");
        }
    }
}
