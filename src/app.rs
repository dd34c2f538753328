//! Building and running the server: [`App::build`] binds the listener
//! (port 0 works, for tests), opens and migrates the store, loads the
//! server key and wires the router; [`App::run_until_stopped`] serves until
//! the shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mcpgate_core::crypto::random_bytes;
use mcpgate_core::oauth::discovery::Urls;
use tokio::net::TcpListener;

use crate::auth::{AuthServer, Limits};
use crate::clock::{Clock, SystemClock};
use crate::cluster::Cluster;
use crate::config::{Settings, secs};
use crate::gateway::Gateway;
use crate::http::server::ServeLimits;
use crate::http::{AppState, router};
use crate::mcp::McpState;
use crate::mcp::gate::OriginPolicy;
use crate::mcp::tools::Tools;
use crate::store::postgres::{PgStore, display_url, is_postgres_url};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::web::Pages;
use tokio_util::sync::CancellationToken;

/// How often expired rows and unused clients are cleaned up.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    router: axum::Router,
    auth: Arc<AuthServer>,
    /// Cancelled at shutdown: ends open MCP sessions and SSE streams, which
    /// would otherwise hold graceful shutdown open forever.
    cancel: CancellationToken,
    gateway: Arc<Gateway>,
    limits: ServeLimits,
}

/// Opens the store named by a database URL and applies its migrations:
/// PostgreSQL for `postgres://` and `postgresql://` URLs, SQLite otherwise.
/// Stored usernames that collide once normalised stop it
/// (`StoreError::UsernameCollisions`, which says how to resolve them).
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_and_migrate(database_url, false).await
}

/// [`open_store`] for `mcpgate user ...`: colliding usernames only print a
/// warning, so that they can be listed, renamed and removed.
pub async fn open_store_for_user_admin(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_and_migrate(database_url, true).await
}

async fn open_and_migrate(
    database_url: &str,
    tolerate_collisions: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    let (store, context): (Arc<dyn Store>, String) = if is_postgres_url(database_url) {
        // The error names the server and database, never the password.
        let store = PgStore::connect(database_url).await?;
        let context = format!(
            "cannot apply database migrations to PostgreSQL at {}",
            display_url(database_url)
        );
        (Arc::new(store), context)
    } else {
        let store = SqliteStore::connect(database_url)
            .await
            .with_context(|| format!("cannot open the database {database_url}"))?;
        (
            Arc::new(store),
            "cannot apply database migrations".to_string(),
        )
    };
    match store.migrate().await {
        Ok(()) => {}
        Err(StoreError::UsernameCollisions(c)) if tolerate_collisions => {
            eprintln!("warning: {c}");
        }
        Err(e @ StoreError::UsernameCollisions(_)) => return Err(e.into()),
        Err(e) => return Err(anyhow::Error::new(e).context(context)),
    }
    Ok(store)
}

/// A database URL fit for messages: a PostgreSQL URL as `host:port/database`
/// (no password), a SQLite URL as it is.
pub fn database_label(database_url: &str) -> String {
    if is_postgres_url(database_url) {
        format!("PostgreSQL at {}", display_url(database_url))
    } else {
        database_url.to_string()
    }
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let resolved = settings.resolve(addr)?;
        let store = open_store(&settings.database_url).await?;
        let key = store
            .server_key(
                crate::auth::operator::SERVER_KEY_NAME,
                &random_bytes::<32>(),
            )
            .await
            .context("cannot load the server key")?;
        let auth = Arc::new(
            AuthServer::new(
                store,
                resolved.policy,
                resolved.urls,
                clock,
                key,
                Limits {
                    login_session_ttl: secs(settings.login_session_ttl),
                    unused_client_ttl: secs(settings.unused_client_ttl),
                    registrations_per_minute: settings.registration_rate_limit,
                    logins_per_minute: settings.login_rate_limit,
                    trusted_proxies: resolved.trusted_proxies,
                },
            )
            .with_documents(
                crate::auth::documents::Documents::new(resolved.documents, &resolved.outbound)
                    .map_err(anyhow::Error::msg)?,
            ),
        );
        let pages = Pages::new().context("cannot load page templates")?;
        let cancel = CancellationToken::new();
        let cluster = Arc::new(Cluster {
            instance_id: settings
                .instance_id
                .clone()
                .unwrap_or_else(crate::cluster::default_instance_id),
            bus: crate::cluster::open_bus(&settings.database_url, cancel.child_token()).await?,
            store: auth.store.clone(),
            clock: auth.clock.clone(),
        });
        auth.attach_bus(cluster.bus.clone(), cancel.child_token());
        let gateway = Arc::new(
            Gateway::new(
                settings.upstream.clone(),
                cancel.child_token(),
                &auth.urls.issuer,
                crate::gateway::env::Protected::new(
                    &settings.upstream,
                    &settings.identity_provider,
                ),
                &resolved.outbound,
            )
            .map_err(anyhow::Error::msg)?,
        );
        if settings.upstream.iter().any(|u| u.is_oauth()) {
            gateway.attach_oauth(Arc::new(
                crate::upstream_oauth::UpstreamOAuth::new(
                    auth.store.clone(),
                    auth.clock.clone(),
                    auth.key(),
                    &auth.urls.issuer,
                    &settings.upstream,
                    &resolved.outbound,
                )
                .map_err(anyhow::Error::msg)?,
            ));
        }
        let mcp = Arc::new(McpState {
            tools: Arc::new(Tools::builtin(auth.clock.clone())),
            gateway: gateway.clone(),
            server_name: settings.server_name.clone(),
            base_path: auth.urls.base_path.clone(),
            origin_policy: origin_policy(&auth.urls.issuer, &settings),
            session_idle: settings.mcp_session_idle_timeout,
            sse: Default::default(),
            cancel: cancel.clone(),
            cluster: cluster.clone(),
            session_manager: McpState::new_session_manager(settings.mcp_session_idle_timeout),
            inline: Default::default(),
            streams: Default::default(),
            tasks: Arc::new(crate::tasks::Tasks::new(
                gateway.clone(),
                cluster.clone(),
                cancel.child_token(),
            )),
            mrtr: Arc::new(crate::mcp::mrtr::Mrtr::new(
                auth.key(),
                cluster.clone(),
                crate::gateway::input::Limits::default(),
            )),
        });
        mcp.tasks.start();
        mcp.start_cluster_tasks();
        crate::mcp::streams::start(mcp.streams.clone(), auth.clone(), cancel.child_token());
        tracing::info!(
            instance = %cluster.instance_id,
            shared = cluster.shared(),
            "instance started"
        );
        let mut state = AppState::new(
            auth.clone(),
            pages,
            &settings.server_name,
            secs(settings.login_session_ttl),
            mcp,
        );
        state.dynamic_client_registration = settings.dynamic_client_registration;
        state.federation = Arc::new(
            crate::federation::Federation::new(
                &settings.identity_provider,
                settings.password_login,
                format!("{}/oauth/callback", auth.urls.issuer.trim_end_matches('/')),
                &resolved.outbound,
            )
            .map_err(anyhow::Error::msg)?,
        );
        Ok(Self {
            listener,
            addr,
            router: router(state),
            auth,
            cancel,
            gateway,
            limits: ServeLimits {
                header_read_timeout: settings.header_read_timeout,
                body_read_timeout: settings.body_read_timeout,
                keep_alive_timeout: settings.keep_alive_timeout,
                max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn urls(&self) -> &Urls {
        &self.auth.urls
    }

    pub fn auth(&self) -> Arc<AuthServer> {
        self.auth.clone()
    }

    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.clone()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.auth.store.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.gateway.start();
        let auth = self.auth.clone();
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
            loop {
                tick.tick().await;
                match auth.housekeeping().await {
                    Ok((purged, clients)) if purged + clients > 0 => {
                        tracing::info!(purged, unused_clients_removed = clients, "housekeeping");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "housekeeping failed"),
                }
            }
        });
        // The accept loop (crate::http::server) sets TCP_NODELAY, applies the
        // timeouts and the connection cap, and passes the peer address on.
        crate::http::server::serve(self.listener, self.router, self.limits, {
            let cancel = self.cancel.clone();
            let gateway = self.gateway.clone();
            async move {
                shutdown.await;
                // subscriptions/listen streams end with their final result
                // while the transports still run.
                gateway.close_listens().await;
                cancel.cancel();
            }
        })
        .await;
        housekeeping.abort();
        Ok(())
    }
}

/// Who may reach the MCP endpoint, by `Host` and `Origin`: the public URL,
/// loopback hosts (a DNS-rebinding attack never sends a loopback `Host`),
/// loopback origins when the public URL is itself loopback (local use,
/// MCP Inspector), and whatever the operator adds.
fn origin_policy(issuer: &str, settings: &Settings) -> OriginPolicy {
    let url = url::Url::parse(issuer).ok();
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let mut origins: Vec<String> = Vec::new();
    if let Some(u) = &url {
        if let Some(h) = u.host_str() {
            hosts.push(h.trim_matches(['[', ']']).to_string());
            if let Some(p) = u.port() {
                hosts.push(format!("{h}:{p}"));
            }
        }
        origins.push(u.origin().ascii_serialization());
        let loopback = matches!(u.host(), Some(url::Host::Domain("localhost")))
            || matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
        if loopback {
            origins.extend(
                ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from),
            );
        }
    }
    hosts.extend(settings.allowed_hosts.iter().cloned());
    origins.extend(settings.allowed_origins.iter().cloned());
    OriginPolicy::new(hosts, origins)
}
