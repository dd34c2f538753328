//! Usernames are case-insensitive and normalised (Unicode NFKC, then
//! lowercase) wherever they enter: the sign-in form, the command line,
//! federation; and databases written before that rule are checked and
//! rewritten at start-up (refusing to start when stored names collide).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use mcpgate::app::App;
use reqwest::StatusCode;
use serde_json::json;

use crate::federation_fixture::{Mode, default_account};
use crate::federation_support::{PROVIDER_ID, fed};
use crate::helpers::{PASSWORD, spawn_app, test_settings};

const REDIRECT: &str = "http://127.0.0.1:1/callback";
const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

#[tokio::test]
async fn signing_in_as_carol_in_capitals_or_fullwidth_works_with_carols_password() {
    let app = spawn_app().await;
    app.add_user("carol").await;
    let client_id = app.register_public(REDIRECT).await;
    let params = app.auth_params(&client_id, REDIRECT);
    for typed in ["CAROL", "Carol", "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}"] {
        let b = app.browser();
        let html = b.open_authorize(&params).await.text().await.unwrap();
        let r = b.submit_login(&html, typed, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "signing in as {typed}");
    }
}

#[tokio::test]
async fn carol_and_carol_in_capitals_or_fullwidth_cannot_both_be_created() {
    let app = spawn_app().await;
    app.add_user("Carol").await;
    for other in ["carol", "CAROL", "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}"] {
        let err = mcpgate::auth::users::add(app.store.as_ref(), other, PASSWORD.into(), 0)
            .await
            .expect_err("a second carol is refused");
        assert!(err.to_string().contains("already exists"), "{err}");
    }
    let users = app.store.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "carol", "stored in its normalised form");
}

#[tokio::test]
async fn a_federated_username_is_normalised_and_gets_a_suffix_when_another_case_is_taken() {
    let f = fed(Mode::Oidc, json!({})).await;
    f.app.add_user("ann").await;
    let mut account = default_account();
    // Fullwidth "ANN".
    account["preferred_username"] = json!("\u{ff21}\u{ff2e}\u{ff2e}");
    f.idp.set_account(account);
    f.sign_in().await;
    let link = f
        .app
        .store
        .identity(PROVIDER_ID, "4242")
        .await
        .unwrap()
        .unwrap();
    let user = f
        .app
        .store
        .user_by_id(&link.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.username, "ann-2");
}

// ---------------------------------------------------------------------------
// The command line.

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.0.path())
            .env_remove("MCPGATE_CONFIG");
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
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        child.wait_with_output().expect("waits")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.path().join("mcpgate.db").display())
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_command_line_finds_users_in_any_case_and_refuses_a_second_carol() {
    let d = Dir::new();
    let pw = "a long password\n";
    let o = d.run(&["user", "add", "Carol", "--password-stdin"], pw);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("created user carol"), "{}", out(&o));
    let o = d.run(
        &[
            "user",
            "add",
            "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}",
            "--password-stdin",
        ],
        pw,
    );
    assert!(!o.status.success());
    assert!(err(&o).contains("already exists"), "{}", err(&o));
    let list = out(&d.run(&["user", "list"], ""));
    assert!(list.starts_with("carol\t"), "{list}");
    assert_eq!(list.lines().count(), 1, "{list}");
    let o = d.run(&["user", "show", "CAROL"], "");
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("username\tcarol"), "{}", out(&o));
    let o = d.run(&["user", "passwd", "CaRoL", "--password-stdin"], pw);
    assert!(o.status.success(), "{}", err(&o));
    let o = d.run(&["user", "remove", "CAROL"], "");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&d.run(&["user", "list"], "")).trim(), "no users");
}

// ---------------------------------------------------------------------------
// Databases written before usernames were normalised.

/// Runs SQL on a SQLite or PostgreSQL database, as an older mcpgate (or an
/// operator) would have written it.
async fn raw_sql(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        c.execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await
            .unwrap();
        c.close().await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        c.execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await
            .unwrap();
        c.close().await.unwrap();
    }
}

async fn stored_usernames(url: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let q = "SELECT username FROM users ORDER BY id";
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>(0)).collect()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>(0)).collect()
    }
}

/// The contract for either backend: colliding names stop `serve` and
/// `migrate` with a message naming them and saying what to do; once they
/// are resolved, stored names are rewritten to their normalised form.
async fn colliding_usernames_stop_start_up_until_resolved(database_url: &str) {
    let mut settings = test_settings(std::path::Path::new("unused.db"));
    settings.database_url = database_url.to_string();
    // An up-to-date, empty database...
    drop(mcpgate::app::open_store(database_url).await.unwrap());
    // ... into which an older mcpgate wrote names that now collide.
    raw_sql(
        database_url,
        "INSERT INTO users (id, username, password_hash, created_at) VALUES \
         ('u1', 'Carol', NULL, 0), ('u2', 'carol', NULL, 0), ('u3', 'Dave', NULL, 0), \
         ('u4', 'ERIN', NULL, 0), ('u5', 'erin', NULL, 0)",
    )
    .await;

    let e = App::build(settings.clone())
        .await
        .err()
        .expect("serve refuses to start");
    let msg = format!("{e:#}");
    for needle in [
        "\"Carol\"",
        "\"carol\"",
        "\"ERIN\"",
        "\"erin\"",
        "mcpgate user rename",
        "mcpgate user remove",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    assert!(!msg.contains("Dave"), "{msg}");
    let e = mcpgate::app::open_store(database_url)
        .await
        .err()
        .expect("migrate refuses too");
    assert!(format!("{e:#}").contains("\"Carol\""), "{e:#}");
    assert_eq!(
        stored_usernames(database_url).await,
        ["Carol", "carol", "Dave", "ERIN", "erin"],
        "nothing is rewritten while names collide"
    );

    // The operator resolves both groups.
    raw_sql(database_url, "DELETE FROM users WHERE id = 'u2'").await;
    raw_sql(
        database_url,
        "UPDATE users SET username = 'erin2' WHERE id = 'u5'",
    )
    .await;
    drop(App::build(settings.clone()).await.expect("starts now"));
    assert_eq!(
        stored_usernames(database_url).await,
        ["carol", "dave", "erin", "erin2"],
        "stored names are rewritten to their normalised form"
    );
    // Again: nothing left to do.
    drop(App::build(settings).await.expect("starts again"));
    assert_eq!(
        stored_usernames(database_url).await,
        ["carol", "dave", "erin", "erin2"]
    );
}

#[tokio::test]
async fn a_sqlite_database_with_usernames_colliding_after_normalisation_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
    colliding_usernames_stop_start_up_until_resolved(&url).await;
}

#[tokio::test]
async fn a_postgres_database_with_usernames_colliding_after_normalisation_refuses_to_start() {
    let db = crate::pg_support::PgTestDb::create().await;
    colliding_usernames_stop_start_up_until_resolved(db.url()).await;
}

#[tokio::test]
async fn colliding_users_can_be_listed_and_renamed_from_the_command_line_and_then_it_starts() {
    let d = Dir::new();
    let o = d.run(&["migrate"], "");
    assert!(o.status.success(), "{}", err(&o));
    raw_sql(
        &d.url(),
        "INSERT INTO users (id, username, password_hash, created_at) VALUES \
         ('u1', 'Carol', NULL, 0), ('u2', 'carol', NULL, 0)",
    )
    .await;
    let o = d.run(&["migrate"], "");
    assert!(!o.status.success(), "migrate refuses");
    assert!(err(&o).contains("\"Carol\""), "{}", err(&o));
    let o = d.run(&["user", "list"], "");
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("Carol\t"), "{}", out(&o));
    assert!(out(&o).contains("carol\t"), "{}", out(&o));
    // The name as stored picks the row; the new name is normalised.
    let o = d.run(&["user", "rename", "Carol", "Carol.Old"], "");
    assert!(o.status.success(), "{}", err(&o));
    let o = d.run(&["migrate"], "");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(stored_usernames(&d.url()).await, ["carol.old", "carol"]);
    let o = d.run(&["user", "rename", "CAROL", "carol.old"], "");
    assert!(!o.status.success());
    assert!(err(&o).contains("already exists"), "{}", err(&o));
}
