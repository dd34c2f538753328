//! The environment of stdio upstreams: a clean one.
//!
//! A child process starts from an empty environment, then gets, in order
//! (a later source overrides an earlier one):
//! 1. from mcpgate's own environment, the variables of [`is_allowlisted`]
//!    (`PATH`, `HOME`, `LANG`, `LC_*`, `TZ`, `TMPDIR`, `USER`, `SHELL`) and
//!    those the upstream's `inherit_env` names;
//! 2. the upstream's `env` table;
//! 3. for a per-user upstream, the user's identity (`MCPGATE_USER_ID`,
//!    `MCPGATE_USER_NAME`).
//!
//! Secrets are never inherited ([`Protected`]): any `MCPGATE_*` variable
//! (settings such as `MCPGATE_DATABASE_URL`), `DATABASE_URL`, the variables
//! named by an upstream's `identity_jwt.key_env` and by an identity
//! provider's `client_secret_env`. An `inherit_env` naming one of them is
//! refused at start-up ([`validate`]).

use std::collections::BTreeSet;
use std::ffi::OsString;

use mcpgate_core::mcp::bearer::Caller;

use super::config::UpstreamConfig;
use super::upstream::identity_values;
use crate::federation::config::IdentityProviderConfig;

/// Variables every stdio upstream inherits (when mcpgate has them).
pub const ALLOWLIST: [&str; 7] = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "SHELL"];

/// Whether `name` is inherited by every stdio upstream.
pub fn is_allowlisted(name: &str) -> bool {
    ALLOWLIST.contains(&name) || name.starts_with("LC_")
}

/// The names of mcpgate's variables that hold secrets or settings: never
/// passed to an upstream from mcpgate's environment.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    named: BTreeSet<String>,
}

impl Protected {
    /// The secrets named by the configuration: identity-JWT keys and
    /// identity providers' client secrets.
    pub fn new(upstreams: &[UpstreamConfig], providers: &[IdentityProviderConfig]) -> Self {
        let named = upstreams
            .iter()
            .filter_map(|u| u.identity_jwt.as_ref()?.key_env.clone())
            .chain(providers.iter().filter_map(|p| p.client_secret_env.clone()))
            .collect();
        Self { named }
    }

    pub fn contains(&self, name: &str) -> bool {
        name.starts_with("MCPGATE_") || name == "DATABASE_URL" || self.named.contains(name)
    }

    /// Why `name` is protected, for the start-up error.
    fn reason(&self, name: &str) -> &'static str {
        if name.starts_with("MCPGATE_") {
            "mcpgate's own MCPGATE_* variables are never passed to upstreams"
        } else if name == "DATABASE_URL" {
            "the database URL is never passed to upstreams"
        } else {
            "it holds a secret of mcpgate (an identity_jwt.key_env or a client_secret_env)"
        }
    }
}

/// Checks every upstream's `inherit_env`; the error names the upstream and
/// the variable.
pub fn validate(upstreams: &[UpstreamConfig], protected: &Protected) -> Result<(), String> {
    for u in upstreams {
        for name in &u.inherit_env {
            let what = format!("upstream {:?}: inherit_env {name:?}", u.name);
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!("{what} is not a variable name"));
            }
            if protected.contains(name) {
                return Err(format!("{what} is refused: {}", protected.reason(name)));
            }
        }
    }
    Ok(())
}

/// The environment of one stdio upstream's process, from `parent` (mcpgate's
/// own environment, `std::env::vars_os()`).
pub fn child_env(
    cfg: &UpstreamConfig,
    protected: &Protected,
    identity: Option<&Caller>,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = parent
        .into_iter()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                (is_allowlisted(k) || cfg.inherit_env.iter().any(|i| i == k))
                    && !protected.contains(k)
            })
        })
        .collect();
    let mut set = |k: &str, v: &str| {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
    };
    for (k, v) in &cfg.env {
        set(k, v);
    }
    if let Some(c) = identity {
        for (k, _, v) in identity_values(c) {
            set(k, &v);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(extra: &str) -> UpstreamConfig {
        toml::from_str(&format!("name = \"fx\"\ncommand = \"server\"\n{extra}")).unwrap()
    }

    fn parent() -> Vec<(OsString, OsString)> {
        [
            ("PATH", "/bin"),
            ("LC_ALL", "C"),
            ("MCPGATE_DATABASE_URL", "postgres://secret"),
            ("DATABASE_URL", "postgres://secret"),
            ("GOOGLE_SECRET", "s"),
            ("AWS_SECRET_ACCESS_KEY", "a"),
            ("WANTED", "w"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    fn names(env: &[(OsString, OsString)]) -> Vec<String> {
        env.iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect()
    }

    #[test]
    fn only_the_allowlist_inherit_env_and_the_env_table_reach_the_child() {
        let cfg = up("inherit_env = [\"WANTED\"]\nenv = { OWN = \"1\", PATH = \"/opt\" }");
        let env = names(&child_env(&cfg, &Protected::default(), None, parent()));
        assert_eq!(env, ["LC_ALL=C", "WANTED=w", "OWN=1", "PATH=/opt"]);
    }

    #[test]
    fn a_protected_name_is_never_inherited_even_if_allowlisted() {
        let protected = Protected {
            named: ["LC_ALL".to_string()].into(),
        };
        let env = names(&child_env(&up(""), &protected, None, parent()));
        assert_eq!(env, ["PATH=/bin"]);
    }

    #[test]
    fn inherit_env_naming_a_secret_is_refused_with_the_upstream_and_variable() {
        let providers: Vec<IdentityProviderConfig> = vec![
            serde_json::from_value(serde_json::json!({
                "id": "g", "kind": "oidc", "issuer": "https://accounts.example",
                "client_id": "c", "client_secret_env": "GOOGLE_SECRET",
            }))
            .unwrap(),
        ];
        for var in ["GOOGLE_SECRET", "MCPGATE_ANYTHING", "DATABASE_URL"] {
            let ups = [up(&format!("inherit_env = [\"{var}\"]"))];
            let err = validate(&ups, &Protected::new(&ups, &providers)).unwrap_err();
            assert!(
                err.contains("upstream \"fx\"") && err.contains(var),
                "{err}"
            );
        }
        let ups = [up("inherit_env = [\"WANTED\"]")];
        assert!(validate(&ups, &Protected::new(&ups, &providers)).is_ok());
    }
}
