//! `mcpgate audit tail | search`: reading the audit log from the database
//! (docs/audit.md). Both print a table by default (client-controlled values
//! escaped, so a record cannot forge a line) or JSON lines (`--json`, the
//! stream's format plus the record's `id`). `tail -f` polls the database
//! once a second for records after the last one shown, so it follows every
//! instance sharing a PostgreSQL database.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::app::open_store;
use crate::audit::sink;
use crate::config::Settings;
use crate::store::{AuditOrder, AuditQuery, AuditRecord, Store};

/// How often `tail -f` asks the database for new records.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the last records (oldest of them first); `-f` keeps following.
    Tail {
        /// How many records.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: u32,
        /// Keep printing new records as they are written (Ctrl-C stops).
        #[arg(short = 'f', long)]
        follow: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the records matching every filter given (the newest LIMIT,
    /// oldest first).
    Search(SearchArgs),
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// A username or user id.
    #[arg(long)]
    pub user: Option<String>,
    /// A client id.
    #[arg(long)]
    pub client: Option<String>,
    /// A tool (or prompt name, or resource URI), as the client named it.
    #[arg(long)]
    pub tool: Option<String>,
    /// An event kind: sign_in, consent, token.issued, tool.call, ...
    #[arg(long)]
    pub kind: Option<String>,
    /// ok, denied or error.
    #[arg(long)]
    pub outcome: Option<String>,
    /// From this time: RFC 3339 (`2026-12-05T10:00:00Z`) or an age (`2h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time: RFC 3339 or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: &AuditCommand, s: &Settings) -> anyhow::Result<()> {
    let store = open_store(&s.database_url).await?;
    match cmd {
        AuditCommand::Tail {
            lines,
            follow,
            json,
        } => tail(store.as_ref(), *lines, *follow, *json).await,
        AuditCommand::Search(args) => search(store.as_ref(), args).await,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `--since` / `--until`: an RFC 3339 time, or an age before now.
pub(crate) fn parse_time(flag: &str, value: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        return Ok(ms);
    }
    if let Ok(age) = humantime::parse_duration(value) {
        let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(age));
    }
    bail!("--{flag} {value:?}: use an RFC 3339 time (2026-12-05T10:00:00Z) or an age (30m, 2h, 7d)")
}

async fn tail(store: &dyn Store, lines: u32, follow: bool, json: bool) -> anyhow::Result<()> {
    let mut last = store
        .search_audit(&AuditQuery {
            order: AuditOrder::NewestFirst,
            limit: lines,
            ..AuditQuery::default()
        })
        .await?;
    last.reverse();
    let mut printer = Printer::new(json);
    printer.print(&last);
    if !follow {
        if last.is_empty() && !json {
            println!("no audit records");
        }
        return Ok(());
    }
    // The cursor: the newest id seen (0 before any record).
    let mut after = match last.last() {
        Some(r) => r.id,
        None => newest_id(store).await?,
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
            r = tokio::signal::ctrl_c() => {
                r.context("cannot wait for Ctrl-C")?;
                return Ok(());
            }
        }
        let new = store
            .search_audit(&AuditQuery {
                after_id: Some(after),
                limit: crate::store::audit::MAX_SEARCH_LIMIT,
                ..AuditQuery::default()
            })
            .await?;
        if let Some(r) = new.last() {
            after = r.id;
        }
        printer.print(&new);
    }
}

async fn newest_id(store: &dyn Store) -> anyhow::Result<i64> {
    Ok(store
        .search_audit(&AuditQuery {
            order: AuditOrder::NewestFirst,
            limit: 1,
            ..AuditQuery::default()
        })
        .await?
        .first()
        .map_or(0, |r| r.id))
}

async fn search(store: &dyn Store, a: &SearchArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let since_ms = a
        .since
        .as_deref()
        .map(|v| parse_time("since", v, now))
        .transpose()?;
    let until_ms = a
        .until
        .as_deref()
        .map(|v| parse_time("until", v, now))
        .transpose()?;
    if let Some(o) = &a.outcome
        && !crate::audit::Outcome::ALL.iter().any(|k| k.as_str() == o)
    {
        bail!("--outcome {o:?}: use ok, denied or error");
    }
    if let Some(k) = &a.kind
        && !crate::audit::Kind::ALL.iter().any(|x| x.as_str() == k)
    {
        let kinds: Vec<&str> = crate::audit::Kind::ALL.iter().map(|k| k.as_str()).collect();
        bail!("--kind {k:?}: use one of {}", kinds.join(", "));
    }
    let mut found = store
        .search_audit(&AuditQuery {
            user: a.user.clone(),
            client_id: a.client.clone(),
            target: a.tool.clone(),
            kind: a.kind.clone(),
            outcome: a.outcome.clone(),
            since_ms,
            until_ms,
            order: AuditOrder::NewestFirst,
            limit: a.limit,
            ..AuditQuery::default()
        })
        .await?;
    found.reverse();
    if found.is_empty() && !a.json {
        println!("no matching audit records");
        return Ok(());
    }
    Printer::new(a.json).print(&found);
    Ok(())
}

/// Prints records as a table (with one header) or as JSON lines.
struct Printer {
    json: bool,
    header_done: bool,
}

impl Printer {
    fn new(json: bool) -> Self {
        Self {
            json,
            header_done: false,
        }
    }

    fn print(&mut self, records: &[AuditRecord]) {
        if records.is_empty() {
            return;
        }
        if self.json {
            for r in records {
                println!("{}", json_line(r));
            }
            return;
        }
        if !self.header_done {
            println!(
                "{:<24} {:<20} {:<7} {:<16} {:<24} {:<12} {:<24} {:>6} DETAIL",
                "TIME", "KIND", "OUTCOME", "USER", "CLIENT", "UPSTREAM", "TARGET", "MS"
            );
            self.header_done = true;
        }
        for r in records {
            println!("{}", table_row(r));
        }
    }
}

/// A record as the stream writes it, with its `id`.
pub fn json_line(r: &AuditRecord) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&sink::line(r)).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), r.id.into());
    }
    v.to_string()
}

/// `s` with control characters escaped (a value cannot start a new line).
fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn table_row(r: &AuditRecord) -> String {
    let opt = |v: &Option<String>| clean(v.as_deref().unwrap_or("-"));
    format!(
        "{:<24} {:<20} {:<7} {:<16} {:<24} {:<12} {:<24} {:>6} {}",
        sink::rfc3339_millis(r.at_ms),
        clean(&r.kind),
        clean(&r.outcome),
        opt(&r.username),
        opt(&r.client_id),
        opt(&r.upstream),
        opt(&r.target),
        r.duration_ms.map_or("-".to_string(), |d| d.to_string()),
        opt(&r.detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_values_are_escaped() {
        assert_eq!(clean("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn times_are_rfc3339_or_an_age() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("since", "2h", now).unwrap(), now - 7_200_000);
        assert_eq!(
            parse_time("since", "2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time("since", "yesterday-ish", now).is_err());
    }
}
