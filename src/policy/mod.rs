//! `[[policy]]` at run time: the compiled rules of
//! [`mcpgate_core::policy`] behind a handle that a reload can swap, and
//! the per-instance rate-limit buckets (docs/policy.md).
//!
//! The gateway holds one [`Access`] and asks it about every item it lists
//! or serves, on every transport; built-in tools are asked about in
//! `mcp::handler`. A denied item is treated exactly like an unknown one.

pub mod limiter;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use mcpgate_core::domain::Scope;
use mcpgate_core::mcp::bearer::Caller;
use mcpgate_core::policy::{DefaultPolicy, Kind, Known, Policy, PolicyError, RuleConfig};

use crate::clock::Clock;
use limiter::Limiter;

/// Why a tool call is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The policy denies it: answer as for an unknown tool.
    Denied,
    /// Over the rule's rate: retry after this many seconds.
    Limited { retry_after: u64 },
}

/// The policy in force and the rate-limit buckets.
pub struct Access {
    current: RwLock<Arc<Policy>>,
    limiter: Limiter,
    clock: Arc<dyn Clock>,
}

impl Access {
    pub fn new(policy: Policy, clock: Arc<dyn Clock>) -> Self {
        Self {
            current: RwLock::new(Arc::new(policy)),
            limiter: Limiter::default(),
            clock,
        }
    }

    /// No rules, default allow: mcpgate without `[[policy]]`.
    pub fn allow_all(clock: Arc<dyn Clock>) -> Self {
        Self::new(Policy::allow_all(), clock)
    }

    /// The policy in force (an `Arc` clone: no allocation).
    pub fn current(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a new policy in force (a configuration reload). Requests that
    /// already hold the old one finish with it; buckets are kept.
    pub fn replace(&self, policy: Policy) {
        let mut slot = match self.current.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(policy);
    }

    pub fn allows(&self, kind: Kind, name: &str, caller: &Caller) -> bool {
        self.current().allows(kind, name, caller)
    }

    /// Whether a call of tool `name` may run now: allowed by the policy,
    /// and (when the allowing rule has a rate) a call left in the caller's
    /// bucket for this tool, which it takes.
    pub fn admit_tool(&self, caller: &Caller, name: &str) -> Result<(), Refusal> {
        let policy = self.current();
        let decision = policy.decide(Kind::Tool, name, caller);
        if !decision.allowed {
            return Err(Refusal::Denied);
        }
        let Some(rate) = decision
            .rule
            .and_then(|i| policy.rules().get(i))
            .and_then(|r| r.rate())
        else {
            return Ok(());
        };
        self.limiter
            .take(&caller.owner(), name, rate, self.clock.now_ms())
            .map_err(|retry_after| Refusal::Limited { retry_after })
    }

    /// Whether some rule requires scopes.
    pub fn has_scopes(&self) -> bool {
        self.current().has_scopes()
    }

    /// The scopes the rule allowing this item requires (see
    /// [`Policy::scopes_for`]); enforcement is the caller's.
    pub fn scopes_for(&self, kind: Kind, name: &str, caller: &Caller) -> Vec<Scope> {
        self.current().scopes_for(kind, name, caller).to_vec()
    }
}

/// Compiles the configured rules: `groups` are the local groups in the
/// store; `provider_groups` is whether an identity provider maps a claim to
/// groups (then a group name no user has yet is accepted).
pub fn compile(
    rules: &[RuleConfig],
    default: DefaultPolicy,
    scopes: &[String],
    groups: &HashSet<String>,
    provider_groups: bool,
) -> Result<Policy, PolicyError> {
    Policy::compile(
        rules,
        default,
        &Known {
            scopes,
            groups: (!provider_groups).then_some(groups),
        },
    )
}
