//! The watcher of the open streams' tokens (the module documentation of
//! [`super`] says what a check does).
//!
//! **When the store is asked.** The store keeps a counter that moves with
//! every change or removal of an access token row, by any process and any
//! path ([`Store::access_token_changes`]: triggers, migration 0018). Every
//! [`RECHECK_EVERY`] the watcher reads it; the tokens it has already found
//! alive are asked about again only when it moved, or when a revocation is
//! announced ([`AuthServer::token_changes`]). A token whose first stream
//! opened since the last check is asked about once. So with nothing
//! revoked, a check is one read of the counter, however many streams and
//! tokens are open; and a revocation by the CLI on SQLite, which nothing
//! announces, ends its streams within [`RECHECK_EVERY`] (plus the round
//! below).
//!
//! **Rounds.** A round asks about the tokens to check, at most
//! [`CHECK_AT_MOST`] of them at a time ([`Round`]). A round that the
//! counter or an announcement started runs through at once, part after
//! part, [`MIN_GAP`] apart; new tokens beyond [`CHECK_AT_MOST`] wait for the
//! following ticks. Expiry needs no store and is checked for every token
//! on every tick.
//!
//! Asking the store about every token twice a second cost a sixth of a
//! core with 100,000 tokens of 100,000 idle streams, and tripled the p99 of
//! the calls beside them (docs/benchmarks.md, workload 5 at scale).
//!
//! [`Store::access_token_changes`]: crate::store::Store::access_token_changes

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use mcpgate_core::model::UnixTime;

use super::OpenStreams;
use crate::auth::AuthServer;
use crate::store::Store;

/// How often the counter is read, the new tokens asked about and expiry
/// checked, when nothing announced a revocation.
pub const RECHECK_EVERY: Duration = Duration::from_millis(500);
/// The least time between two checks, however many revocations arrive.
const MIN_GAP: Duration = Duration::from_millis(50);
/// The most tokens one check asks the store about.
pub const CHECK_AT_MOST: usize = 2_000;

/// The tokens to check not yet checked.
#[derive(Default)]
struct Round {
    left: Vec<String>,
}

impl Round {
    /// Every token of `streams` is to be checked (again).
    fn start_over(&mut self, streams: &OpenStreams) {
        self.left = streams.take_all();
    }

    /// The tokens that opened their first stream since are to be checked too.
    fn add_fresh(&mut self, streams: &OpenStreams) {
        self.left.extend(streams.take_fresh());
    }

    /// The next part to check.
    fn next(&mut self) -> Vec<String> {
        self.left
            .split_off(self.left.len().saturating_sub(CHECK_AT_MOST))
    }

    fn is_done(&self) -> bool {
        self.left.is_empty()
    }

    fn clear(&mut self) {
        self.left = Vec::new();
    }
}

/// What the watcher remembers between checks.
#[derive(Default)]
struct Watch {
    round: Round,
    /// The store's counter at the last check; `None` before the first
    /// read.
    counter: Option<i64>,
}

/// Starts the watcher of `streams`; it stops at `cancel`.
pub fn start(streams: Arc<OpenStreams>, auth: Arc<AuthServer>, cancel: CancellationToken) {
    let mut changes = auth.token_changes();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = Watch::default();
        // Set while a started round runs through without waiting for the
        // ticks.
        let mut urgent = false;
        loop {
            let mut announced = false;
            if !urgent || watch.round.is_done() {
                urgent = false;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        announced = true;
                    }
                }
            }
            if streams.is_empty() {
                watch.round.clear();
                continue;
            }
            let checked = check(&streams, &*auth.store, auth.now(), &mut watch, announced).await;
            if checked.ended > 0 {
                // A token found dead may still be in the bearer check's cache.
                auth.forget_cached_tokens();
            }
            // A failing store is not asked again before the next tick.
            urgent = (urgent || checked.started) && !checked.failed;
            tokio::time::sleep(MIN_GAP).await;
        }
    });
}

/// What one check did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Checked {
    /// The counter moved, or a revocation was announced: a round of every
    /// token started.
    started: bool,
    /// Tokens the store was asked about.
    asked: usize,
    /// Streams ended because their token was found dead.
    ended: usize,
    /// The store failed (logged): the rest waits for the next tick.
    failed: bool,
}

/// One check at `now`: the expired tokens' streams end; the counter is
/// read, and every token is to be checked again if it moved (or
/// `announced`); then the next part of the round is asked about.
async fn check(
    streams: &OpenStreams,
    store: &dyn Store,
    now: UnixTime,
    watch: &mut Watch,
    announced: bool,
) -> Checked {
    let expired = streams.end_expired(now);
    if expired > 0 {
        tracing::info!(
            event = "mcp.streams_ended",
            streams = expired,
            reason = "token expired",
            "event streams ended: their access token expired"
        );
    }
    let mut checked = Checked::default();
    let counter = match store.access_token_changes().await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the tokens of open event streams");
            checked.failed = true;
            return checked;
        }
    };
    // Read before the tokens are asked about: a change after the read moves
    // it again, and the next check sees that.
    checked.started = announced || watch.counter != Some(counter);
    watch.counter = Some(counter);
    if checked.started {
        watch.round.start_over(streams);
    } else {
        watch.round.add_fresh(streams);
    }
    let tokens = watch.round.next();
    if tokens.is_empty() {
        return checked;
    }
    checked.asked = tokens.len();
    let dead = match store.dead_access_tokens(&tokens, now).await {
        Ok(dead) => dead,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the tokens of open event streams");
            // Asked about again at the next check.
            watch.round.left.extend(tokens);
            checked.failed = true;
            return checked;
        }
    };
    if dead.is_empty() {
        return checked;
    }
    let dead: Vec<&str> = dead.iter().map(String::as_str).collect();
    // Only the tokens checked: a stream opened meanwhile with another token
    // waits for its check.
    checked.ended = streams.end_tokens(&dead);
    if checked.ended > 0 {
        tracing::info!(
            event = "mcp.streams_ended",
            streams = checked.ended,
            reason = "token revoked",
            "event streams ended: their access token was revoked or removed"
        );
    }
    checked
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

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn a_round_checks_every_token_once_at_most_check_at_most_at_a_time() {
        let streams = Arc::new(OpenStreams::default());
        let n = 2 * CHECK_AT_MOST + 7;
        let _held: Vec<_> = (0..n).map(|i| open(&streams, format!("t{i}"))).collect();
        let mut round = Round::default();
        round.start_over(&streams);
        let mut seen = HashSet::new();
        let mut checks = 0;
        while !round.is_done() {
            let part = round.next();
            assert!(!part.is_empty() && part.len() <= CHECK_AT_MOST);
            for t in part {
                assert!(seen.insert(t), "a token checked twice in one round");
            }
            checks += 1;
        }
        assert_eq!(checks, 3);
        assert_eq!(seen.len(), n, "every token was checked");
        assert!(round.next().is_empty(), "nothing more until a new round");
        assert!(
            streams.take_fresh().is_empty(),
            "a round that starts over takes the fresh tokens with it"
        );
    }

    #[test]
    fn a_token_is_fresh_once_when_its_first_stream_opens_while_it_has_any() {
        let streams = Arc::new(OpenStreams::default());
        let a = open(&streams, "ta".into());
        let _a2 = open(&streams, "ta".into());
        let b = open(&streams, "tb".into());
        assert_eq!(sorted(streams.take_fresh()), ["ta", "tb"]);
        assert!(streams.take_fresh().is_empty(), "taken");
        let _c = open(&streams, "tc".into());
        let _a3 = open(&streams, "ta".into());
        assert_eq!(streams.take_fresh(), ["tc"], "ta already had a stream");
        drop(b);
        let _b2 = open(&streams, "tb".into());
        let gone = open(&streams, "td".into());
        drop(gone);
        assert_eq!(
            streams.take_fresh(),
            ["tb"],
            "tb opened anew; td has no stream left"
        );
        drop(a);
        assert!(streams.take_fresh().is_empty());
    }

    #[test]
    fn the_fresh_tokens_go_when_the_last_stream_closes() {
        let streams = Arc::new(OpenStreams::default());
        for i in 0..3 {
            drop(open(&streams, format!("t{i}")));
        }
        assert!(streams.inner().is_some_and(|m| m.fresh.is_empty()));
    }

    #[test]
    fn fresh_tokens_join_the_round_in_parts() {
        let streams = Arc::new(OpenStreams::default());
        let _old = open(&streams, "old".into());
        let mut round = Round::default();
        round.start_over(&streams);
        assert_eq!(round.next(), ["old"]);
        let n = CHECK_AT_MOST + 1;
        let _held: Vec<_> = (0..n).map(|i| open(&streams, format!("t{i}"))).collect();
        round.add_fresh(&streams);
        assert_eq!(round.next().len(), CHECK_AT_MOST);
        round.add_fresh(&streams);
        let last = round.next();
        assert_eq!(last.len(), 1);
        assert!(!last.contains(&"old".to_string()), "old is not asked again");
        assert!(round.is_done());
    }

    mod with_a_store {
        use super::*;
        use crate::store::sqlite::SqliteStore;
        use mcpgate_core::domain::{ClientId, ResourceUri, Scope};
        use mcpgate_core::model::{AccessToken, Client, ClientKind};
        use mcpgate_core::oauth::register;

        const NOW: UnixTime = 1_000;

        async fn store() -> Arc<dyn Store> {
            let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
            s.migrate().await.unwrap();
            let s: Arc<dyn Store> = Arc::new(s);
            s.create_client(&Client {
                client_id: ClientId::parse("svc").unwrap(),
                secret_hash: Some("0".repeat(64)),
                // What a registration of one redirect URI stores.
                metadata: register::validate(
                    &serde_json::json!({"redirect_uris": ["https://app.example/cb"]}),
                    &["mcp".to_string()],
                )
                .unwrap(),
                issued_at: NOW,
                last_used_at: None,
                kind: ClientKind::Dynamic,
            })
            .await
            .unwrap();
            s
        }

        /// A service token (no user), live for an hour.
        async fn token(store: &Arc<dyn Store>, hash: &str) {
            store
                .create_access_token(&AccessToken {
                    token_hash: hash.into(),
                    grant_id: format!("g-{hash}"),
                    client_id: ClientId::parse("svc").unwrap(),
                    user_id: None,
                    scope: Scope::parse("mcp").unwrap(),
                    resource: ResourceUri::parse("https://gw.example/v1/ai/mcp").unwrap(),
                    created_at: NOW,
                    expires_at: NOW + 3600,
                    revoked_at: None,
                })
                .await
                .unwrap();
        }

        fn open_until(streams: &Arc<OpenStreams>, token: &str) -> axum::response::Response {
            let about = info(OpenKind::StreamableGet, "svc");
            watch(streams, token.into(), NOW + 3600, endless(), about)
        }

        #[tokio::test]
        async fn with_nothing_revoked_a_check_asks_only_about_new_tokens() {
            let store = store().await;
            let streams = Arc::new(OpenStreams::default());
            let mut w = Watch::default();
            let n = CHECK_AT_MOST + 10;
            let mut held = Vec::new();
            for i in 0..n {
                let t = format!("t{i}");
                token(&store, &t).await;
                held.push(open_until(&streams, &t));
            }
            // The first check starts a round over every token, run through.
            let first = check(&streams, &*store, NOW, &mut w, false).await;
            assert!(first.started);
            assert_eq!(first.asked, CHECK_AT_MOST);
            let second = check(&streams, &*store, NOW, &mut w, false).await;
            assert_eq!((second.started, second.asked), (false, 10));
            // Nothing changed: nothing is asked, however many tokens.
            for _ in 0..3 {
                let c = check(&streams, &*store, NOW, &mut w, false).await;
                assert_eq!(c, Checked::default(), "an idle check asks nothing");
            }
            // A new token is asked about once.
            token(&store, "new").await;
            held.push(open_until(&streams, "new"));
            let c = check(&streams, &*store, NOW, &mut w, false).await;
            assert_eq!((c.started, c.asked), (false, 1));
            assert_eq!(check(&streams, &*store, NOW, &mut w, false).await.asked, 0);
            // An announcement starts a round over all of them.
            let c = check(&streams, &*store, NOW, &mut w, true).await;
            assert!(c.started);
            assert_eq!(c.asked, CHECK_AT_MOST);
            assert_eq!(streams.len(), n + 1);
        }

        #[tokio::test]
        async fn a_revocation_nobody_announced_ends_its_streams_at_the_next_check() {
            let store = store().await;
            let streams = Arc::new(OpenStreams::default());
            let mut w = Watch::default();
            for t in ["a", "b"] {
                token(&store, t).await;
            }
            let _a = open_until(&streams, "a");
            let _b = open_until(&streams, "b");
            let c = check(&streams, &*store, NOW, &mut w, false).await;
            assert_eq!((c.asked, c.ended), (2, 0));
            assert_eq!(check(&streams, &*store, NOW, &mut w, false).await.asked, 0);
            // Another process (the CLI) revokes: only the store's counter knows.
            assert!(store.revoke_access_token("a", NOW).await.unwrap());
            let c = check(&streams, &*store, NOW, &mut w, false).await;
            assert!(c.started, "the counter moved");
            assert_eq!((c.asked, c.ended), (2, 1));
            assert_eq!(streams.tokens(), ["b"]);
            // A token removed with its client (a cascade) likewise.
            assert!(
                store
                    .delete_client(&ClientId::parse("svc").unwrap())
                    .await
                    .unwrap()
            );
            let c = check(&streams, &*store, NOW, &mut w, false).await;
            assert_eq!((c.started, c.ended), (true, 1));
            assert!(streams.is_empty());
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
