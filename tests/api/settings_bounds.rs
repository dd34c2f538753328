//! Duration settings are bounded: a lifetime past its maximum stops the
//! server at start-up with one line naming the setting, its value and the
//! maximum, instead of issuing tokens that wrapped around into the past.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mcpgate::app::App;
use mcpgate::clock::ManualClock;

use crate::helpers::test_settings;

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

#[tokio::test]
async fn a_huge_access_token_ttl_stops_the_server_at_start_up_naming_setting_value_and_maximum() {
    let dir = tempfile::tempdir().expect("tempdir");
    for huge in [
        Duration::from_secs(u64::MAX),
        Duration::from_secs(1_000_000 * 31_557_600),
    ] {
        let mut settings = test_settings(&dir.path().join("mcpgate.db"));
        settings.access_token_ttl = huge;
        let Err(e) = App::build_with_clock(settings, Arc::new(ManualClock::starting_now())).await
        else {
            panic!("the server started with access_token_ttl = {huge:?}");
        };
        let e = format!("{e:#}");
        assert!(
            e.contains("access_token_ttl is ") && e.contains(&format!("({} s)", huge.as_secs())),
            "{e}"
        );
        assert!(e.contains("the maximum is 10years (315576000 s)"), "{e}");
    }
}

#[tokio::test]
async fn mcpgate_serve_with_a_million_year_token_lifetime_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--access-token-ttl",
        "1000000years",
    ])
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") {
            cmd.env_remove(k);
        }
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("mcpgate serve stops at once instead of serving")
        .expect("mcpgate runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err:?}"));
    assert!(
        line.contains("access_token_ttl is 1000000years")
            && line.contains("the maximum is 10years"),
        "{line}"
    );
}

#[tokio::test]
async fn an_upstream_timeout_past_its_maximum_stops_the_server_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&dir.path().join("mcpgate.db"));
    settings.upstream = vec![
        toml::from_str("name = \"slow\"\ncommand = \"server\"\nrequest_timeout = \"1000000years\"")
            .expect("upstream"),
    ];
    let Err(e) = App::build_with_clock(settings, Arc::new(ManualClock::starting_now())).await
    else {
        panic!("the server started");
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("upstream \"slow\": request_timeout is 1000000years")
            && e.contains("the maximum is 1day"),
        "{e}"
    );
}
