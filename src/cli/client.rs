//! `mcpgate client add | list | show | remove`.
//!
//! `add` pre-registers a client (`ClientKind::Preregistered`) with the rules
//! of `mcpgate_core::oauth::preregister`. A generated secret is printed once
//! and stored only as its hash, like a registration's. The result goes to
//! stdout as `client_id=...` (and `client_secret=...`) lines, or as JSON
//! with `--json`, so that a script can read it; notes go to stderr.

use crate::audit::{Event, Kind, Outcome};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use mcpgate_core::crypto::{hash_secret, random_uuid};
use mcpgate_core::domain::{ClientId, MetadataDocumentUrl};
use mcpgate_core::model::{Client, ClientKind};
use mcpgate_core::oauth::preregister::{self, Auth};

use crate::app::open_store;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Pre-register a client: an MCP client signing users in, or a machine
    /// client using the client credentials grant (prints its id, and a
    /// generated secret once).
    Add(AddArgs),
    /// List registered clients.
    List,
    /// Show one client's registration.
    Show { client_id: String },
    /// Remove a client and revoke everything issued to it.
    Remove { client_id: String },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The client's name, shown on the consent page and by `whoami`.
    #[arg(long)]
    pub name: String,
    /// A redirect URI of the authorization code flow (repeat for several).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// A public client (no secret: a desktop or browser application).
    #[arg(long)]
    pub public: bool,
    /// A confidential client with a generated secret, printed once.
    #[arg(long)]
    pub secret: bool,
    /// `private_key_jwt`: the URL of the client's public keys (JWK Set).
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// `private_key_jwt`: a file holding the client's public keys (JWK Set).
    #[arg(long, value_name = "PATH")]
    pub jwks_file: Option<PathBuf>,
    /// authorization_code, refresh_token, client_credentials (comma-separated
    /// or repeated). Default: authorization_code,refresh_token with
    /// redirect URIs, else client_credentials.
    #[arg(long, value_delimiter = ',', value_name = "GRANTS")]
    pub grant_types: Vec<String>,
    /// The scopes the client is given (space- or comma-separated; default:
    /// the server's default_scope).
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// The client id (default: a random UUID).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: &ClientCommand, s: &Settings) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Add(args) => add(args, s).await,
        ClientCommand::List => list(s).await,
        ClientCommand::Show { client_id } => show(client_id, s).await,
        ClientCommand::Remove { client_id } => remove(client_id, s).await,
    }
}

fn auth_of(a: &AddArgs) -> anyhow::Result<Auth> {
    let chosen = [
        a.public,
        a.secret,
        a.jwks_uri.is_some(),
        a.jwks_file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        bail!(
            "choose exactly one of --public, --secret, --jwks-uri URL and --jwks-file PATH (how the client authenticates)"
        );
    }
    Ok(if a.public {
        Auth::Public
    } else if a.secret {
        Auth::Secret
    } else if let Some(u) = &a.jwks_uri {
        Auth::JwksUri(u.clone())
    } else if let Some(path) = &a.jwks_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --jwks-file {}", path.display()))?;
        let set: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--jwks-file {} is not JSON", path.display()))?;
        Auth::Jwks(set)
    } else {
        bail!("no authentication method chosen")
    })
}

async fn add(a: &AddArgs, s: &Settings) -> anyhow::Result<()> {
    let auth = auth_of(a)?;
    let resolved = s.resolve(s.listen)?;
    let request = preregister::Request {
        name: a.name.clone(),
        redirect_uris: a.redirect_uris.clone(),
        auth: auth.clone(),
        grant_types: a.grant_types.clone(),
        scope: a.scope.as_ref().map(|s| s.replace(',', " ")),
        client_id: a.client_id.clone(),
    };
    let (id, metadata) =
        preregister::build(&request, &resolved.policy).map_err(anyhow::Error::msg)?;
    let client_id = match id {
        Some(id) => id,
        None => ClientId::parse(&random_uuid()).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let secret = (auth == Auth::Secret).then(crate::auth::register::new_client_secret);
    let client = Client {
        client_id,
        secret_hash: secret.as_deref().map(hash_secret),
        metadata,
        issued_at: SystemClock.now(),
        last_used_at: None,
        kind: ClientKind::Preregistered,
    };
    let store = open_store(&s.database_url).await?;
    match store.create_client(&client).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            bail!(
                "a client with client_id {} already exists (mcpgate client show {0})",
                client.client_id
            )
        }
        Err(e) => return Err(e.into()),
    }
    crate::audit::record_direct(
        s,
        store.as_ref(),
        Event::new(Kind::ClientRegistered, Outcome::Ok)
            .client(client.client_id.as_str())
            .detail("via", "cli")
            .detail(
                "auth_method",
                client.metadata.token_endpoint_auth_method.as_str(),
            )
            .detail_text("client_name", client.display_name()),
    )
    .await
    .unwrap_or_else(|e| eprintln!("warning: {e}"));
    let grants: Vec<&str> = client
        .metadata
        .grant_types
        .iter()
        .map(|g| g.as_str())
        .collect();
    if a.json {
        let mut doc = serde_json::json!({
            "client_id": client.client_id.as_str(),
            "client_name": client.display_name(),
            "token_endpoint_auth_method": client.metadata.token_endpoint_auth_method.as_str(),
            "grant_types": grants,
            "scope": client.metadata.scope.as_ref().map(|s| s.to_string()),
        });
        if let (Some(secret), Some(o)) = (&secret, doc.as_object_mut()) {
            o.insert("client_secret".into(), secret.clone().into());
        }
        println!("{doc}");
    } else {
        println!("client_id={}", client.client_id);
        if let Some(secret) = &secret {
            println!("client_secret={secret}");
        }
    }
    eprintln!(
        "added client {:?} ({}; grants: {}; scope: {})",
        client.display_name(),
        client.metadata.token_endpoint_auth_method.as_str(),
        grants.join(", "),
        client
            .metadata
            .scope
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    if secret.is_some() {
        eprintln!(
            "the secret is shown only now: mcpgate keeps only its hash; to replace it, remove the client and add it again"
        );
    }
    Ok(())
}

async fn list(s: &Settings) -> anyhow::Result<()> {
    let store = open_store(&s.database_url).await?;
    let list = store.list_clients().await?;
    if list.is_empty() {
        println!("no clients");
    }
    for c in list {
        // A metadata-document client is its host ("identified by its
        // domain"); others show their (claimed) name.
        let (label, since) = match MetadataDocumentUrl::parse(c.client_id.as_str()) {
            Ok(url) if c.kind == ClientKind::MetadataDocument => {
                (format!("host {}", url.host()), "first seen")
            }
            _ => (c.display_name().to_string(), "registered"),
        };
        println!(
            "{}\t{}\t{}\t{}\t{since} {}\t{}",
            c.client_id,
            c.kind.as_str(),
            label,
            c.metadata.token_endpoint_auth_method.as_str(),
            crate::clock::rfc3339(c.issued_at),
            c.last_used_at.map_or("never used".to_string(), |t| format!(
                "last used {}",
                crate::clock::rfc3339(t)
            )),
        );
    }
    Ok(())
}

async fn show(client_id: &str, s: &Settings) -> anyhow::Result<()> {
    let store = open_store(&s.database_url).await?;
    let id = ClientId::parse(client_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = store
        .client(&id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no client with client_id {client_id}"))?;
    let active = store
        .count_active_access_tokens(&id, SystemClock.now())
        .await?;
    let mut doc = mcpgate_core::oauth::register::response(&c, None);
    if let Some(o) = doc.as_object_mut() {
        o.insert("kind".into(), c.kind.as_str().into());
        o.insert("confidential".into(), c.secret_hash.is_some().into());
        o.insert("last_used_at".into(), c.last_used_at.into());
        o.insert("active_access_tokens".into(), active.into());
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

async fn remove(client_id: &str, s: &Settings) -> anyhow::Result<()> {
    let store = open_store(&s.database_url).await?;
    let id = ClientId::parse(client_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !store.delete_client(&id).await? {
        bail!("no client with client_id {client_id}");
    }
    crate::audit::record_direct(
        s,
        store.as_ref(),
        Event::new(Kind::ClientRemoved, Outcome::Ok)
            .client(id.as_str())
            .detail("via", "cli"),
    )
    .await
    .unwrap_or_else(|e| eprintln!("warning: {e}"));
    crate::cluster::announce_revocation(&s.database_url).await?;
    println!("removed client {client_id}");
    Ok(())
}
