//! The `mcpgate` command line, run as a child process in a temporary
//! directory (so it uses its own `mcpgate.db`).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.0.path())
            .env_remove("MCPGATE_CONFIG");
        for (k, _) in std::env::vars() {
            if k.starts_with("MCPGATE_") {
                c.env_remove(k);
            }
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().expect("runs")
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("waits")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failing command prints one clear `error:` line and exits non-zero.
fn assert_fails_with(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stdout(o)
    );
    let err = stderr(o);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err:?}"));
    assert!(
        line.contains(needle),
        "{line:?} does not mention {needle:?}"
    );
}

#[test]
fn init_writes_a_commented_config_and_refuses_to_overwrite_it() {
    let d = Dir::new();
    let o = d.run(&["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.0.path().join("mcpgate.toml")).unwrap();
    assert!(text.contains("public_url"));
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 20);
    assert_fails_with(&d.run(&["init"]), "already exists");
    assert!(d.run(&["init", "--force"]).status.success());
    // The written file is a valid configuration.
    assert!(d.run(&["migrate"]).status.success());
}

#[test]
fn users_are_added_listed_changed_and_removed() {
    let d = Dir::new();
    let o = d.run_with_stdin(
        &["user", "add", "alice", "--password-stdin"],
        "a long password\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&d.run(&["user", "list"]));
    assert!(list.starts_with("alice\t"), "{list}");
    assert_fails_with(
        &d.run_with_stdin(
            &["user", "add", "alice", "--password-stdin"],
            "another password\n",
        ),
        "already exists",
    );
    assert_fails_with(
        &d.run_with_stdin(&["user", "add", "bob", "--password-stdin"], "short\n"),
        "at least 8",
    );
    assert_fails_with(
        &d.run_with_stdin(
            &["user", "add", "bad name", "--password-stdin"],
            "a long password\n",
        ),
        "invalid username",
    );
    assert_fails_with(&d.run(&["user", "add", "carol"]), "--password-stdin");
    let o = d.run_with_stdin(
        &["user", "passwd", "alice", "--password-stdin"],
        "a new long password\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails_with(
        &d.run_with_stdin(
            &["user", "passwd", "nobody", "--password-stdin"],
            "a new long password\n",
        ),
        "no user",
    );
    assert!(d.run(&["user", "remove", "alice"]).status.success());
    assert_eq!(stdout(&d.run(&["user", "list"])).trim(), "no users");
    assert_fails_with(&d.run(&["user", "remove", "alice"]), "no user");
}

#[test]
fn the_password_never_comes_from_the_command_line() {
    let d = Dir::new();
    let o = d.run(&["user", "add", "alice", "--password", "secret123"]);
    assert!(!o.status.success());
}

#[test]
fn a_public_listen_address_needs_an_https_public_url() {
    let d = Dir::new();
    assert_fails_with(
        &d.run(&["serve", "--listen", "0.0.0.0:0"]),
        "requires public_url",
    );
    assert_fails_with(
        &d.run(&[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--public-url",
            "http://mcp.example.com",
        ]),
        "must be https",
    );
    // The same through the environment.
    let o = d
        .cmd(&["serve"])
        .env("MCPGATE_LISTEN", "0.0.0.0:0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_fails_with(&o, "requires public_url");
}

#[test]
fn invalid_settings_fail_with_one_clear_line() {
    let d = Dir::new();
    assert_fails_with(
        &d.run(&["serve", "--auth-code-ttl", "11m", "--listen", "127.0.0.1:0"]),
        "auth_code_ttl",
    );
    assert_fails_with(
        &d.run(&["--config", "missing.toml", "migrate"]),
        "does not exist",
    );
    std::fs::write(d.0.path().join("mcpgate.toml"), "no_such_setting = 1\n").unwrap();
    assert_fails_with(&d.run(&["migrate"]), "no_such_setting");
}

/// Starts `mcpgate serve` and returns the child and its first output lines.
async fn serve(
    d: &Dir,
    args: &[&str],
    env: &[(&str, &str)],
) -> (tokio::process::Child, Vec<String>) {
    let mut cmd = tokio::process::Command::from(d.cmd(args));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut out = Vec::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.starts_with("Press Ctrl-C to stop.");
            out.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("serve prints its banner");
    (child, out)
}

fn port_of(lines: &[String]) -> u16 {
    lines[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("port in first line")
}

#[tokio::test]
async fn serve_prints_the_urls_and_the_first_admin_password_once() {
    let d = Dir::new();
    let (mut child, lines) = serve(&d, &["serve", "--listen", "127.0.0.1:0"], &[]).await;
    let text = lines.join("\n");
    let port = port_of(&lines);
    assert!(
        text.contains(&format!("http://localhost:{port}/v1/ai/mcp")),
        "{text}"
    );
    assert!(text.contains(&format!(
        "http://localhost:{port}/.well-known/oauth-authorization-server"
    )));
    assert!(text.contains(&format!(
        "http://localhost:{port}/.well-known/oauth-protected-resource/v1/ai/mcp"
    )));
    assert!(text.contains(&format!("http://localhost:{port}/v1/oauth/authorize")));
    let pw_line = lines
        .iter()
        .find(|l| l.contains("Password (shown only now):"))
        .expect("password shown");
    let password = pw_line.rsplit(' ').next().unwrap().to_string();
    assert!(password.len() >= 16);
    assert!(
        d.0.path().join("mcpgate.db").exists(),
        "the SQLite file is in the working directory"
    );

    // The printed password signs in.
    let r = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let store = mcpgate::app::open_store(&format!(
        "sqlite://{}",
        d.0.path().join("mcpgate.db").display()
    ))
    .await
    .unwrap();
    let admin = store
        .user_by_username("admin")
        .await
        .unwrap()
        .expect("admin exists");
    assert!(mcpgate::auth::password::verify(
        &password,
        admin.password_hash.as_deref()
    ));
    child.kill().await.unwrap();

    // A second start has users: no new password.
    let (mut child, lines) = serve(&d, &["serve", "--listen", "127.0.0.1:0"], &[]).await;
    assert!(!lines.join("\n").contains("Password"), "{lines:?}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn flags_win_over_the_environment_which_wins_over_the_file() {
    let d = Dir::new();
    std::fs::write(
        d.0.path().join("mcpgate.toml"),
        "listen = \"127.0.0.1:0\"\npublic_url = \"http://file.localhost:1\"\n",
    )
    .unwrap();
    let (mut c, lines) = serve(&d, &["serve"], &[]).await;
    assert!(
        lines
            .join("\n")
            .contains("http://file.localhost:1/v1/ai/mcp")
    );
    c.kill().await.unwrap();
    let (mut c, lines) = serve(
        &d,
        &["serve"],
        &[("MCPGATE_PUBLIC_URL", "http://env.localhost:2")],
    )
    .await;
    assert!(
        lines
            .join("\n")
            .contains("http://env.localhost:2/v1/ai/mcp")
    );
    c.kill().await.unwrap();
    let (mut c, lines) = serve(
        &d,
        &["serve", "--public-url", "http://flag.localhost:3"],
        &[("MCPGATE_PUBLIC_URL", "http://env.localhost:2")],
    )
    .await;
    assert!(
        lines
            .join("\n")
            .contains("http://flag.localhost:3/v1/ai/mcp")
    );
    c.kill().await.unwrap();
}

#[tokio::test]
async fn clients_registered_over_http_can_be_listed_shown_and_removed() {
    let d = Dir::new();
    let (mut child, lines) = serve(&d, &["serve", "--listen", "127.0.0.1:0"], &[]).await;
    let port = port_of(&lines);
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/register"))
        .json(&serde_json::json!({"client_name": "CLI test", "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = body["client_id"].as_str().unwrap().to_string();
    child.kill().await.unwrap();

    let list = stdout(&d.run(&["client", "list"]));
    assert!(
        list.contains(&id) && list.contains("CLI test") && list.contains("never used"),
        "{list}"
    );
    let show: serde_json::Value =
        serde_json::from_str(&stdout(&d.run(&["client", "show", &id]))).unwrap();
    assert_eq!(show["client_id"], id.as_str());
    assert_eq!(
        show["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    assert_eq!(show["active_access_tokens"], 0);
    assert!(show.get("client_secret").is_none());
    assert!(d.run(&["client", "remove", &id]).status.success());
    assert_eq!(stdout(&d.run(&["client", "list"])).trim(), "no clients");
    assert_fails_with(&d.run(&["client", "show", &id]), "no client");
    assert_fails_with(&d.run(&["client", "remove", &id]), "no client");
}

#[tokio::test]
async fn foreign_mcpgate_variables_are_ignored_and_lists_come_comma_separated() {
    let d = Dir::new();
    // Variables of the documented curl script share the prefix; they are not settings.
    let o = d
        .cmd(&["migrate"])
        .env("MCPGATE_USER", "x")
        .env("MCPGATE_PASSWORD", "y")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (mut child, lines) = serve(
        &d,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("MCPGATE_SCOPES", "mcp, extra"), ("MCPGATE_USER", "x")],
    )
    .await;
    let port = port_of(&lines);
    let m: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{port}/.well-known/oauth-authorization-server"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["mcp", "extra", "offline_access"])
    );
    child.kill().await.unwrap();
}

#[test]
fn the_first_user_is_admin_and_the_role_and_disabling_are_set_from_the_command_line() {
    let d = Dir::new();
    for (name, extra) in [("alice", None), ("bob", None), ("carol", Some("--admin"))] {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        args.extend(extra);
        let o = d.run_with_stdin(&args, "a long password\n");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let role = |name: &str| {
        let list = stdout(&d.run(&["user", "list"]));
        list.lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .map(|l| l.split('\t').skip(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    assert_eq!(role("alice"), "admin", "the first user");
    assert_eq!(role("bob"), "");
    assert_eq!(role("carol"), "admin", "--admin");
    assert!(d.run(&["user", "admin", "bob", "on"]).status.success());
    assert!(d.run(&["user", "admin", "alice", "off"]).status.success());
    assert_eq!(role("alice"), "");
    assert_eq!(role("bob"), "admin");
    assert_fails_with(&d.run(&["user", "admin", "nobody", "on"]), "no user");
    assert!(!d.run(&["user", "admin", "bob", "maybe"]).status.success());

    let o = d.run(&["user", "disable", "carol"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(role("carol"), "admin disabled");
    assert_eq!(role("bob"), "admin", "nobody else changed");
    assert!(d.run(&["user", "enable", "carol"]).status.success());
    assert_eq!(role("carol"), "admin");
    // Each action is in the audit log, by the command line.
    let log = stdout(&d.run(&["audit", "search", "--kind", "admin.action", "--json"]));
    for action in ["user.create", "user.admin", "user.disable", "user.enable"] {
        assert!(
            log.contains(&format!("\"action\":\"{action}\"")),
            "{action}: {log}"
        );
    }
    assert!(log.contains("\"by\":\"cli\""), "{log}");
}
