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
    /// `metrics_listen`, bound at build.
    metrics_listener: Option<TcpListener>,
    /// Who may read `/metrics` on `metrics_listener`.
    metrics_access: crate::telemetry::scrape::ScrapeAccess,
    /// The span exporter (traces on), flushed at shutdown.
    tracer: Option<crate::telemetry::traces::Tracer>,
    addr: SocketAddr,
    router: axum::Router,
    auth: Arc<AuthServer>,
    /// Cancelled at shutdown: ends open MCP sessions and SSE streams, which
    /// would otherwise hold graceful shutdown open forever.
    cancel: CancellationToken,
    gateway: Arc<Gateway>,
    limits: ServeLimits,
    /// Native TLS (`tls_cert_file`, `tls_key_file`), if configured.
    tls: Option<Arc<crate::http::tls::CertReloader>>,
    /// Configuration reload (`SIGHUP`, `mcpgate reload`).
    reloader: Arc<crate::reload::Reloader>,
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
    /// The server of the binary: traces exported when the `OTEL_*`
    /// variables say so (`crate::telemetry::traces::TraceConfig`).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let traces =
            crate::telemetry::traces::TraceConfig::from_env().map_err(anyhow::Error::msg)?;
        Self::build_traced(settings, Arc::new(SystemClock), traces).await
    }

    /// A server without trace export (tests).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build_traced(settings, clock, None).await
    }

    /// A server exporting spans as `traces` says (`None`: no export).
    pub async fn build_traced(
        settings: Settings,
        clock: Arc<dyn Clock>,
        traces: Option<crate::telemetry::traces::TraceConfig>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let resolved = settings.resolve(addr)?;
        let metrics_listener = match settings.metrics_listen {
            Some(a) => Some(crate::telemetry::scrape::bind(a).await?),
            None => None,
        };
        if metrics_listener.is_some() || resolved.metrics_token.is_some() {
            crate::telemetry::metrics::enable();
        }
        let tracer = traces
            .map(|t| crate::telemetry::traces::Tracer::start(&t, &resolved.outbound))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let tls = match settings.tls_files()? {
            Some(files) => Some(crate::http::tls::CertReloader::new(files)?),
            None => None,
        };
        let store = open_store(&settings.database_url).await?;
        let key = store
            .server_key(
                crate::auth::operator::SERVER_KEY_NAME,
                &random_bytes::<32>(),
            )
            .await
            .context("cannot load the server key")?;
        let instance_id = settings
            .instance_id
            .clone()
            .unwrap_or_else(crate::cluster::default_instance_id);
        let audit = crate::audit::Audit::start(
            &crate::audit::AuditSettings::from_settings(&settings).map_err(anyhow::Error::msg)?,
            store.clone(),
            clock.clone(),
            &instance_id,
        )
        .await
        .map_err(anyhow::Error::msg)?;
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
            )
            .with_audit(audit.clone()),
        );
        let pages = Pages::new().context("cannot load page templates")?;
        let cancel = CancellationToken::new();
        let cluster = Arc::new(Cluster {
            instance_id,
            bus: crate::cluster::open_bus(&settings.database_url, cancel.child_token()).await?,
            store: auth.store.clone(),
            clock: auth.clock.clone(),
        });
        auth.attach_bus(cluster.bus.clone(), cancel.child_token());
        // `[[policy]]`, its group names checked against the store's groups.
        let local_groups: std::collections::HashSet<String> = auth
            .store
            .list_groups()
            .await
            .context("cannot read the groups")?
            .into_iter()
            .map(|g| g.name)
            .collect();
        let access = Arc::new(crate::policy::Access::new(
            settings.compile_policy(Some(&local_groups))?,
            auth.clock.clone(),
        ));
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
            .map_err(anyhow::Error::msg)?
            .with_scopes(Arc::new(resolved.scope_requirements.clone()))
            .with_access(access)
            .with_audit(audit),
        );
        if let Some(t) = &tracer {
            gateway.set_tracer(t.clone());
        }
        // Built even without `auth = "oauth"` upstreams: a reload may add
        // one (`Gateway::oauth` answers only while one is configured).
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
        gateway.attach_connection_news(cluster.bus.clone(), cancel.child_token());
        let origin = Arc::new(crate::live::Live::new(origin_policy(
            &auth.urls.issuer,
            &settings,
        )));
        let mcp = Arc::new(McpState {
            tools: Arc::new(Tools::builtin(auth.clock.clone())),
            gateway: gateway.clone(),
            server_name: settings.server_name.clone(),
            base_path: auth.urls.base_path.clone(),
            origin_policy: origin.clone(),
            session_idle: settings.mcp_session_idle_timeout,
            keep_alive: settings.event_stream_keep_alive,
            sse: Default::default(),
            cancel: cancel.clone(),
            cluster: cluster.clone(),
            inline: Default::default(),
            peers: Default::default(),
            stateless: Default::default(),
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
            challenge_urls: crate::mcp::scope_gate::ChallengeUrls {
                resource_metadata: auth.urls.resource_metadata.clone(),
                sse_resource_metadata: auth.urls.sse_resource_metadata.clone(),
            },
        });
        mcp.tasks.start();
        mcp.start_cluster_tasks();
        mcp.start_session_sweeper();
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
        state.federation = Arc::new(crate::live::Live::new(
            crate::federation::Federation::new(
                &settings.identity_provider,
                settings.password_login,
                format!("{}/oauth/callback", auth.urls.issuer.trim_end_matches('/')),
                &resolved.outbound,
            )
            .map_err(anyhow::Error::msg)?,
        ));
        let reloader = Arc::new(crate::reload::Reloader::new(
            settings.clone(),
            addr,
            auth.clone(),
            gateway.clone(),
            origin,
            state.federation.clone(),
        ));
        let mut router = router(state).merge(crate::http::reload::router(
            &auth.urls.base_path,
            auth.clone(),
            reloader.clone(),
        ));
        if let Some(token) = resolved.metrics_token.clone() {
            router = router.merge(crate::telemetry::scrape::router(
                crate::telemetry::scrape::ScrapeAccess::token(token),
            ));
        }
        if let Some(l) = &metrics_listener {
            tracing::info!(address = %l.local_addr()?, "serving /metrics");
        }
        Ok(Self {
            listener,
            metrics_listener,
            metrics_access: match resolved.metrics_token {
                Some(t) => crate::telemetry::scrape::ScrapeAccess::token(t),
                None => crate::telemetry::scrape::ScrapeAccess::open(),
            },
            tracer,
            addr,
            router,
            auth,
            cancel,
            gateway,
            limits: ServeLimits {
                header_read_timeout: settings.header_read_timeout,
                body_read_timeout: settings.body_read_timeout,
                keep_alive_timeout: settings.keep_alive_timeout,
                max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
            },
            tls,
            reloader,
        })
    }

    /// Where a reload reads the configuration: as start-up did (the same
    /// file, the environment, the same flags). Without one, a reload
    /// answers that there is nothing to reload.
    pub fn reload_from(self, loader: crate::reload::Loader) -> Self {
        self.reloader.set_loader(loader);
        self
    }

    /// The reload machinery (what `SIGHUP` and `mcpgate reload` call).
    pub fn reloader(&self) -> Arc<crate::reload::Reloader> {
        self.reloader.clone()
    }

    /// Reloads the configuration on every `SIGHUP` until shutdown.
    pub fn reload_on_sighup(&self) {
        crate::reload::on_sighup(self.reloader.clone(), self.cancel.child_token());
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

    /// The address of `metrics_listen`, once bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The span exporter, when traces are on.
    pub fn tracer(&self) -> Option<crate::telemetry::traces::Tracer> {
        self.tracer.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.gateway.start();
        if let Some(l) = self.metrics_listener {
            crate::telemetry::scrape::spawn_listener(
                l,
                self.metrics_access.clone(),
                self.cancel.child_token(),
            );
        }
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
        let acceptor = match &self.tls {
            Some(tls) => {
                tokio::spawn(tls.clone().watch(self.cancel.child_token()));
                Some(tls.acceptor()?)
            }
            None => None,
        };
        crate::http::server::serve(self.listener, self.router, self.limits, acceptor, {
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
        // The audit records of the last requests.
        self.auth.audit.close().await;
        if let Some(t) = &self.tracer {
            // The batch still queued; off the runtime's threads (it blocks).
            let t = t.clone();
            let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
        }
        Ok(())
    }
}

/// Who may reach the MCP endpoint, by `Host` and `Origin`: the public URL,
/// loopback hosts (a DNS-rebinding attack never sends a loopback `Host`),
/// loopback origins when the public URL is itself loopback (local use,
/// MCP Inspector), and whatever the operator adds.
pub(crate) fn origin_policy(issuer: &str, settings: &Settings) -> OriginPolicy {
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
