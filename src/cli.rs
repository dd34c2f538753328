//! The command line: `mcpgate serve | init | migrate | reload | user ... | client ... | audit ...`.
//!
//! Every setting is also a flag (`--public-url`, `--database-url`, ...);
//! flags win over `MCPGATE_*` variables, which win over the file.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::app::{App, open_store, open_store_for_user_admin};
use crate::auth::users;
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Settings};

pub(crate) mod audit;
mod client;
mod flags;
pub mod groups;
mod reload;
pub use audit::AuditCommand;
pub use client::ClientCommand;

#[derive(Debug, Parser)]
#[command(
    name = "mcpgate",
    version,
    about = "OAuth 2.1 front door for MCP servers"
)]
pub struct Cli {
    /// Configuration file (default: ./mcpgate.toml if it exists).
    #[arg(long, short = 'c', global = true, env = "MCPGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingFlags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default command).
    Serve,
    /// Write a commented mcpgate.toml.
    Init {
        /// Where to write it.
        #[arg(long, default_value = config::DEFAULT_CONFIG_FILE)]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Pre-register, inspect and remove OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Groups of users (named by `[[policy]]` rules).
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Read the audit log (docs/audit.md).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show the state of a running server and its upstreams (exit code 1
    /// if it is unreachable or an upstream is failing).
    Status {
        /// The server's base URL (default: from `listen`, else `public_url`).
        #[arg(long)]
        url: Option<String>,
    },
    /// Make the running server read its configuration again, as SIGHUP
    /// does (exit code 1 if it is not running or the configuration is
    /// invalid; the running one is then kept).
    Reload {
        /// The server's base URL (default: from `listen`, else `public_url`).
        #[arg(long)]
        url: Option<String>,
    },
    /// Check a running deployment the way MCP clients do (exit code 1 if a
    /// check fails). Registers two test clients, which expire unused.
    Doctor {
        /// The public URL (the full MCP URL is accepted too).
        #[arg(value_name = "PUBLIC_URL")]
        url: String,
        /// Path of the MCP endpoint below the public URL.
        #[arg(long, default_value = crate::doctor::DEFAULT_MCP_PATH)]
        mcp_path: String,
        /// Register no test clients (skips the registration and authorize checks).
        #[arg(long)]
        no_register: bool,
    },
    /// Re-encrypt every user's stored upstream tokens (`auth = "oauth"`
    /// upstreams) under a new vault key id. Safe while servers run.
    RotateVaultKey,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password is asked for, or read from stdin).
    Add {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Put the user in this group (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Give the user the admin role (the admin console, `/admin`). The
        /// first user created is an admin anyway.
        #[arg(long)]
        admin: bool,
    },
    /// Disable a user: no sign-in; ends their sessions, revokes their tokens.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Give (`on`) or take (`off`) the admin role (the admin console).
    Admin {
        username: String,
        #[arg(value_enum)]
        role: OnOff,
    },
    /// Add a user to a group, or remove them.
    #[command(subcommand)]
    Group(groups::UserGroupCommand),
    /// List users.
    List,
    /// Remove a user and everything issued to them.
    Remove { username: String },
    /// Rename a user (OLD as listed by `user list`, or in any case).
    Rename { old: String, new: String },
    /// Change a user's password (ends their browser sessions).
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a user and the identity-provider accounts linked to them.
    Show { username: String },
    /// Let an identity-provider account sign in as this user
    /// (`--subject`: the provider's `sub`, or GitHub's numeric id).
    Link {
        username: String,
        /// The `id` of an `[[identity_provider]]`.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        subject: String,
    },
    /// Remove a link made by `user link` or by a first sign-in.
    Unlink {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        subject: String,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

pub use flags::SettingFlags;

impl Cli {
    pub fn load_settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings::load(self.config.as_deref(), &self.settings)?)
    }
}

/// Reads a password: from stdin when asked, else twice from the terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the password: pass --password-stdin and pipe it in");
        }
        let a = rpassword::prompt_password("Password: ")?;
        let b = rpassword::prompt_password("Repeat password: ")?;
        if a != b {
            bail!("the passwords do not match");
        }
        a
    };
    if pw.is_empty() {
        bail!("the password is empty");
    }
    Ok(pw)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        None | Some(Command::Serve) => {
            let settings = cli.load_settings()?;
            let file = cli.config.clone();
            let flags = cli.settings.clone();
            serve(
                settings,
                Box::new(move || Settings::load(file.as_deref(), &flags)),
            )
            .await
        }
        Some(Command::Reload { url }) => reload::run(url.clone(), &cli.load_settings()?).await,
        Some(Command::Init { path, force }) => {
            if path.exists() && !force {
                bail!(
                    "{} already exists (use --force to overwrite)",
                    path.display()
                );
            }
            std::fs::write(path, config::example_file())
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Some(Command::Migrate) => {
            let s = cli.load_settings()?;
            open_store(&s.database_url).await?;
            println!(
                "database {} is up to date",
                crate::app::database_label(&s.database_url)
            );
            Ok(())
        }
        Some(Command::User(cmd)) => user(cmd, &cli.load_settings()?).await,
        Some(Command::Client(cmd)) => client::run(cmd, &cli.load_settings()?).await,
        Some(Command::Group(cmd)) => {
            let s = cli.load_settings()?;
            groups::group(
                cmd,
                open_store_for_user_admin(&s.database_url).await?.as_ref(),
            )
            .await
        }
        Some(Command::Audit(cmd)) => audit::run(cmd, &cli.load_settings()?).await,
        Some(Command::Status { url }) => status(url.clone(), &cli.load_settings()?).await,
        Some(Command::RotateVaultKey) => rotate_vault_key(&cli.load_settings()?).await,
        Some(Command::Doctor {
            url,
            mcp_path,
            no_register,
        }) => {
            // The local configuration's extra roots, if there is one (the
            // doctor may check a server configured elsewhere).
            let outbound = match cli.load_settings() {
                Ok(s) => outbound_settings(&s)?,
                Err(_) => Default::default(),
            };
            crate::doctor::run(url, mcp_path, *no_register, outbound).await
        }
    }
}

/// `mcpgate rotate-vault-key`: prints the new key id and counts, never a
/// token.
async fn rotate_vault_key(s: &Settings) -> anyhow::Result<()> {
    let store = open_store(&s.database_url).await?;
    let key = store
        .server_key(
            crate::auth::operator::SERVER_KEY_NAME,
            &mcpgate_core::crypto::random_bytes::<32>(),
        )
        .await
        .context("cannot load the server key")?;
    let vault = crate::upstream_oauth::vault::Vault::new(store, &key);
    let (kid, resealed, unreadable) = vault
        .rotate(SystemClock.now())
        .await
        .context("the rotation failed")?;
    println!("vault key {kid}: {resealed} connection(s) re-encrypted");
    if unreadable > 0 {
        println!(
            "{unreadable} connection(s) could not be opened and were left as they are (their users must connect again)"
        );
    }
    Ok(())
}

/// User names are normalised (`Username`: NFKC, then lowercase) as they
/// come in; a name exactly as stored is found first, so that names that
/// collide (and stop the server) can be renamed or removed.
async fn user(cmd: &UserCommand, s: &Settings) -> anyhow::Result<()> {
    let store = open_store_for_user_admin(&s.database_url).await?;
    let now = SystemClock.now();
    // The operator's actions, shared with the admin console (`crate::admin`).
    let ctx = crate::admin::Ctx::cli(store.as_ref(), s, now);
    match cmd {
        UserCommand::Add {
            username,
            password_stdin,
            groups: group_names,
            admin,
        } => {
            users::parse_username(username)?;
            let group_names = groups::parse_groups(group_names)?;
            let pw = read_password(*password_stdin)?;
            let user = ctx.create_user(username, pw, *admin).await?;
            groups::add_local(store.as_ref(), &user.id, &group_names, now).await?;
            let role = if ctx.is_admin(&user.id).await? {
                " (admin)"
            } else {
                ""
            };
            println!("created user {}{role}", user.username);
        }
        UserCommand::Admin { username, role } => {
            let on = *role == OnOff::On;
            let user = ctx.set_admin(username, on).await?;
            if on {
                println!("{} is an admin", user.username);
            } else {
                println!("{} is no longer an admin", user.username);
            }
        }
        UserCommand::Disable { username } => {
            let user = ctx.set_disabled(username, true).await?;
            println!("disabled user {}", user.username);
        }
        UserCommand::Enable { username } => {
            let user = ctx.set_disabled(username, false).await?;
            println!("enabled user {}", user.username);
        }
        UserCommand::Group(cmd) => groups::user_group(cmd, &ctx).await?,
        UserCommand::List => {
            let list = store.list_users().await?;
            let admins = store.admin_user_ids().await?;
            let disabled = store.disabled_user_ids().await?;
            if list.is_empty() {
                println!("no users");
            }
            for u in list {
                let mut role = if admins.contains(&u.id) {
                    "\tadmin"
                } else {
                    ""
                }
                .to_string();
                if disabled.contains(&u.id) {
                    role.push_str("\tdisabled");
                }
                println!(
                    "{}\t{}\tcreated {}{role}",
                    u.username,
                    u.id,
                    crate::clock::rfc3339(u.created_at)
                );
            }
        }
        UserCommand::Show { username } => {
            crate::federation::users::show(store.as_ref(), username).await?;
        }
        UserCommand::Link {
            username,
            provider,
            subject,
        } => {
            if !s.identity_provider.iter().any(|p| &p.id == provider) {
                bail!("no [[identity_provider]] with id {provider:?} is configured");
            }
            crate::federation::users::link(store.as_ref(), username, provider, subject, now)
                .await?;
            println!("linked {provider} account {subject} to user {username}");
        }
        UserCommand::Unlink { provider, subject } => {
            crate::federation::users::unlink(store.as_ref(), provider, subject).await?;
            println!("unlinked {provider} account {subject}");
        }
        UserCommand::Remove { username } => {
            // Running instances forget the user's cached tokens at once.
            let user = ctx.remove_user(username).await?;
            println!("removed user {}", user.username);
        }
        UserCommand::Rename { old, new } => {
            let new = users::rename(store.as_ref(), old, new).await?;
            println!("renamed user {old} to {new}");
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let user = users::find(store.as_ref(), username).await?;
            let pw = read_password(*password_stdin)?;
            let user = ctx.reset_password(user.username.as_str(), pw).await?;
            println!("password changed for {}", user.username);
        }
    }
    Ok(())
}

/// `outbound_allow_networks` and `outbound_ca_file` of the settings.
fn outbound_settings(s: &Settings) -> anyhow::Result<crate::outbound::OutboundSettings> {
    crate::outbound::OutboundSettings::load(
        &s.outbound_allow_networks,
        s.outbound_ca_file.as_deref(),
    )
    .map_err(anyhow::Error::msg)
}

/// The base URL of the server these settings describe: `url` if given,
/// else from `listen` (or `public_url`).
fn server_base(url: Option<String>, s: &Settings) -> String {
    match url {
        Some(u) => u.trim_end_matches('/').to_string(),
        // Native TLS: the name the certificate is for, not an address.
        None if s.tls_cert_file.is_some() => s
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://localhost:{}", s.listen.port())),
        None if s.listen.ip().is_unspecified() => format!("http://127.0.0.1:{}", s.listen.port()),
        None if s.listen.ip().is_loopback() => format!("http://{}", s.listen),
        None => s
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", s.listen)),
    }
}

async fn status(url: Option<String>, s: &Settings) -> anyhow::Result<()> {
    let base = server_base(url, s);
    let http = crate::outbound::Outbound::request_response(
        crate::outbound::Redirects::Never,
        std::time::Duration::from_secs(10),
    )
    .settings(&outbound_settings(s)?)
    .build()
    .map_err(anyhow::Error::msg)?;
    let mut request = http.get(format!("{base}/healthz?details"));
    if let Some(token) = operator_token(s).await {
        request = request.bearer_auth(token);
    }
    let resp = request
        .send()
        .await
        .with_context(|| format!("mcpgate is not reachable at {base}"))?;
    let body: serde_json::Value = resp
        .json()
        .await
        .with_context(|| format!("{base}/healthz did not answer with JSON (is this mcpgate?)"))?;
    let overall = body["status"].as_str().unwrap_or("unknown");
    println!(
        "mcpgate {} at {base}: {overall}",
        body["version"].as_str().unwrap_or("?")
    );
    let ups = match body["upstreams"].as_array() {
        Some(ups) => ups.clone(),
        None => {
            println!(
                "upstream details withheld: they need the operator token, derived from the server key in the server's database (run mcpgate status with the server's configuration or --database-url)"
            );
            Vec::new()
        }
    };
    if ups.is_empty() && body["upstreams"].is_array() {
        println!("no upstreams configured");
    }
    for u in &ups {
        println!(
            "  {:<20} {:<16} {:<9} {:<11} connections={} restarts={}{}",
            u["name"].as_str().unwrap_or("?"),
            u["transport"].as_str().unwrap_or("?"),
            u["isolation"].as_str().unwrap_or("?"),
            u["state"].as_str().unwrap_or("?"),
            u["connections"],
            u["restarts"],
            u["last_error"]
                .as_str()
                .map(|e| format!(" last_error={e}"))
                .unwrap_or_default(),
        );
    }
    if overall != "ok" {
        bail!("mcpgate at {base} is {overall}");
    }
    Ok(())
}

/// The operator token of the server whose database the settings name
/// (`crate::auth::operator`), if that database exists and can be read.
async fn operator_token(s: &Settings) -> Option<String> {
    let url = s.database_url.as_str();
    if !crate::store::postgres::is_postgres_url(url) {
        // Never create a SQLite file just to look for a key.
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if path.contains(":memory:") || !std::path::Path::new(path).exists() {
            return None;
        }
    }
    let store = open_store(url).await.ok()?;
    let key = store
        .server_key(
            crate::auth::operator::SERVER_KEY_NAME,
            &mcpgate_core::crypto::random_bytes::<32>(),
        )
        .await
        .ok()?;
    Some(crate::auth::operator::operator_token(&key))
}

async fn serve(settings: Settings, loader: crate::reload::Loader) -> anyhow::Result<()> {
    let app = App::build(settings.clone()).await?.reload_from(loader);
    app.reload_on_sighup();
    let urls = app.urls().clone();
    let first_password = users::ensure_first_user(app.store().as_ref(), SystemClock.now()).await?;
    println!(
        "mcpgate {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        app.local_addr()
    );
    println!();
    println!(
        "  MCP endpoint (paste into ChatGPT, Claude, ...): {}",
        urls.resource
    );
    println!(
        "  Authorization server metadata:                 {}",
        urls.as_metadata
    );
    println!(
        "  Protected resource metadata:                   {}",
        urls.resource_metadata
    );
    println!(
        "  Sign-in page (clients open it for you):        {}",
        urls.authorization_endpoint
    );
    if settings.dynamic_client_registration {
        println!(
            "  Client registration:                           {}",
            urls.registration_endpoint
        );
    } else {
        println!(
            "  Client registration:                           off (pre-register clients: mcpgate client add)"
        );
    }
    println!(
        "  Legacy SSE endpoint (older clients):           {}/sse",
        urls.issuer
    );
    println!(
        "  Health:                                        {}/healthz",
        urls.issuer
    );
    println!(
        "  Database:                                      {}",
        settings.database_url
    );
    if let Some(pw) = first_password {
        println!();
        println!("  Created the first user: admin");
        println!("  Password (shown only now): {pw}");
        println!("  Change it with: mcpgate user passwd admin");
    }
    println!();
    println!("Press Ctrl-C to stop.");
    app.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
