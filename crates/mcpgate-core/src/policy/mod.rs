//! Who may use which tool, prompt and resource: `[[policy]]` rules,
//! compiled once at start-up ([`Policy::compile`]) and evaluated per
//! request ([`Policy::decide`]) without allocating.
//!
//! - [`pattern`]: exact names and `*` globs.
//! - [`rate`]: the token bucket of a rule's rate limit.
//! - [`claim`]: groups from an identity provider's claim.
//!
//! A rule applies to a request when
//! 1. the item matches: its kind's list (`tools`, `prompts` or
//!    `resources`) has a pattern matching the name (exposed tool and prompt
//!    names, resource URIs; a resource template by its URI template);
//! 2. the subject matches: the caller is one of `users`, a member of one
//!    of `groups`, or one of `services` (service identities, by client id)
//!    (`"*"` in `users` or `services`: every user, every service; no
//!    subject lists: everyone);
//! 3. and, when `clients` is given, the token's client is one of them (a
//!    client id, or the host of a metadata-document client id).
//!
//! Evaluation: a matching `deny` rule wins over every `allow`; else the
//! first matching `allow` rule decides (its `scopes` and `rate` apply);
//! else `default_policy`.

pub mod claim;
pub mod pattern;
pub mod rate;

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{Scope, Username};
use crate::mcp::bearer::{Caller, Subject};
pub use pattern::{Pattern, PatternError};
pub use rate::{Bucket, Rate};

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// `default_policy`: what happens when no rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Everything no rule denies may be used (mcpgate's behaviour without
    /// rules).
    #[default]
    Allow,
    /// Only what a rule allows may be used.
    Deny,
}

/// One `[[policy]]` table as written in `mcpgate.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `allow` or `deny`.
    pub effect: Option<Effect>,
    /// Tool names (as exposed, with the upstream's prefix) or globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Prompt names (as exposed) or globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Resource URIs or globs (resource templates match by their template).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Usernames the rule applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Groups (local or from an identity provider) the rule applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Service identities (client credentials tokens), by client id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Only tokens of these clients: a client id, or the host of a
    /// metadata-document client id (`https://host/...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
    /// Scopes a call allowed by this rule needs (among `scopes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Rate limit per user and tool: `"N/s"`, `"N/min"` or `"N/h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Rate limit per user and tool, in calls per minute (instead of `rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    /// Calls a full bucket holds; default: the rate's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A group name: 1 to 128 characters, no control characters, no
/// surrounding whitespace. Compared exactly (case matters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_LEN: usize = 128;

    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("a group name must not be empty".into());
        }
        if text.chars().count() > Self::MAX_LEN {
            return Err(format!(
                "a group name is at most {} characters",
                Self::MAX_LEN
            ));
        }
        if text.chars().any(char::is_control) || text.trim() != text {
            return Err(format!(
                "{text:?} is not a group name: no control characters or surrounding spaces"
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of item a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
}

/// A compile error: names the rule (1-based, in file order), the field and
/// the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based position of the `[[policy]]` table in the file.
    pub rule: usize,
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[[policy]] rule #{} (the {} [[policy]] table in the file), {} = {:?}: {}",
            self.rule,
            ordinal(self.rule),
            self.field,
            self.value,
            self.reason
        )
    }
}

impl std::error::Error for PolicyError {}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// What [`Policy::compile`] checks names against.
pub struct Known<'a> {
    /// The server's `scopes`.
    pub scopes: &'a [String],
    /// The local groups (in the store); `None`: any group name is accepted
    /// because an identity provider maps a claim to groups, whose values
    /// are known only at sign-in.
    pub groups: Option<&'a HashSet<String>>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    effect: Effect,
    tools: Vec<Pattern>,
    prompts: Vec<Pattern>,
    resources: Vec<Pattern>,
    users: Vec<Box<str>>,
    groups: Vec<Box<str>>,
    services: Vec<Box<str>>,
    clients: Vec<Box<str>>,
    scopes: Vec<Scope>,
    rate: Option<Rate>,
}

impl Rule {
    pub fn effect(&self) -> Effect {
        self.effect
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    fn items(&self, kind: Kind) -> &[Pattern] {
        match kind {
            Kind::Tool => &self.tools,
            Kind::Prompt => &self.prompts,
            Kind::Resource => &self.resources,
        }
    }

    fn applies(&self, kind: Kind, name: &str, caller: &Caller) -> bool {
        // The subject first: cheaper than the patterns, and most rules of a
        // large policy are for someone else.
        self.subject_matches(caller)
            && self.client_matches(caller)
            && self.items(kind).iter().any(|p| p.matches(name))
    }

    fn subject_matches(&self, caller: &Caller) -> bool {
        if self.users.is_empty() && self.groups.is_empty() && self.services.is_empty() {
            return true;
        }
        match &caller.subject {
            Subject::User { username, .. } => {
                self.users.iter().any(|u| **u == **username || &**u == "*")
                    || self
                        .groups
                        .iter()
                        .any(|g| caller.groups.iter().any(|cg| **cg == **g))
            }
            Subject::Service { .. } => {
                let id = caller.client_id.as_str();
                self.services.iter().any(|s| **s == *id || &**s == "*")
            }
        }
    }

    fn client_matches(&self, caller: &Caller) -> bool {
        if self.clients.is_empty() {
            return true;
        }
        let id = caller.client_id.as_str();
        let host = document_host(id);
        self.clients
            .iter()
            .any(|c| **c == *id || host.is_some_and(|h| h.eq_ignore_ascii_case(c)))
    }
}

/// The host of an `https://host[:port]/...` client id (a metadata
/// document's URL), without allocating.
fn document_host(client_id: &str) -> Option<&str> {
    let rest = client_id.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    (!host.is_empty()).then_some(host)
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The deciding rule (0-based index); `None`: the default decided.
    pub rule: Option<usize>,
}

/// The compiled `[[policy]]` rules and the default.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    default: DefaultPolicy,
}

impl Policy {
    /// Everything allowed: no rules, default allow.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Checks and compiles the rules; the first error names its rule.
    pub fn compile(
        rules: &[RuleConfig],
        default: DefaultPolicy,
        known: &Known<'_>,
    ) -> Result<Self, PolicyError> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(i + 1, r, known))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules, default })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn default_policy(&self) -> DefaultPolicy {
        self.default
    }

    /// Whether `caller` may use the item `name` of `kind`: a matching deny
    /// wins; else the first matching allow; else the default.
    pub fn decide(&self, kind: Kind, name: &str, caller: &Caller) -> Decision {
        let mut first_allow = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.applies(kind, name, caller) {
                continue;
            }
            match rule.effect {
                Effect::Deny => {
                    return Decision {
                        allowed: false,
                        rule: Some(i),
                    };
                }
                Effect::Allow => {
                    first_allow.get_or_insert(i);
                }
            }
        }
        match first_allow {
            Some(i) => Decision {
                allowed: true,
                rule: Some(i),
            },
            None => Decision {
                allowed: self.default == DefaultPolicy::Allow,
                rule: None,
            },
        }
    }

    /// Shorthand for `decide(..).allowed`.
    pub fn allows(&self, kind: Kind, name: &str, caller: &Caller) -> bool {
        self.decide(kind, name, caller).allowed
    }

    /// The scopes the deciding allow rule requires of this call (empty if
    /// denied, decided by the default, or the rule names none). The
    /// enforcement (the step-up challenge) is not here.
    pub fn scopes_for(&self, kind: Kind, name: &str, caller: &Caller) -> &[Scope] {
        match self.decide(kind, name, caller) {
            Decision {
                allowed: true,
                rule: Some(i),
            } => self.rules.get(i).map_or(&[], |r| r.scopes()),
            _ => &[],
        }
    }

    /// The rate limit of the rule that allows this tool call, with the
    /// rule's index (buckets are per caller and tool).
    pub fn rate_for(&self, name: &str, caller: &Caller) -> Option<(usize, Rate)> {
        let d = self.decide(Kind::Tool, name, caller);
        let i = d.rule.filter(|_| d.allowed)?;
        Some((i, self.rules.get(i)?.rate?))
    }

    /// Whether some allow rule requires scopes (none: calls need only what
    /// the upstreams and the base scope need).
    pub fn has_scopes(&self) -> bool {
        self.rules.iter().any(|r| !r.scopes.is_empty())
    }

    /// Whether some rule limits a rate (no rule: no buckets needed).
    pub fn has_rates(&self) -> bool {
        self.rules.iter().any(|r| r.rate.is_some())
    }
}

fn compile_rule(n: usize, r: &RuleConfig, known: &Known<'_>) -> Result<Rule, PolicyError> {
    let err = |field: &'static str, value: &str, reason: String| PolicyError {
        rule: n,
        field,
        value: value.to_string(),
        reason,
    };
    let effect = r.effect.ok_or_else(|| {
        err(
            "effect",
            "",
            "every rule needs effect = \"allow\" or \"deny\"".into(),
        )
    })?;
    let patterns = |field: &'static str, list: &[String]| {
        list.iter()
            .map(|p| Pattern::parse(p).map_err(|e| err(field, p, e.to_string())))
            .collect::<Result<Vec<_>, _>>()
    };
    let tools = patterns("tools", &r.tools)?;
    let prompts = patterns("prompts", &r.prompts)?;
    let resources = patterns("resources", &r.resources)?;
    if tools.is_empty() && prompts.is_empty() && resources.is_empty() {
        return Err(err(
            "tools",
            "",
            "a rule must name tools, prompts or resources (use [\"*\"] for all)".into(),
        ));
    }
    let mut users = Vec::new();
    for u in &r.users {
        if u.trim().is_empty() {
            return Err(err("users", u, "a username must not be empty".into()));
        }
        users.push(Username::normalized(u).as_str().into());
    }
    let mut groups = Vec::new();
    for g in &r.groups {
        let name = GroupName::parse(g).map_err(|e| err("groups", g, e))?;
        if let Some(local) = known.groups
            && !local.contains(name.as_str())
        {
            return Err(err(
                "groups",
                g,
                "no user is in this group and no identity provider maps groups (groups_claim); add a member with `mcpgate user group add USER GROUP`".into(),
            ));
        }
        groups.push(name.into_string().into_boxed_str());
    }
    let plain = |field: &'static str, list: &[String]| {
        list.iter()
            .map(|v| {
                if v.is_empty() || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    Err(err(field, v, "not a client id".into()))
                } else {
                    Ok(v.clone().into_boxed_str())
                }
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let services = plain("services", &r.services)?;
    let clients = plain("clients", &r.clients)?;
    let mut scopes = Vec::new();
    for s in &r.scopes {
        if !known.scopes.iter().any(|k| k == s) {
            return Err(err(
                "scopes",
                s,
                format!("not among the server's scopes ({})", known.scopes.join(" ")),
            ));
        }
        scopes.push(Scope::parse(s).map_err(|e| err("scopes", s, e.to_string()))?);
    }
    let rate = match (&r.rate, r.rate_per_minute) {
        (Some(_), Some(_)) => {
            return Err(err(
                "rate_per_minute",
                "",
                "give either rate or rate_per_minute, not both".into(),
            ));
        }
        (Some(text), None) => Some(Rate::parse(text, r.burst).map_err(|e| err("rate", text, e))?),
        (None, Some(n)) => Some(
            Rate::new(n, 60_000, r.burst.unwrap_or(n))
                .map_err(|e| err("rate_per_minute", &n.to_string(), e))?,
        ),
        (None, None) => {
            if let Some(b) = r.burst {
                return Err(err(
                    "burst",
                    &b.to_string(),
                    "burst needs a rate (rate or rate_per_minute)".into(),
                ));
            }
            None
        }
    };
    if effect == Effect::Deny && (rate.is_some() || !scopes.is_empty()) {
        return Err(err(
            "effect",
            "deny",
            "a deny rule takes no rate or scopes (they apply to allowed calls)".into(),
        ));
    }
    if rate.is_some() && tools.is_empty() {
        return Err(err(
            "rate",
            r.rate.as_deref().unwrap_or_default(),
            "rate limits apply to tool calls: the rule names no tools".into(),
        ));
    }
    Ok(Rule {
        effect,
        tools,
        prompts,
        resources,
        users,
        groups,
        services,
        clients,
        scopes,
        rate,
    })
}

#[cfg(test)]
mod tests;
