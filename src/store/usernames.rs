//! The start-up step that brings stored usernames to their normalised form
//! (`mcpgate_core::domain::Username`: NFKC, then lowercase), run by both
//! backends right after their SQL migrations.
//!
//! Names stored before the rule may collide once normalised (`Carol` and
//! `carol`). Then nothing is changed and the store refuses to open with
//! [`StoreError::UsernameCollisions`], naming every group and how to
//! resolve it; the command line still opens the store for that
//! (`mcpgate user list|rename|remove`). Otherwise every name not yet in
//! normalised form is rewritten, in one transaction; run again, there is
//! nothing to do. The `users.username` column keeps its UNIQUE constraint,
//! which then is a unique index on the normalised name.

use std::collections::BTreeMap;

use mcpgate_core::domain::Username;

use super::StoreError;

/// Stored names that become the same name, grouped by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collisions(pub Vec<(String, Vec<String>)>);

impl std::fmt::Display for Collisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<String> = self
            .0
            .iter()
            .map(|(normal, names)| {
                let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
                format!("{} (all {normal:?})", quoted.join(", "))
            })
            .collect();
        let example = self
            .0
            .first()
            .and_then(|(_, names)| names.first())
            .map(String::as_str)
            .unwrap_or("NAME");
        write!(
            f,
            "usernames are now case-insensitive (Unicode NFKC, then lowercase), and these stored \
             usernames would become the same: {}. mcpgate will not start until each group keeps one \
             name: rename the others (`mcpgate user rename {example:?} NEW_NAME`) or remove them \
             (`mcpgate user remove {example:?}`); the commands take the names exactly as listed \
             here (`mcpgate user list`)",
            groups.join("; ")
        )
    }
}

/// From the stored `(id, username)` rows: the `(id, normalised name)`
/// rewrites to make, or the collisions that forbid them.
pub fn plan(rows: Vec<(String, String)>) -> Result<Vec<(String, String)>, StoreError> {
    let mut by_normal: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (id, stored) in rows {
        let normal = Username::normalized(&stored).into_string();
        by_normal.entry(normal).or_default().push((id, stored));
    }
    let collisions: Vec<(String, Vec<String>)> = by_normal
        .iter()
        .filter(|(_, rows)| rows.len() > 1)
        .map(|(normal, rows)| {
            let mut names: Vec<String> = rows.iter().map(|(_, s)| s.clone()).collect();
            names.sort();
            (normal.clone(), names)
        })
        .collect();
    if !collisions.is_empty() {
        return Err(StoreError::UsernameCollisions(Collisions(collisions)));
    }
    Ok(by_normal
        .into_iter()
        .flat_map(|(normal, rows)| rows.into_iter().map(move |row| (row, normal.clone())))
        .filter(|((_, stored), normal)| stored != normal)
        .map(|((id, _), normal)| (id, normal))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn names_not_yet_normalised_are_rewritten_and_the_rest_left_alone() {
        let plan = plan(rows(&[("1", "Dave"), ("2", "erin"), ("3", "\u{ff26}")])).unwrap();
        assert_eq!(
            plan,
            vec![
                ("1".to_string(), "dave".to_string()),
                ("3".into(), "f".into())
            ]
        );
        assert!(super::plan(rows(&[("1", "dave")])).unwrap().is_empty());
    }

    #[test]
    fn collisions_name_every_group_and_the_way_out() {
        let Err(StoreError::UsernameCollisions(c)) = plan(rows(&[
            ("1", "Carol"),
            ("2", "carol"),
            ("3", "Dave"),
            ("4", "ERIN"),
            ("5", "\u{ff25}rin"),
        ])) else {
            panic!("collisions expected");
        };
        let msg = c.to_string();
        assert!(
            msg.contains("\"Carol\", \"carol\" (all \"carol\")"),
            "{msg}"
        );
        assert!(
            msg.contains("\"ERIN\", \"\u{ff25}rin\" (all \"erin\")"),
            "{msg}"
        );
        assert!(!msg.contains("Dave"), "{msg}");
        assert!(
            msg.contains("mcpgate user rename \"Carol\" NEW_NAME"),
            "{msg}"
        );
        assert!(msg.contains("mcpgate user remove \"Carol\""), "{msg}");
    }
}
