//! `mcpgate user link|unlink|show`, run as a child process.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

fn run(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            c.env_remove(k);
        }
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("runs")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn link_show_and_unlink() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcpgate.toml"),
        r#"
[[identity_provider]]
id = "corp"
kind = "oidc"
issuer = "https://login.corp.example"
client_id = "mcpgate"
"#,
    )
    .unwrap();
    let p = dir.path();
    let o = run(
        p,
        &["user", "add", "ann", "--password-stdin"],
        "a long password\n",
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(
        p,
        &[
            "user",
            "link",
            "ann",
            "--provider",
            "corp",
            "--subject",
            "abc-123",
        ],
        "",
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(p, &["user", "show", "ann"], "");
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("identity\tcorp\tabc-123"), "{text}");
    assert!(text.contains("password\tset"), "{text}");
    // Twice, or to an unknown provider or user: a clear error.
    let o = run(
        p,
        &[
            "user",
            "link",
            "ann",
            "--provider",
            "corp",
            "--subject",
            "abc-123",
        ],
        "",
    );
    assert!(
        !o.status.success() && out(&o).contains("already linked"),
        "{}",
        out(&o)
    );
    let o = run(
        p,
        &[
            "user",
            "link",
            "ann",
            "--provider",
            "nope",
            "--subject",
            "x",
        ],
        "",
    );
    assert!(
        !o.status.success() && out(&o).contains("no [[identity_provider]]"),
        "{}",
        out(&o)
    );
    let o = run(
        p,
        &[
            "user",
            "link",
            "bob",
            "--provider",
            "corp",
            "--subject",
            "x",
        ],
        "",
    );
    assert!(
        !o.status.success() && out(&o).contains("no user named"),
        "{}",
        out(&o)
    );
    let o = run(
        p,
        &[
            "user",
            "unlink",
            "--provider",
            "corp",
            "--subject",
            "abc-123",
        ],
        "",
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = run(p, &["user", "show", "ann"], "");
    assert!(out(&o).contains("identities\tnone"), "{}", out(&o));
    let o = run(
        p,
        &[
            "user",
            "unlink",
            "--provider",
            "corp",
            "--subject",
            "abc-123",
        ],
        "",
    );
    assert!(
        !o.status.success() && out(&o).contains("not linked"),
        "{}",
        out(&o)
    );
}

#[test]
fn configuration_mistakes_stop_the_server_with_a_clear_message() {
    for (toml, expected) in [
        (
            "[[identity_provider]]\nid = \"x\"\nkind = \"saml\"\nclient_id = \"c\"\n",
            "saml",
        ),
        (
            "[[identity_provider]]\nid = \"x\"\nkind = \"oidc\"\nclient_id = \"c\"\n",
            "issuer is required",
        ),
        (
            "[[identity_provider]]\nid = \"x\"\nkind = \"oidc\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret_file = \"missing-secret\"\n",
            "cannot read client_secret_file",
        ),
        ("password_login = false\n", "nobody could sign in"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mcpgate.toml"),
            format!("listen = \"127.0.0.1:0\"\n{toml}"),
        )
        .unwrap();
        let o = run(dir.path(), &["serve"], "");
        assert!(!o.status.success(), "{toml}");
        assert!(out(&o).contains(expected), "{toml}: {}", out(&o));
    }
}
