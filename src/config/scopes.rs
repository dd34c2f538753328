//! Declared scopes (`[[scope]]` tables) and the scopes upstreams need.
//!
//! ```toml
//! scopes = ["mcp"]            # still works: scopes without a description
//! [[scope]]
//! name = "files:write"
//! description = "Change your files"
//! [[upstream]]
//! name = "files"
//! scopes = ["files:write"]    # every tool of this upstream needs it
//! ```
//!
//! The scopes clients may ask for (and `scopes_supported` in both metadata
//! documents) are `scopes` followed by the `[[scope]]` names not already
//! listed there. A `[[scope]]` whose name is in `scopes` only adds its
//! description. See docs/scopes.md.

use std::collections::BTreeMap;

use mcpgate_core::domain::Scope;
use mcpgate_core::mcp::scopes::ScopeRequirements;
use mcpgate_core::oauth::policy::OFFLINE_ACCESS;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::gateway::config::UpstreamConfig;

/// One `[[scope]]` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopeDecl {
    /// The scope token (RFC 6749 §3.3), e.g. `files:write`.
    pub name: String,
    /// What it allows, in plain words: shown on the consent page.
    pub description: String,
}

/// The scopes on offer, in order, and the descriptions of the declared
/// ones. Fails on a malformed or repeated `[[scope]]`.
pub fn offered(
    scopes: &[String],
    declared: &[ScopeDecl],
) -> Result<(Vec<String>, BTreeMap<String, String>), ConfigError> {
    let mut all: Vec<String> = scopes.to_vec();
    let mut descriptions = BTreeMap::new();
    for d in declared {
        let what = format!("[[scope]] {:?}", d.name);
        let parsed = Scope::parse(&d.name).map_err(|e| ConfigError(format!("{what}: {e}")))?;
        if parsed.tokens().count() != 1 {
            return Err(ConfigError(format!(
                "{what}: name must be one scope token (no spaces)"
            )));
        }
        if d.name == OFFLINE_ACCESS {
            return Err(ConfigError(format!(
                "{what}: offline_access is always offered (with refresh tokens) and cannot be declared"
            )));
        }
        if d.description.trim().is_empty() {
            return Err(ConfigError(format!(
                "{what}: description is empty (it is shown on the consent page)"
            )));
        }
        if descriptions
            .insert(d.name.clone(), d.description.trim().to_string())
            .is_some()
        {
            return Err(ConfigError(format!("{what}: declared twice")));
        }
        if !all.contains(&d.name) {
            all.push(d.name.clone());
        }
    }
    Ok((all, descriptions))
}

/// What each call needs: the base scope, plus each upstream's `scopes`,
/// which must be offered scopes (and not `offline_access`).
pub fn requirements(
    base: Scope,
    offered: &[String],
    upstreams: &[UpstreamConfig],
) -> Result<ScopeRequirements, ConfigError> {
    let mut reqs = ScopeRequirements::new(base);
    for u in upstreams {
        if u.scopes.is_empty() {
            continue;
        }
        let what = format!("upstream {:?}", u.name);
        let scope = Scope::from_tokens(u.scopes.iter().cloned())
            .map_err(|e| ConfigError(format!("{what}: scopes: {e}")))?;
        if scope.contains(OFFLINE_ACCESS) {
            return Err(ConfigError(format!(
                "{what}: scopes may not list offline_access (it names no permission)"
            )));
        }
        let unknown = scope.not_in(offered);
        if !unknown.is_empty() {
            return Err(ConfigError(format!(
                "{what}: scopes {unknown:?} are not offered: add them to scopes or declare them with [[scope]]"
            )));
        }
        reqs = reqs.with_upstream(&u.name, scope);
    }
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, description: &str) -> ScopeDecl {
        ScopeDecl {
            name: name.into(),
            description: description.into(),
        }
    }

    #[test]
    fn declared_scopes_follow_the_listed_ones_with_their_descriptions() {
        let (all, d) = offered(
            &["mcp".into(), "files:read".into()],
            &[
                decl("files:read", "Read files"),
                decl("files:write", " Change files "),
            ],
        )
        .unwrap();
        assert_eq!(all, vec!["mcp", "files:read", "files:write"]);
        assert_eq!(d["files:read"], "Read files");
        assert_eq!(d["files:write"], "Change files");
        // Without [[scope]]: `scopes` as before.
        let (all, d) = offered(&["mcp".into()], &[]).unwrap();
        assert_eq!(all, vec!["mcp"]);
        assert!(d.is_empty());
    }

    #[test]
    fn bad_declarations_are_refused_naming_the_scope() {
        for (bad, why) in [
            (vec![decl("a b", "x")], "one scope token"),
            (vec![decl("a\"b", "x")], "RFC 6749"),
            (vec![decl("files:write", " ")], "description is empty"),
            (vec![decl("x", "1"), decl("x", "2")], "declared twice"),
            (vec![decl("offline_access", "x")], "always offered"),
        ] {
            let e = offered(&["mcp".into()], &bad).unwrap_err().0;
            assert!(e.contains(why) && e.contains("[[scope]]"), "{e}");
        }
    }

    #[test]
    fn upstream_scopes_must_be_offered() {
        let up = |scopes: &[&str]| {
            let mut u: UpstreamConfig =
                toml::from_str("name = \"fs\"\ncommand = \"true\"").unwrap();
            u.scopes = scopes.iter().map(|s| s.to_string()).collect();
            u
        };
        let offered = vec!["mcp".to_string(), "files:write".to_string()];
        let base = Scope::parse("mcp").unwrap();
        let r = requirements(base.clone(), &offered, &[up(&["files:write"]), up(&[])]).unwrap();
        assert_eq!(
            r.required_for(Some("fs"), "fs_x").to_string(),
            "files:write mcp"
        );
        let e = requirements(base.clone(), &offered, &[up(&["admin"])])
            .unwrap_err()
            .0;
        assert!(e.contains("upstream \"fs\"") && e.contains("admin"), "{e}");
        let e = requirements(base, &offered, &[up(&["offline_access"])])
            .unwrap_err()
            .0;
        assert!(e.contains("offline_access"), "{e}");
    }
}
