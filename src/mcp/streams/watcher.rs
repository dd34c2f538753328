//! The watcher of the open streams' tokens (the module documentation of
//! [`super`] says when it checks and what a check does).
//!
//! **Rounds.** A round checks every distinct token of the open streams
//! once, asking the store about at most [`CHECK_AT_MOST`] of them at a time
//! ([`Round`]). With no more tokens than that, which is the usual case, a
//! round is one check: every token is checked every [`RECHECK_EVERY`], and
//! at once after an announced revocation. With more, each tick checks the
//! next part of the round, so that the store answers a bounded query twice
//! a second however many tokens there are; an announced revocation starts
//! a new round and runs it through at once, part after part, [`MIN_GAP`]
//! apart. An unannounced revocation (the CLI on SQLite) then ends its
//! streams within `tokens ÷ CHECK_AT_MOST × RECHECK_EVERY`: 25 s with
//! 100,000 tokens. Expiry needs no store and is checked for every token on
//! every tick.
//!
//! Asking the store about every token twice a second cost a third of a
//! core with 100,000 tokens, and halved the throughput of the calls beside
//! them (docs/benchmarks.md, workload 5 at scale).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::OpenStreams;
use crate::auth::AuthServer;

/// How often the tokens of open streams are checked when nothing announced
/// a revocation.
pub const RECHECK_EVERY: Duration = Duration::from_millis(500);
/// The least time between two checks, however many revocations arrive.
const MIN_GAP: Duration = Duration::from_millis(50);
/// The most tokens one check asks the store about.
pub const CHECK_AT_MOST: usize = 2_000;

/// The tokens of the current round not yet checked.
#[derive(Default)]
struct Round {
    left: Vec<String>,
}

impl Round {
    /// The tokens to check now: the next part of this round, or of a new
    /// one (all the tokens of `streams`) when this one is done.
    fn next(&mut self, streams: &OpenStreams) -> Vec<String> {
        if self.left.is_empty() {
            self.left = streams.tokens();
        }
        self.left
            .split_off(self.left.len().saturating_sub(CHECK_AT_MOST))
    }

    fn is_done(&self) -> bool {
        self.left.is_empty()
    }

    /// Drops what is left: the next check starts a new round.
    fn restart(&mut self) {
        self.left.clear();
    }
}

/// Starts the watcher of `streams`; it stops at `cancel`.
pub fn start(streams: Arc<OpenStreams>, auth: Arc<AuthServer>, cancel: CancellationToken) {
    let mut changes = auth.token_changes();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round = Round::default();
        // Set by an announcement: the round runs through without waiting
        // for the ticks.
        let mut urgent = false;
        loop {
            if !urgent || round.is_done() {
                urgent = false;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        round.restart();
                        urgent = true;
                    }
                }
            }
            if streams.is_empty() {
                round.restart();
                continue;
            }
            check(&streams, &auth, &mut round).await;
            tokio::time::sleep(MIN_GAP).await;
        }
    });
}

/// One check: the expired tokens' streams end, then the next part of the
/// round is asked about.
async fn check(streams: &OpenStreams, auth: &AuthServer, round: &mut Round) {
    let now = auth.now();
    let expired = streams.end_expired(now);
    if expired > 0 {
        tracing::info!(
            event = "mcp.streams_ended",
            streams = expired,
            reason = "token expired",
            "event streams ended: their access token expired"
        );
    }
    let tokens = round.next(streams);
    if tokens.is_empty() {
        return;
    }
    let dead = match auth.store.dead_access_tokens(&tokens, now).await {
        Ok(dead) => dead,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the tokens of open event streams");
            return;
        }
    };
    if dead.is_empty() {
        return;
    }
    let dead: Vec<&str> = dead.iter().map(String::as_str).collect();
    // Only the tokens checked: a stream opened meanwhile with another token
    // waits for its check.
    let revoked = streams.end_tokens(&dead);
    if revoked > 0 {
        // A token found dead here may still be in the bearer check's cache.
        auth.forget_cached_tokens();
        tracing::info!(
            event = "mcp.streams_ended",
            streams = revoked,
            reason = "token revoked",
            "event streams ended: their access token was revoked or removed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{endless, info};
    use super::super::{OpenKind, watch};
    use super::*;
    use std::collections::HashSet;

    fn open(streams: &Arc<OpenStreams>, token: String) -> axum::response::Response {
        let about = info(OpenKind::StreamableGet, "alice");
        watch(streams, token, 100, endless(), about)
    }

    #[test]
    fn a_round_checks_every_token_once_at_most_check_at_most_at_a_time() {
        let streams = Arc::new(OpenStreams::default());
        let n = 2 * CHECK_AT_MOST + 7;
        let _held: Vec<_> = (0..n).map(|i| open(&streams, format!("t{i}"))).collect();
        let mut round = Round::default();
        let mut seen = HashSet::new();
        let mut checks = 0;
        loop {
            let part = round.next(&streams);
            assert!(!part.is_empty() && part.len() <= CHECK_AT_MOST);
            for t in part {
                assert!(seen.insert(t), "a token checked twice in one round");
            }
            checks += 1;
            if round.is_done() {
                break;
            }
        }
        assert_eq!(checks, 3);
        assert_eq!(seen.len(), n, "every token was checked");
        assert_eq!(
            round.next(&streams).len(),
            CHECK_AT_MOST,
            "a new round begins"
        );
        round.restart();
        let part = round.next(&streams);
        assert_eq!(part.len(), CHECK_AT_MOST, "a restart begins a new round");
        assert_eq!(
            part.len() + round.left.len(),
            n,
            "the new round holds every token again"
        );
    }

    #[test]
    fn few_tokens_are_all_checked_every_time() {
        let streams = Arc::new(OpenStreams::default());
        let _held: Vec<_> = (0..3).map(|i| open(&streams, format!("t{i}"))).collect();
        let mut round = Round::default();
        for _ in 0..3 {
            let mut part = round.next(&streams);
            part.sort();
            assert_eq!(part, ["t0", "t1", "t2"]);
            assert!(round.is_done());
        }
    }

    #[tokio::test]
    async fn ending_dead_tokens_ends_only_their_streams() {
        let streams = Arc::new(OpenStreams::default());
        let _a = open(&streams, "ta".into());
        let _a2 = open(&streams, "ta".into());
        let _b = open(&streams, "tb".into());
        assert_eq!(streams.end_tokens(&["ta", "unknown"]), 2);
        assert_eq!(streams.tokens(), ["tb"]);
        assert_eq!(streams.len(), 1);
    }
}
