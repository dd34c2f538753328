//! Groups from an identity provider's claim (`groups_claim`, optional
//! `groups_prefix`): the claim is a list of strings (or one string); each
//! value, prefixed, becomes a group if it is a valid [`GroupName`]. Values
//! that are not strings or not valid names are skipped; at most
//! [`MAX_PROVIDER_GROUPS`] are kept.

use serde_json::{Map, Value};

use super::GroupName;

/// Groups taken from one sign-in at most (a provider sending thousands of
/// groups must not fill the database).
pub const MAX_PROVIDER_GROUPS: usize = 256;

/// The user's groups in `claims[claim]`, prefixed, sorted, without
/// duplicates; with the number of values skipped.
pub fn groups_from_claim(
    claims: &Map<String, Value>,
    claim: &str,
    prefix: &str,
) -> (Vec<String>, usize) {
    let values: Vec<&Value> = match claims.get(claim) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        Some(_) => return (Vec::new(), 1),
        None => return (Vec::new(), 0),
    };
    let mut skipped = 0;
    let mut groups = Vec::new();
    for v in values {
        match v
            .as_str()
            .filter(|s| !s.is_empty())
            .and_then(|s| GroupName::parse(&format!("{prefix}{s}")).ok())
        {
            Some(g) => groups.push(g.into_string()),
            None => skipped += 1,
        }
    }
    groups.sort();
    groups.dedup();
    if groups.len() > MAX_PROVIDER_GROUPS {
        skipped += groups.len() - MAX_PROVIDER_GROUPS;
        groups.truncate(MAX_PROVIDER_GROUPS);
    }
    (groups, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_list_or_one_string_becomes_prefixed_groups() {
        let c = claims(json!({"groups": ["staff", "eng", "staff", 7, ""], "role": "admin"}));
        assert_eq!(
            groups_from_claim(&c, "groups", "idp:"),
            (vec!["idp:eng".to_string(), "idp:staff".to_string()], 2)
        );
        assert_eq!(
            groups_from_claim(&c, "role", ""),
            (vec!["admin".to_string()], 0)
        );
        assert_eq!(groups_from_claim(&c, "missing", ""), (vec![], 0));
        let c = claims(json!({"groups": {"not": "a list"}}));
        assert_eq!(groups_from_claim(&c, "groups", ""), (vec![], 1));
    }

    #[test]
    fn at_most_the_limit_is_kept() {
        let many: Vec<String> = (0..MAX_PROVIDER_GROUPS + 10)
            .map(|i| format!("g{i:04}"))
            .collect();
        let c = claims(json!({ "groups": many }));
        let (groups, skipped) = groups_from_claim(&c, "groups", "");
        assert_eq!((groups.len(), skipped), (MAX_PROVIDER_GROUPS, 10));
    }
}
