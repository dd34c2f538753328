//! `mcpgate audit tail | search`, and the records of `mcpgate client add`
//! and `client remove`, run as child processes in a temporary directory
//! (its own `mcpgate.db`).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcpgate::store::sqlite::SqliteStore;
use mcpgate::store::{AuditQuery, AuditRecord, Store};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.0.path());
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

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    async fn store(&self) -> SqliteStore {
        let url = format!("sqlite://{}", self.0.path().join("mcpgate.db").display());
        let s = SqliteStore::connect(&url).await.expect("open");
        s.migrate().await.expect("migrate");
        s
    }
}

fn rec(
    at_ms: i64,
    kind: &str,
    user: &str,
    client: &str,
    target: &str,
    outcome: &str,
) -> AuditRecord {
    AuditRecord {
        at_ms,
        kind: kind.into(),
        outcome: outcome.into(),
        user_id: Some(format!("id-{user}")),
        username: Some(user.into()),
        client_id: Some(client.into()),
        target: (!target.is_empty()).then(|| target.to_string()),
        instance: "test".into(),
        ..AuditRecord::default()
    }
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test]
async fn client_add_and_remove_are_recorded_in_the_table_and_the_stream_without_the_secret() {
    let dir = Dir::new();
    let jsonl = dir.0.path().join("audit.jsonl").display().to_string();
    let out = dir.ok(&[
        "client",
        "add",
        "--name",
        "Reports",
        "--secret",
        "--grant-types",
        "client_credentials",
        "--audit-jsonl",
        &jsonl,
    ]);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id="))
        .unwrap()
        .to_string();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret="))
        .unwrap()
        .to_string();
    dir.ok(&["client", "remove", &id, "--audit-jsonl", &jsonl]);

    let store = dir.store().await;
    let all = store.search_audit(&AuditQuery::default()).await.unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = all
        .iter()
        .map(|r| (r.kind.as_str(), r.instance.as_str(), r.client_id.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("client.registered", "cli", Some(id.as_str())),
            ("client.removed", "cli", Some(id.as_str()))
        ]
    );
    let detail: Value = serde_json::from_str(all[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["via"], "cli");
    assert_eq!(detail["auth_method"], "client_secret_basic");

    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines = json_lines(&text);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "client.registered");
    assert_eq!(lines[1]["kind"], "client.removed");
    for haystack in all
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .chain(std::iter::once(text))
    {
        assert!(!haystack.contains(&secret), "{haystack}");
        assert!(!haystack.contains(&mcpgate_core::crypto::hash_secret(&secret)));
    }
}

#[tokio::test]
async fn tail_shows_the_last_records_oldest_first_as_a_table_or_json() {
    let dir = Dir::new();
    let store = dir.store().await;
    store
        .append_audit(&[
            rec(1_700_000_000_000, "sign_in", "alice", "c1", "", "ok"),
            rec(1_700_000_001_000, "tool.call", "alice", "c1", "echo", "ok"),
            rec(
                1_700_000_002_000,
                "tool.call",
                "bob",
                "c2",
                "crm_delete",
                "denied",
            ),
        ])
        .await
        .unwrap();
    store.close().await;

    let out = dir.ok(&["audit", "tail", "-n", "2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two rows: {out}");
    assert!(lines[0].starts_with("TIME"), "{out}");
    assert!(
        lines[1].contains("2023-11-14T22:13:21.000Z") && lines[1].contains("echo"),
        "{out}"
    );
    assert!(
        lines[2].contains("crm_delete") && lines[2].contains("denied") && lines[2].contains("bob"),
        "{out}"
    );

    let out = dir.ok(&["audit", "tail", "--json"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "sign_in");
    assert_eq!(lines[2]["target"], "crm_delete");
    assert!(lines[0]["id"].as_i64().unwrap() < lines[2]["id"].as_i64().unwrap());
    assert_eq!(lines[1]["time"], "2023-11-14T22:13:21.000Z");
}

#[tokio::test]
async fn search_applies_every_filter() {
    let dir = Dir::new();
    let store = dir.store().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    store
        .append_audit(&[
            rec(now - 5 * hour, "tool.call", "alice", "c1", "echo", "ok"),
            rec(now - 3 * hour, "tool.call", "alice", "c2", "echo", "denied"),
            rec(now - 2 * hour, "tool.call", "bob", "c1", "echo", "ok"),
            rec(now - hour, "tool.call", "alice", "c1", "add", "error"),
            rec(now - hour, "sign_in", "alice", "c1", "", "ok"),
        ])
        .await
        .unwrap();
    store.close().await;
    let search = |args: &[&str]| {
        let mut all = vec!["audit", "search", "--json"];
        all.extend_from_slice(args);
        json_lines(&dir.ok(&all))
            .iter()
            .map(|v| {
                format!(
                    "{}/{}/{}/{}",
                    v["username"].as_str().unwrap(),
                    v["client_id"].as_str().unwrap(),
                    v["target"].as_str().unwrap_or("-"),
                    v["outcome"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(search(&["--user", "bob"]), ["bob/c1/echo/ok"]);
    assert_eq!(
        search(&["--user", "alice", "--tool", "echo"]),
        ["alice/c1/echo/ok", "alice/c2/echo/denied"]
    );
    assert_eq!(search(&["--client", "c2"]), ["alice/c2/echo/denied"]);
    assert_eq!(search(&["--outcome", "error"]), ["alice/c1/add/error"]);
    assert_eq!(search(&["--kind", "sign_in"]), ["alice/c1/-/ok"]);
    assert_eq!(
        search(&["--since", "150m", "--kind", "tool.call"]),
        ["bob/c1/echo/ok", "alice/c1/add/error"]
    );
    assert_eq!(search(&["--until", "4h"]), ["alice/c1/echo/ok"]);
    assert_eq!(
        search(&["--limit", "1", "--user", "alice", "--tool", "echo"]),
        ["alice/c2/echo/denied"],
        "the newest"
    );

    let table = dir.ok(&["audit", "search", "--user", "bob"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        dir.ok(&["audit", "search", "--user", "nobody"])
            .contains("no matching audit records")
    );

    let o = dir.run(&["audit", "search", "--outcome", "maybe"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ok, denied or error"));
    let o = dir.run(&["audit", "search", "--since", "last tuesday"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--since"));
}

#[tokio::test]
async fn a_value_with_control_characters_cannot_forge_a_table_line() {
    let dir = Dir::new();
    let store = dir.store().await;
    store
        .append_audit(&[rec(
            1,
            "tool.call",
            "alice",
            "c1",
            "x\n2023-01-01 forged",
            "denied",
        )])
        .await
        .unwrap();
    store.close().await;
    let out = dir.ok(&["audit", "tail"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("x\\n2023-01-01"), "{out}");
}

#[tokio::test]
async fn tail_follow_prints_records_written_after_it_started() {
    let dir = Dir::new();
    let store = dir.store().await;
    store
        .append_audit(&[rec(1, "sign_in", "alice", "c1", "", "ok")])
        .await
        .unwrap();
    let mut child = tokio::process::Command::from(dir.cmd(&["audit", "tail", "-f", "--json"]))
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
    assert_eq!(first["kind"], "sign_in");
    store
        .append_audit(&[
            rec(2, "tool.call", "alice", "c1", "echo", "ok"),
            rec(3, "tool.call", "bob", "c1", "add", "ok"),
        ])
        .await
        .unwrap();
    let second: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
    let third: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
    assert_eq!(
        (second["target"].as_str(), third["target"].as_str()),
        (Some("echo"), Some("add"))
    );
    child.kill().await.unwrap();
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line")
}
