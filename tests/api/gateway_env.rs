//! The environment of stdio upstreams (issue #15, item 3): an empty one
//! plus the allowlist, the upstream's `env` table, its `inherit_env` and,
//! per user, the identity; never mcpgate's secrets. Read from the child's
//! `/proc/<pid>/environ` while mcpgate runs with secrets in its own.
//!
//! Tests run as threads of one process: the variables set here have names
//! no other test uses (`GWENV_*`, `MCPGATE_TEST_GWENV_*`).

use std::collections::BTreeMap;

use mcpgate::federation::config::IdentityProviderConfig;
use serde_json::json;

use crate::gateway_support::{call_text, connect, fixture, process_environ, whoami_env};
use crate::helpers::{spawn_app_with, test_settings};
use crate::mcp_support::signed_in;

const JWT_KEY_VAR: &str = "GWENV_JWT_KEY_9C4";
/// A client secret whose name is in the `LC_*` allowlist: still never passed.
const CLIENT_SECRET_VAR: &str = "LC_GWENV_CLIENT_SECRET_9C4";

fn set_test_environment() {
    for (k, v) in [
        ("MCPGATE_TEST_GWENV_SECRET_9C4", "mcpgate-own-secret-9c4"),
        (
            JWT_KEY_VAR,
            "identity-jwt-key-9c4-at-least-thirty-two-bytes",
        ),
        (CLIENT_SECRET_VAR, "client-secret-9c4"),
        ("GWENV_NOT_LISTED_9C4", "not-listed-9c4"),
        ("GWENV_PASSED_9C4", "passed-through-9c4"),
        ("LC_GWENV_LOCALE_9C4", "locale-9c4"),
    ] {
        // SAFETY: names no other test reads or writes.
        unsafe { std::env::set_var(k, v) };
    }
}

fn provider(secret_env: &str) -> IdentityProviderConfig {
    serde_json::from_value(json!({
        "id": "gwenv",
        "kind": "oidc",
        "issuer": "http://127.0.0.1:1",
        "client_id": "gwenv",
        "client_secret_env": secret_env,
    }))
    .expect("provider config")
}

/// The variables of a process's environment.
fn environ_map(pid: u32) -> BTreeMap<String, String> {
    process_environ(pid)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stdio_upstream_gets_the_allowlist_its_env_and_inherit_env_but_none_of_mcpgates_secrets()
{
    set_test_environment();
    let app = spawn_app_with(|s| {
        s.upstream = vec![
            fixture(
                "fx",
                "isolation = \"per_user\"\n\
                 env = { FIXTURE_OWN = \"own-9c4\" }\n\
                 inherit_env = [\"GWENV_PASSED_9C4\"]",
            ),
            // Only here to name an identity-JWT key (invisible to everyone).
            crate::gateway_support::upstream(&format!(
                "name = \"jwt\"\nurl = \"http://127.0.0.1:1/mcp\"\nisolation = \"per_user\"\n\
                 allowed_users = [\"nobody\"]\nidentity_jwt = {{ key_env = \"{JWT_KEY_VAR}\" }}"
            )),
        ];
        s.identity_provider = vec![provider(CLIENT_SECRET_VAR)];
    })
    .await;
    let (_, alice_at) = signed_in(&app, "alice").await;
    let (alice, _events) = connect(&app, &alice_at).await;
    let (user, _, pid) = whoami_env(&call_text(&alice, "fx_whoami_env", json!({})).await);
    assert_eq!(user, "alice");

    let env = environ_map(pid);
    // The allowlist, as mcpgate has it.
    for name in ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "SHELL"] {
        if let Ok(v) = std::env::var(name) {
            assert_eq!(env.get(name), Some(&v), "{name} is inherited: {env:?}");
        }
    }
    assert_eq!(
        env["LC_GWENV_LOCALE_9C4"], "locale-9c4",
        "LC_* is inherited"
    );
    // The env table, inherit_env and the identity.
    assert_eq!(env["FIXTURE_OWN"], "own-9c4");
    assert_eq!(env["GWENV_PASSED_9C4"], "passed-through-9c4");
    assert_eq!(env["MCPGATE_USER_NAME"], "alice");
    assert!(env.contains_key("MCPGATE_USER_ID"));
    assert_eq!(env["MCPGATE_SUBJECT_TYPE"], "user");
    // Nothing else: no secret, no variable nobody asked for.
    let raw = process_environ(pid);
    for secret in [
        "mcpgate-own-secret-9c4",
        "identity-jwt-key-9c4",
        "client-secret-9c4",
        "not-listed-9c4",
    ] {
        assert!(!raw.contains(secret), "{secret} leaked: {env:?}");
    }
    let expected = |k: &str| {
        ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "SHELL"].contains(&k)
            || (k.starts_with("LC_") && k != CLIENT_SECRET_VAR)
            || [
                "FIXTURE_OWN",
                "GWENV_PASSED_9C4",
                "MCPGATE_USER_NAME",
                "MCPGATE_USER_ID",
                "MCPGATE_SUBJECT_TYPE",
            ]
            .contains(&k)
    };
    let unexpected: Vec<&String> = env.keys().filter(|k| !expected(k)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected variables: {unexpected:?}"
    );
}

#[test]
fn inherit_env_naming_a_secret_of_mcpgate_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for var in [
        "MCPGATE_TEST_GWENV_SECRET_9C4",
        "MCPGATE_DATABASE_URL",
        "DATABASE_URL",
        CLIENT_SECRET_VAR,
        JWT_KEY_VAR,
    ] {
        let mut s = test_settings(&dir.path().join("db"));
        s.upstream = vec![
            fixture("fx", &format!("inherit_env = [\"PATH\", \"{var}\"]")),
            crate::gateway_support::upstream(&format!(
                "name = \"jwt\"\nurl = \"http://127.0.0.1:1/mcp\"\nisolation = \"per_user\"\n\
                 identity_jwt = {{ key_env = \"{JWT_KEY_VAR}\" }}"
            )),
        ];
        s.identity_provider = vec![provider(CLIENT_SECRET_VAR)];
        let err = s
            .resolve("127.0.0.1:0".parse().unwrap())
            .err()
            .unwrap_or_else(|| panic!("inherit_env = [{var:?}] was accepted"))
            .to_string();
        assert!(
            err.contains("upstream \"fx\"") && err.contains(var) && err.contains("inherit_env"),
            "{err}"
        );
    }
}
