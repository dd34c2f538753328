//! Provider identities and local users.
//!
//! An identity (provider id + subject) maps to one local user. On the first
//! sign-in the user is created (unless `create_users = false`) without a
//! password, so password sign-in is impossible for them (it fails like an
//! unknown user, in the same time). The username comes from the
//! preferred username / login, else the email, made unique with `-2`,
//! `-3`, ... An admin links existing users with `mcpgate user link`.

use mcpgate_core::crypto::random_uuid;
use mcpgate_core::domain::Username;
use mcpgate_core::federation::rules::{username_base, username_candidate};
use mcpgate_core::federation::{FederationError, Identity, Restrictions, UserIdentity};
use mcpgate_core::model::User;

use super::Provider;
use crate::auth::AuthServer;
use crate::store::{Store, StoreError};

/// How many usernames are tried before giving up.
const MAX_CANDIDATES: u32 = 50;

fn server(e: StoreError) -> FederationError {
    tracing::error!(error = %e, "store failure");
    FederationError::Server
}

/// The local user of a verified identity, created if allowed.
pub async fn resolve(
    auth: &AuthServer,
    provider: &Provider,
    restrictions: &Restrictions,
    identity: &Identity,
) -> Result<User, FederationError> {
    restrictions
        .check(identity)
        .map_err(|reason| FederationError::UserNotAllowed { reason })?;
    let store = auth.store.as_ref();
    if let Some(user) = linked_user(store, provider.id(), &identity.subject).await? {
        return Ok(user);
    }
    if !provider.config.create_users {
        return Err(FederationError::NoAccount);
    }
    let base = username_base(identity);
    let now = auth.now();
    for n in 1..=MAX_CANDIDATES {
        // The base is normalised; should a candidate still not be a valid
        // username, the plain `user-N` is.
        let candidate = username_candidate(&base, n);
        let Ok(username) = Username::parse(&candidate)
            .or_else(|_| Username::parse(&username_candidate("user", n)))
        else {
            continue;
        };
        let user = User {
            id: random_uuid(),
            username,
            password_hash: None,
            created_at: now,
        };
        let link = UserIdentity {
            provider_id: provider.id().to_string(),
            subject: identity.subject.clone(),
            user_id: user.id.clone(),
            email: identity.email.clone(),
            created_at: now,
        };
        match store.create_federated_user(&user, &link).await {
            Ok(()) => {
                tracing::info!(event = "federation.user_created", provider = %provider.id(), username = ?user.username, "user created on first sign-in");
                return Ok(user);
            }
            Err(StoreError::Conflict(_)) => {
                // Another sign-in of the same identity may have won the race.
                if let Some(user) = linked_user(store, provider.id(), &identity.subject).await? {
                    return Ok(user);
                }
            }
            Err(e) => return Err(server(e)),
        }
    }
    Err(server(StoreError::Conflict(format!(
        "{MAX_CANDIDATES} usernames starting with {base:?}"
    ))))
}

/// With `groups_claim` set: makes the groups in the claim the user's
/// groups from this provider (docs/policy.md), replacing those of the
/// previous sign-in; local groups and other providers' stay.
pub async fn refresh_groups(
    auth: &AuthServer,
    provider: &Provider,
    user: &User,
    identity: &Identity,
) -> Result<(), FederationError> {
    let Some(claim) = &provider.config.groups_claim else {
        return Ok(());
    };
    let prefix = provider.config.groups_prefix.as_deref().unwrap_or_default();
    let (groups, skipped) =
        mcpgate_core::policy::claim::groups_from_claim(&identity.claims, claim, prefix);
    if skipped > 0 {
        tracing::warn!(provider = %provider.id(), claim = ?claim, skipped, "group values skipped (not strings, not valid group names, or past the limit)");
    }
    let source = mcpgate_core::model::GroupSource::Provider(provider.id().to_string());
    auth.store
        .replace_source_groups(&user.id, &source, &groups, auth.now())
        .await
        .map_err(server)?;
    // The user's cached tokens carry the old groups.
    auth.forget_cached_tokens();
    Ok(())
}

async fn linked_user(
    store: &dyn Store,
    provider_id: &str,
    subject: &str,
) -> Result<Option<User>, FederationError> {
    let Some(link) = store.identity(provider_id, subject).await.map_err(server)? else {
        return Ok(None);
    };
    store.user_by_id(&link.user_id).await.map_err(server)
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no user named {0:?}")]
    NoUser(String),
    #[error(
        "the identity {subject:?} of provider {provider:?} is already linked to a user (unlink it first)"
    )]
    Linked { provider: String, subject: String },
    #[error("the identity {subject:?} of provider {provider:?} is not linked")]
    NotLinked { provider: String, subject: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user an administrator names (`crate::auth::users::find`).
async fn find_user(store: &dyn Store, username: &str) -> Result<User, LinkError> {
    use crate::auth::users::{UserError, find};
    match find(store, username).await {
        Ok(u) => Ok(u),
        Err(UserError::Store(e)) => Err(e.into()),
        Err(UserError::NotFound(name)) => Err(LinkError::NoUser(name)),
        Err(_) => Err(LinkError::NoUser(username.to_string())),
    }
}

/// `mcpgate user link`: lets `provider`'s `subject` sign in as `username`.
pub async fn link(
    store: &dyn Store,
    username: &str,
    provider: &str,
    subject: &str,
    now: i64,
) -> Result<(), LinkError> {
    let user = find_user(store, username).await?;
    let link = UserIdentity {
        provider_id: provider.to_string(),
        subject: subject.to_string(),
        user_id: user.id,
        email: None,
        created_at: now,
    };
    match store.link_identity(&link).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(LinkError::Linked {
            provider: provider.into(),
            subject: subject.into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// `mcpgate user unlink`.
pub async fn unlink(store: &dyn Store, provider: &str, subject: &str) -> Result<(), LinkError> {
    if store.unlink_identity(provider, subject).await? {
        Ok(())
    } else {
        Err(LinkError::NotLinked {
            provider: provider.into(),
            subject: subject.into(),
        })
    }
}

/// `mcpgate user show`: the user and their linked identities.
pub async fn show(store: &dyn Store, username: &str) -> Result<(), LinkError> {
    let user = find_user(store, username).await?;
    println!("username\t{}", user.username);
    println!("id\t{}", user.id);
    println!("created\t{}", crate::clock::rfc3339(user.created_at));
    println!(
        "password\t{}",
        if user.password_hash.is_some() {
            "set"
        } else {
            "none (identity provider only)"
        }
    );
    let identities = store.identities_of_user(&user.id).await?;
    if identities.is_empty() {
        println!("identities\tnone");
    }
    for i in identities {
        println!(
            "identity\t{}\t{}\t{}",
            i.provider_id,
            i.subject,
            i.email.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
