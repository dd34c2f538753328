//! The reference pages cannot drift from the code:
//!
//! - `docs/configuration.md` lists exactly the settings the code reads: the
//!   top-level keys of `mcpgate.toml` (`Settings`), the keys of an
//!   `[[identity_provider]]` table and those of an `[[upstream]]` table. The
//!   names come from the structs' own `Deserialize` implementations (the
//!   field list serde hands to `deserialize_struct`), so a new, renamed or
//!   removed setting fails here until the page says so.
//! - `docs/cli.md` names every subcommand of the `mcpgate` binary (from clap's
//!   command tree).

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;
use serde::Deserialize;
use serde::de::{self, Visitor};

/// A deserializer that only records the field names of the struct asked
/// of it, then stops.
#[derive(Default)]
struct FieldNames(Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(fields);
        Err(de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn keys_of<T: for<'de> Deserialize<'de>>() -> BTreeSet<String> {
    let mut names = FieldNames::default();
    let _ = T::deserialize(&mut names);
    let fields = names.0.expect("a struct with named fields");
    fields.iter().map(|f| f.to_string()).collect()
}

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys named in the first column of the tables under the `## heading`
/// of a page (several per cell allowed: "`a`, `b`").
fn documented_keys(page: &str, heading: &str) -> BTreeSet<String> {
    let mut in_section = false;
    let mut keys = BTreeSet::new();
    let mut found = false;
    for line in page.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            in_section = h.trim() == heading;
            found |= in_section;
            continue;
        }
        if !in_section || !line.starts_with("| `") {
            continue;
        }
        let cell = line[1..].split(" |").next().unwrap_or_default();
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 {
                keys.insert(part.to_string());
            }
        }
    }
    assert!(found, "docs/configuration.md has no section `## {heading}`");
    keys
}

fn assert_same(what: &str, code: &BTreeSet<String>, docs: &BTreeSet<String>) {
    let undocumented: Vec<_> = code.difference(docs).collect();
    let unknown: Vec<_> = docs.difference(code).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/configuration.md, {what}: settings in the code but not documented: {undocumented:?}; \
         documented but not in the code: {unknown:?}"
    );
}

#[test]
fn every_top_level_setting_is_documented() {
    let page = read("docs/configuration.md");
    assert_same(
        "## Settings",
        &keys_of::<mcpgate::config::Settings>(),
        &documented_keys(&page, "Settings"),
    );
}

#[test]
fn every_identity_provider_key_is_documented() {
    let page = read("docs/configuration.md");
    assert_same(
        "## Identity providers",
        &keys_of::<mcpgate::federation::config::IdentityProviderConfig>(),
        &documented_keys(&page, "Identity providers"),
    );
}

#[test]
fn every_upstream_key_is_documented() {
    let page = read("docs/configuration.md");
    assert_same(
        "## Upstreams",
        &keys_of::<mcpgate::gateway::config::UpstreamConfig>(),
        &documented_keys(&page, "Upstreams"),
    );
}

#[test]
fn the_field_reader_sees_every_field() {
    // The mechanism itself: a struct's renamed and defaulted fields.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Example {
        plain: u32,
        #[serde(rename = "2026-07-28")]
        renamed: bool,
        #[serde(default)]
        optional: Option<String>,
    }
    let keys = keys_of::<Example>();
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        ["2026-07-28", "optional", "plain"]
    );
}

fn subcommands(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands() {
        let path = if prefix.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{prefix} {}", sub.get_name())
        };
        if sub.has_subcommands() {
            subcommands(sub, &path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_command_is_documented() {
    let page = read("docs/cli.md");
    let mut commands = Vec::new();
    subcommands(&mcpgate::cli::Cli::command(), "", &mut commands);
    assert!(commands.len() > 10, "found only {commands:?}");
    let missing: Vec<_> = commands
        .iter()
        .filter(|c| {
            !page.lines().any(|l| {
                l.starts_with(&format!("| `{c}"))
                    && !l[3 + c.len()..]
                        .starts_with(|ch: char| ch.is_alphanumeric() || ch == '-' || ch == '_')
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/cli.md has no table row for: {missing:?}"
    );
}
