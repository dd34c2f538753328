//! Live configuration reload (docs/operations.md, "Reload"), with sessions
//! open: upstreams added, removed and changed, a policy changed for one
//! user only, an invalid file, a setting that needs a restart; the same
//! reload through `SIGHUP` and `mcpgate reload` against the binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::gateway_support::{
    FIXTURE, WAIT, call_text, connect, legacy_session, next, poll, tool_names,
};
use crate::helpers::{TestApp, spawn_app_from_file};
use crate::mcp_support::signed_in;

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

fn upstream_toml(name: &str) -> String {
    format!("[[upstream]]\nname = {name:?}\ncommand = {FIXTURE:?}\n")
}

/// A server configured by a file in its own directory; returns the file.
async fn spawn_with(config: &str) -> (TestApp, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mcpgate.toml");
    std::fs::write(&file, config).expect("write the config");
    (spawn_app_from_file(dir, file.clone()).await, file)
}

fn write(file: &Path, config: &str) {
    std::fs::write(file, config).expect("write the config");
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

/// No `list_changed` arrives within a short while.
async fn quiet(rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>, who: &str) {
    let got = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(got.is_err(), "{who} was told a list changed: {got:?}");
}

#[tokio::test]
async fn an_added_upstream_reaches_open_sessions_while_the_others_keep_working() {
    let (app, file) = spawn_with(&upstream_toml("one")).await;
    let (_, token) = signed_in(&app, "alice").await;
    let (client, mut events) = connect(&app, &token).await;
    assert!(has(&tool_names(&client).await, "one_echo"));
    assert!(!has(&tool_names(&client).await, "two_echo"));
    // A call to `one` in flight across the reload finishes.
    let slow = {
        let peer = client.peer().clone();
        tokio::spawn(async move {
            peer.call_tool(crate::gateway_support::tool_call(
                "one_slow",
                json!({"steps": 4, "step_ms": 250}),
            ))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    write(
        &file,
        &format!("{}{}", upstream_toml("one"), upstream_toml("two")),
    );
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(report.upstreams_added, vec!["two".to_string()]);
    assert!(report.upstreams_changed.is_empty() && report.upstreams_removed.is_empty());
    assert_eq!(report.changed, vec!["upstream".to_string()]);
    assert!(report.sessions_notified >= 1, "{report:?}");

    next(&mut events.tools_changed, "tools/list_changed").await;
    let names = tool_names(&client).await;
    assert!(
        has(&names, "two_echo") && has(&names, "one_echo"),
        "{names:?}"
    );
    let finished = slow.await.expect("joins").expect("the slow call survives");
    assert_ne!(finished.is_error, Some(true), "{finished:?}");
    assert_eq!(
        call_text(&client, "one_echo", json!({"text": "still here"})).await,
        "still here"
    );
    assert_eq!(
        call_text(&client, "two_echo", json!({"text": "new"})).await,
        "new"
    );
}

#[tokio::test]
async fn a_removed_upstream_disappears_and_a_changed_one_restarts_alone() {
    let (app, file) = spawn_with(&format!(
        "{}{}{}",
        upstream_toml("keep"),
        upstream_toml("gone"),
        upstream_toml("edit")
    ))
    .await;
    let (_, token) = signed_in(&app, "alice").await;
    let (client, mut events) = connect(&app, &token).await;
    // The fixture's `whoami_env` names its process: a restart changes it.
    let keep_pid = call_text(&client, "keep_whoami_env", json!({})).await;
    let edit_pid = call_text(&client, "edit_whoami_env", json!({})).await;

    write(
        &file,
        &format!(
            "{}{}env = {{ FIXTURE_MARK = \"changed\" }}\n",
            upstream_toml("keep"),
            upstream_toml("edit")
        ),
    );
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(report.upstreams_removed, vec!["gone".to_string()]);
    assert_eq!(report.upstreams_changed, vec!["edit".to_string()]);
    next(&mut events.tools_changed, "tools/list_changed").await;

    let names = tool_names(&client).await;
    assert!(!names.iter().any(|n| n.starts_with("gone_")), "{names:?}");
    assert!(
        has(&names, "keep_echo") && has(&names, "edit_echo"),
        "{names:?}"
    );
    let err = crate::gateway_support::mcp_error(
        crate::gateway_support::call(&client, "gone_echo", json!({"text": "x"})).await,
    );
    assert!(err.message.contains("gone_echo"), "{err:?}");
    assert_eq!(
        call_text(&client, "keep_whoami_env", json!({})).await,
        keep_pid,
        "the unchanged upstream kept its process"
    );
    assert_ne!(
        call_text(&client, "edit_whoami_env", json!({})).await,
        edit_pid,
        "the changed upstream restarted"
    );
}

#[tokio::test]
async fn a_policy_change_hides_a_tool_from_one_user_only_and_tells_the_sessions() {
    let (app, file) = spawn_with(&upstream_toml("fx")).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let (a, mut a_events) = connect(&app, &alice).await;
    let (b, mut b_events) = connect(&app, &bob).await;
    // A legacy SSE session of bob's is told too.
    let (mut legacy, _) = legacy_session(&app, &bob).await;
    let bob_before = tool_names(&b).await;
    assert!(has(&tool_names(&a).await, "fx_add"));

    write(
        &file,
        &format!(
            "{}[[policy]]\neffect = \"deny\"\nusers = [\"alice\"]\ntools = [\"fx_add\"]\n",
            upstream_toml("fx")
        ),
    );
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(report.changed, vec!["policy".to_string()]);
    assert!(report.upstreams_changed.is_empty(), "{report:?}");

    next(&mut a_events.tools_changed, "alice's tools/list_changed").await;
    next(&mut b_events.tools_changed, "bob's tools/list_changed").await;
    let legacy_note = tokio::time::timeout(WAIT, async {
        loop {
            let e = legacy.next_event().await.expect("the stream is open");
            if !e.data.is_empty() && e.json()["method"] == "notifications/tools/list_changed" {
                return;
            }
        }
    })
    .await;
    assert!(
        legacy_note.is_ok(),
        "the legacy session got no list_changed"
    );

    let alice_now = tool_names(&a).await;
    assert!(!has(&alice_now, "fx_add"), "{alice_now:?}");
    assert!(has(&alice_now, "fx_echo"), "{alice_now:?}");
    assert_eq!(tool_names(&b).await, bob_before, "bob's list is unchanged");
    assert_eq!(
        call_text(&b, "fx_add", json!({"a": 1, "b": 2})).await,
        "3",
        "bob may still call it"
    );
    let denied = crate::gateway_support::call(&a, "fx_add", json!({"a": 1, "b": 2})).await;
    assert!(
        denied.is_err() || denied.as_ref().is_ok_and(|r| r.is_error == Some(true)),
        "{denied:?}"
    );
}

#[tokio::test]
async fn an_invalid_file_keeps_the_running_configuration() {
    let (app, file) = spawn_with(&upstream_toml("fx")).await;
    let (_, token) = signed_in(&app, "alice").await;
    let (client, mut events) = connect(&app, &token).await;
    let before = tool_names(&client).await;

    // Two upstreams with one name: refused at start, so refused here.
    write(
        &file,
        &format!("{}{}", upstream_toml("fx"), upstream_toml("fx")),
    );
    let err = app.reloader.reload().await.expect_err("refused");
    assert!(err.to_string().contains("two upstreams"), "{err}");
    // Not TOML at all.
    write(&file, "[[upstream]\nname = ");
    let err = app.reloader.reload().await.expect_err("refused");
    assert!(err.to_string().contains("invalid configuration"), "{err}");
    // A policy naming a group nobody is in.
    write(
        &file,
        &format!(
            "{}[[policy]]\neffect = \"allow\"\ngroups = [\"nobody\"]\ntools = [\"*\"]\n",
            upstream_toml("fx")
        ),
    );
    let err = app.reloader.reload().await.expect_err("refused");
    assert!(err.to_string().contains("nobody"), "{err}");

    quiet(&mut events.tools_changed, "the session").await;
    assert_eq!(tool_names(&client).await, before);
    assert_eq!(
        call_text(&client, "fx_echo", json!({"text": "on"})).await,
        "on"
    );
}

#[tokio::test]
async fn a_restart_only_setting_is_reported_and_keeps_its_running_value() {
    let (app, file) = spawn_with(&format!(
        "server_name = \"before\"\nallowed_hosts = []\n{}",
        upstream_toml("fx")
    ))
    .await;
    write(
        &file,
        &format!(
            "server_name = \"after\"\nallowed_hosts = [\"gate.example\"]\n{}",
            upstream_toml("fx")
        ),
    );
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(report.needs_restart, vec!["server_name".to_string()]);
    assert_eq!(report.changed, vec!["allowed_hosts".to_string()]);
    assert!(report.upstreams_changed.is_empty(), "{report:?}");
    // allowed_hosts is live: the MCP endpoint now accepts that Host.
    let r = app
        .http
        .post(app.url(crate::mcp_support::MCP))
        .header("host", "gate.example")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 401, "past the Host check, stopped at the token");
    // server_name kept its running value (the name sessions are told).
    let (_, token) = signed_in(&app, "alice").await;
    let (client, _) = connect(&app, &token).await;
    assert_eq!(
        client
            .peer_info()
            .and_then(|i| i.server_info.as_ref().map(|s| s.name.clone())),
        Some("before".to_string())
    );
    // Reported again as long as the file differs from what runs.
    let again = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(again.needs_restart, vec!["server_name".to_string()]);
    assert!(again.changed.is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_one_user_may_use_is_announced_to_that_user_only_on_every_transport() {
    use crate::mcp_listen::{Listen, call, meta};
    let (app, file) = spawn_with(&upstream_toml("fx")).await;
    let (_, alice) = signed_in(&app, "alice").await;
    let (_, bob) = signed_in(&app, "bob").await;
    let (a, mut a_events) = connect(&app, &alice).await;
    let (b, mut b_events) = connect(&app, &bob).await;
    let tools = json!({"toolsListChanged": true});
    let mut a_listen = Listen::open(&app, &alice, 1, tools.clone()).await;
    let mut b_listen = Listen::open(&app, &bob, 2, tools).await;

    write(
        &file,
        &format!(
            "{}{}allowed_users = [\"alice\"]\n",
            upstream_toml("fx"),
            upstream_toml("mine")
        ),
    );
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(report.upstreams_added, vec!["mine".to_string()]);

    next(&mut a_events.tools_changed, "alice's tools/list_changed").await;
    a_listen.expect("notifications/tools/list_changed").await;
    quiet(&mut b_events.tools_changed, "bob's session").await;
    b_listen
        .expect_nothing("bob's listen stream heard of an upstream he may not use")
        .await;
    assert!(has(&tool_names(&a).await, "mine_echo"));
    let bob_names = tool_names(&b).await;
    assert!(
        !bob_names.iter().any(|n| n.starts_with("mine_")),
        "{bob_names:?}"
    );
    // Alice's listen stream now hears the new upstream; bob's does not.
    call(&app, &alice, "mine_change_tools", json!({}), meta()).await;
    a_listen.expect("notifications/tools/list_changed").await;
    b_listen
        .expect_nothing("bob's listen stream heard alice's upstream")
        .await;
}

#[tokio::test]
async fn identity_providers_change_live_on_the_sign_in_page() {
    let (app, file) = spawn_with("").await;
    let redirect = "http://127.0.0.1:1/callback";
    let client_id = app.register_public(redirect).await;
    let params = app.auth_params(&client_id, redirect);
    let page = app
        .browser()
        .open_authorize(&params)
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("Corp SSO"), "{page}");

    write(
        &file,
        "[[identity_provider]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://login.corp.example\"\nclient_id = \"mcpgate\"\ndisplay_name = \"Corp SSO\"\n",
    );
    let report = app.reloader.reload().await.expect("the reload succeeds");
    assert_eq!(report.changed, vec!["identity_provider".to_string()]);
    assert_eq!(report.sessions_notified, 0, "the catalog did not change");
    let page = app
        .browser()
        .open_authorize(&params)
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Corp SSO"), "{page}");
}

// ---- the binary: SIGHUP and `mcpgate reload` ----

struct Server {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    port: u16,
    /// The server's log lines (stderr), as they come.
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

fn command(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args).current_dir(dir).env_remove("MCPGATE_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info").stdin(Stdio::null());
    c
}

/// `mcpgate serve` in a directory holding `mcpgate.toml` (the README's
/// default run: no flags but the port).
async fn serve(config: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mcpgate.toml"), config).expect("write");
    let mut child = command(dir.path(), &["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("serve prints its banner")
        .expect("reads")
        .expect("a line");
    let port: u16 = first
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("port in {first:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    let (tx, log) = tokio::sync::mpsc::unbounded_channel();
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            let _ = tx.send(line);
        }
    });
    Server {
        child,
        dir,
        port,
        log,
    }
}

impl Server {
    async fn log_line(&mut self, needle: &str) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                let line = self.log.recv().await.expect("the log is open");
                if line.contains(needle) {
                    return line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with {needle:?}"))
    }

    async fn upstreams(&self) -> Vec<String> {
        let out = command(
            self.dir.path(),
            &[
                "status",
                "--url",
                &format!("http://127.0.0.1:{}", self.port),
            ],
        )
        .output()
        .await
        .expect("status runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    }

    async fn reload_cli(&self) -> std::process::Output {
        command(
            self.dir.path(),
            &[
                "reload",
                "--url",
                &format!("http://127.0.0.1:{}", self.port),
            ],
        )
        .output()
        .await
        .expect("reload runs")
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_binary_and_an_invalid_file_is_logged() {
    let mut server = serve(&upstream_toml("one")).await;
    assert_eq!(server.upstreams().await, vec!["one".to_string()]);
    let conf = server.dir.path().join("mcpgate.toml");
    write(
        &conf,
        &format!("{}{}", upstream_toml("one"), upstream_toml("two")),
    );
    let pid = server.child.id().expect("pid").to_string();
    let kill = |pid: &str| {
        let status = std::process::Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    kill(&pid);
    server.log_line("configuration reloaded").await;
    poll("two in mcpgate status", WAIT, || async {
        (server.upstreams().await == ["one", "two"]).then_some(())
    })
    .await;

    write(
        &conf,
        &format!("{}{}", upstream_toml("one"), upstream_toml("one")),
    );
    kill(&pid);
    let line = server.log_line("config.reload_failed").await;
    assert!(
        line.contains("two upstreams have this name"),
        "the error names the problem: {line}"
    );
    assert_eq!(
        server.upstreams().await,
        vec!["one", "two"],
        "still serving"
    );
}

#[tokio::test]
async fn mcpgate_reload_reports_what_changed_and_what_needs_a_restart() {
    let mut server = serve(&upstream_toml("one")).await;
    let conf = server.dir.path().join("mcpgate.toml");
    write(
        &conf,
        &format!(
            "server_name = \"renamed\"\n{}{}",
            upstream_toml("one"),
            upstream_toml("two")
        ),
    );
    let out = server.reload_cli().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {:?}", out.stderr);
    assert!(stdout.contains("upstreams added: two"), "{stdout}");
    assert!(
        stdout.contains("needs a restart (running value kept): server_name"),
        "{stdout}"
    );
    let line = server.log_line("config.reload_needs_restart").await;
    assert!(line.contains("server_name"), "{line}");
    assert_eq!(server.upstreams().await, vec!["one", "two"]);

    // An invalid file: a clear failure, the server keeps its configuration.
    write(&conf, "[[upstream]]\nname = \"x\"\n");
    let out = server.reload_cli().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("did not reload"), "{stderr}");
    assert!(stderr.contains("running configuration is kept"), "{stderr}");
    assert_eq!(server.upstreams().await, vec!["one", "two"]);

    // Without the operator token: refused.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/admin/reload", server.port))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "refused");

    // No server: said clearly.
    server.child.kill().await.expect("kill");
    let _ = server.child.wait().await;
    let out = server.reload_cli().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no mcpgate server is running"), "{stderr}");
}
