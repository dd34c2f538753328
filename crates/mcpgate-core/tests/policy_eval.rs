//! `[[policy]]` evaluation allocates nothing and takes nanoseconds
//! (docs/benchmarks.md, "Policy evaluation"). A counting global allocator
//! (this test binary only) counts the allocations of the test's own thread
//! during a million decisions: the test harness's threads allocate too
//! (its "has been running for over 60 seconds" notice on a loaded machine),
//! and must not count.
//!
//! `cargo test --release -p mcpgate-core --test policy_eval -- --nocapture`
//! prints the time per decision.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use mcpgate_core::domain::{ClientId, Scope};
use mcpgate_core::mcp::bearer::{Caller, Subject};
use mcpgate_core::policy::{DefaultPolicy, Kind, Known, Policy, RuleConfig};

struct Counting;

thread_local! {
    /// Allocations made by this thread.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: nothing to count into while the thread is torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A policy of 40 rules in the shape of docs/policy.md's examples: per-team
/// allows by group with globs, denies of destructive tools, user rules
/// restricted to clients, rate-limited service rules.
fn policy() -> Policy {
    let mut rules = Vec::new();
    for i in 0..10 {
        rules.push(
            serde_json::json!({"effect": "allow", "groups": [format!("team{i}")],
            "tools": [format!("team{i}_*"), "files_read*"], "prompts": ["*"],
            "resources": [format!("file:///srv/team{i}/*")]}),
        );
        rules.push(
            serde_json::json!({"effect": "deny", "groups": [format!("team{i}")],
            "tools": [format!("team{i}_delete_*")]}),
        );
        rules.push(
            serde_json::json!({"effect": "allow", "users": [format!("user{i}")],
            "tools": ["crm_*"], "clients": ["claude.ai", "cli"]}),
        );
        rules.push(
            serde_json::json!({"effect": "allow", "services": [format!("svc{i}")],
            "tools": ["report_*"], "rate": "60/min"}),
        );
    }
    let rules: Vec<RuleConfig> = serde_json::from_value(serde_json::Value::Array(rules)).unwrap();
    let scopes = vec!["mcp".to_string()];
    Policy::compile(
        &rules,
        DefaultPolicy::Deny,
        &Known {
            scopes: &scopes,
            groups: None,
        },
    )
    .unwrap()
}

fn caller() -> Caller {
    Caller {
        subject: Subject::User {
            id: "id".into(),
            username: "user7".into(),
        },
        client_id: ClientId::parse("https://claude.ai/oauth/client.json").unwrap(),
        scope: Scope::parse("mcp").unwrap(),
        expires_at: 0,
        token_hash: "h".into(),
        groups: vec!["team3".to_string(), "team9".to_string()].into(),
    }
}

#[test]
fn evaluation_allocates_nothing() {
    let p = policy();
    let c = caller();
    let names = [
        (Kind::Tool, "team9_deploy"),
        (Kind::Tool, "team9_delete_all"),
        (Kind::Tool, "crm_update_contact"),
        (Kind::Tool, "unknown_tool"),
        (Kind::Prompt, "greeting"),
        (Kind::Resource, "file:///srv/team3/a/b/c.txt"),
        (Kind::Resource, "file:///srv/private/x"),
    ];
    let expected = [true, false, true, false, true, true, false];
    for ((kind, name), want) in names.iter().zip(expected) {
        assert_eq!(p.allows(*kind, name, &c), want, "{name}");
    }
    const ROUNDS: usize = 1_000_000 / 7;
    let before = allocations();
    let start = Instant::now();
    let mut allowed = 0usize;
    for _ in 0..ROUNDS {
        for (kind, name) in names {
            allowed += usize::from(p.allows(kind, std::hint::black_box(name), &c));
        }
    }
    let elapsed = start.elapsed();
    let after = allocations();
    assert_eq!(after - before, 0, "allocations during evaluation");
    assert_eq!(allowed, ROUNDS * expected.iter().filter(|e| **e).count());
    let n = (ROUNDS * names.len()) as f64;
    println!(
        "policy evaluation: {} rules, {:.0} ns per decision, 0 allocations in {} decisions",
        p.rules().len(),
        elapsed.as_nanos() as f64 / n,
        ROUNDS * names.len()
    );
}
