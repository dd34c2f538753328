//! `mcpgate user group add|remove USER GROUP`, `mcpgate group list`, and
//! the groups of `mcpgate user add --group` (docs/policy.md).
//!
//! These write the database directly. A running server loads a user's
//! groups with their token: the change reaches it within the token cache's
//! lifetime (`auth::bearer::CACHE_TTL`, 10 s); on PostgreSQL the running
//! instances are told to drop their caches at once.

use clap::Subcommand;
use mcpgate_core::model::GroupSource;
use mcpgate_core::policy::GroupName;

use crate::auth::users;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum UserGroupCommand {
    /// Add a user to a group (created if new).
    Add { username: String, group: String },
    /// Remove a user from a group (the local membership; groups from an
    /// identity provider are replaced at the user's next sign-in there).
    Remove { username: String, group: String },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List groups with their number of members.
    List,
}

/// Parses every `--group` of `user add` before the user is created.
pub fn parse_groups(groups: &[String]) -> anyhow::Result<Vec<GroupName>> {
    groups
        .iter()
        .map(|g| GroupName::parse(g).map_err(anyhow::Error::msg))
        .collect()
}

/// Adds the user (by id) to `groups` as local memberships.
pub async fn add_local(
    store: &dyn Store,
    user_id: &str,
    groups: &[GroupName],
    now: i64,
) -> anyhow::Result<()> {
    for g in groups {
        store
            .add_group_member(user_id, g.as_str(), &GroupSource::Local, now)
            .await?;
    }
    Ok(())
}

pub async fn user_group(cmd: &UserGroupCommand, ctx: &crate::admin::Ctx<'_>) -> anyhow::Result<()> {
    // `crate::admin` tells running instances to drop their cached tokens
    // (and the groups loaded with them).
    match cmd {
        UserGroupCommand::Add { username, group } => {
            let user = users::find(ctx.store(), username).await?;
            if ctx.add_to_group(user.username.as_str(), group).await? {
                println!("added {} to group {group}", user.username);
            } else {
                println!("{} is already in group {group}", user.username);
            }
        }
        UserGroupCommand::Remove { username, group } => {
            let user = users::find(ctx.store(), username).await?;
            ctx.remove_from_group(user.username.as_str(), group).await?;
            println!("removed {} from group {group}", user.username);
        }
    }
    Ok(())
}

pub async fn group(cmd: &GroupCommand, store: &dyn Store) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List => {
            let list = store.list_groups().await?;
            if list.is_empty() {
                println!("no groups");
            }
            for g in list {
                let noun = if g.members == 1 { "member" } else { "members" };
                println!("{}\t{} {noun}", g.name, g.members);
            }
        }
    }
    Ok(())
}
