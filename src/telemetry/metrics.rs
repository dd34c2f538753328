//! The metrics mcpgate keeps, in one process-wide registry
//! (`prometheus-client`), and the functions the request paths call.
//!
//! Recording is off until [`enable`] (called by `App::build` when
//! `metrics_listen` or `metrics_token_env` is set): [`get`] then returns
//! `None` and a request pays one atomic load. Label sets are fixed enums
//! ([`super::labels`]) or interned names, so recording allocates only the
//! first time a label set is seen.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::labels::{
    CallOutcome, GrantType, HttpMethod, McpMethod, McpOutcome, Name, Names, SigninOutcome, Status,
    StreamKind, UpstreamState,
};

/// At most this many distinct tool names are labels; further ones are `other`.
pub const MAX_TOOL_LABELS: usize = 500;
/// At most this many route templates (the router has fewer than 60).
pub const MAX_ROUTE_LABELS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: Name,
    pub method: HttpMethod,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Name,
    pub method: HttpMethod,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct McpLabels {
    pub method: McpMethod,
    pub tool: Name,
    pub upstream: Name,
    pub outcome: McpOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct McpDurationLabels {
    pub method: McpMethod,
    pub upstream: Name,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant_type: GrantType,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StreamLabels {
    pub kind: StreamKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: Name,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct UpstreamStateLabels {
    pub upstream: Name,
    pub state: UpstreamState,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct UpstreamCallLabels {
    pub upstream: Name,
    pub outcome: CallOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StoreLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SigninLabels {
    pub outcome: SigninOutcome,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.5 ms to about 33 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 4.0, 9))
}

/// Every series (names without the `mcpgate_` prefix the registry adds).
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub mcp_requests: Family<McpLabels, Counter>,
    pub mcp_duration: HistogramFamily<McpDurationLabels>,
    pub token_grants: Family<GrantLabels, Counter>,
    pub refresh_token_reuse: Counter,
    pub mcp_sessions: Gauge,
    pub streams: Family<StreamLabels, Gauge>,
    pub upstream_state: Family<UpstreamStateLabels, Gauge>,
    pub upstream_restarts: Family<UpstreamLabels, Counter>,
    pub upstream_calls: HistogramFamily<UpstreamCallLabels>,
    pub store_duration: HistogramFamily<StoreLabels>,
    pub idp_signins: Family<SigninLabels, Counter>,
    /// The tool names seen in the gateway's and the built-in catalog.
    pub tools: Names,
    /// The router's route templates.
    pub routes: Names,
    /// `other`, `builtin`, `none`: the fixed names of the `tool` and
    /// `upstream` labels.
    pub other: Name,
    pub builtin: Name,
    pub none: Name,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mcpgate");
        let http_requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency (until the response head) by route template and method",
            http_duration.clone(),
        );
        let mcp_requests = Family::default();
        registry.register(
            "mcp_requests",
            "MCP requests by method, tool (from the catalog, else other), upstream and outcome",
            mcp_requests.clone(),
        );
        let mcp_duration: HistogramFamily<McpDurationLabels> =
            Family::new_with_constructor(latency);
        registry.register(
            "mcp_request_duration_seconds",
            "MCP request latency by method and upstream",
            mcp_duration.clone(),
        );
        let token_grants = Family::default();
        registry.register(
            "oauth_token_requests",
            "Token endpoint requests by grant type and outcome (ok or the OAuth error code)",
            token_grants.clone(),
        );
        let refresh_token_reuse = Counter::default();
        registry.register(
            "oauth_refresh_token_reuse",
            "Rotated refresh tokens presented again (the grant was revoked)",
            refresh_token_reuse.clone(),
        );
        let mcp_sessions = Gauge::default();
        registry.register(
            "mcp_sessions",
            "Open Streamable HTTP sessions on this instance",
            mcp_sessions.clone(),
        );
        let streams = Family::default();
        registry.register(
            "mcp_open_streams",
            "Open event streams by kind (Streamable HTTP GET, a POST's stream, legacy SSE)",
            streams.clone(),
        );
        let upstream_state = Family::default();
        registry.register(
            "upstream_state",
            "1 for the state each upstream is in, 0 for the others",
            upstream_state.clone(),
        );
        let upstream_restarts = Family::default();
        registry.register(
            "upstream_restarts",
            "Upstream connections started again after a failure or exit",
            upstream_restarts.clone(),
        );
        let upstream_calls: HistogramFamily<UpstreamCallLabels> =
            Family::new_with_constructor(latency);
        registry.register(
            "upstream_request_duration_seconds",
            "Requests sent to upstreams: latency by upstream and outcome",
            upstream_calls.clone(),
        );
        let store_duration: HistogramFamily<StoreLabels> = Family::new_with_constructor(latency);
        registry.register(
            "store_operation_duration_seconds",
            "Database operations (Store methods) by name",
            store_duration.clone(),
        );
        let idp_signins = Family::default();
        registry.register(
            "idp_signins",
            "Sign-ins through an identity provider by outcome",
            idp_signins.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            mcp_requests,
            mcp_duration,
            token_grants,
            refresh_token_reuse,
            mcp_sessions,
            streams,
            upstream_state,
            upstream_restarts,
            upstream_calls,
            store_duration,
            idp_signins,
            tools: Names::new(MAX_TOOL_LABELS, "other"),
            routes: Names::new(MAX_ROUTE_LABELS, "other"),
            other: Name::new("other"),
            builtin: Name::new("builtin"),
            none: Name::new("none"),
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn mcp_request(
        &self,
        method: McpMethod,
        tool: Name,
        upstream: Name,
        outcome: McpOutcome,
        started: Instant,
    ) {
        self.mcp_duration
            .get_or_create(&McpDurationLabels {
                method,
                upstream: upstream.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.mcp_requests
            .get_or_create(&McpLabels {
                method,
                tool,
                upstream,
                outcome,
            })
            .inc();
    }

    pub fn token_request(&self, grant_type: GrantType, outcome: &'static str) {
        self.token_grants
            .get_or_create(&GrantLabels {
                grant_type,
                outcome,
            })
            .inc();
    }

    pub fn upstream_state(&self, upstream: &Name, state: UpstreamState, restarted: bool) {
        for s in UpstreamState::ALL {
            self.upstream_state
                .get_or_create(&UpstreamStateLabels {
                    upstream: upstream.clone(),
                    state: s,
                })
                .set(i64::from(s == state));
        }
        if restarted {
            self.upstream_restarts
                .get_or_create(&UpstreamLabels {
                    upstream: upstream.clone(),
                })
                .inc();
        }
    }

    pub fn upstream_call(&self, upstream: &Name, ok: bool, started: Instant) {
        self.upstream_calls
            .get_or_create(&UpstreamCallLabels {
                upstream: upstream.clone(),
                outcome: if ok {
                    CallOutcome::Ok
                } else {
                    CallOutcome::Error
                },
            })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn http_request(&self, route: Name, method: HttpMethod, status: u16, started: Instant) {
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method,
            })
            .observe(started.elapsed().as_secs_f64());
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status: Status(status),
            })
            .inc();
    }

    pub fn idp_signin(&self, ok: bool) {
        self.idp_signins
            .get_or_create(&SigninLabels {
                outcome: if ok {
                    SigninOutcome::Ok
                } else {
                    SigninOutcome::Error
                },
            })
            .inc();
    }

    /// A gauge that counts one open stream of `kind` until the guard drops.
    pub fn open_stream(&self, kind: StreamKind) -> GaugeGuard {
        GaugeGuard::new(self.streams.get_or_create_owned(&StreamLabels { kind }))
    }

    /// A gauge that counts one open Streamable HTTP session until dropped.
    pub fn open_session(&self) -> GaugeGuard {
        GaugeGuard::new(self.mcp_sessions.clone())
    }
}

/// Holds one unit of a gauge: incremented when made, decremented when dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn new(g: Gauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Turns recording on for this process (it stays on).
pub fn enable() -> &'static Metrics {
    let m = METRICS.get_or_init(Metrics::new);
    ENABLED.store(true, Ordering::Release);
    m
}

/// The metrics, when recording is on.
#[inline]
pub fn get() -> Option<&'static Metrics> {
    if ENABLED.load(Ordering::Relaxed) {
        METRICS.get()
    } else {
        None
    }
}

/// Times a store operation (`Store` method `operation`).
pub async fn timed_store<T>(operation: &'static str, f: impl Future<Output = T>) -> T {
    let Some(m) = get() else {
        return f.await;
    };
    let started = Instant::now();
    let out = f.await;
    m.store_duration
        .get_or_create(&StoreLabels { operation })
        .observe(started.elapsed().as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_every_family_with_its_labels() {
        let m = Metrics::new();
        let up = Name::new("fx");
        m.mcp_request(
            McpMethod::ToolsCall,
            m.tools.intern("fx_echo"),
            up.clone(),
            McpOutcome::Ok,
            Instant::now(),
        );
        m.token_request(GrantType::RefreshToken, "invalid_grant");
        m.upstream_state(&up, UpstreamState::Running, true);
        let text = m.encode();
        assert!(
            text.contains(
                r#"mcpgate_mcp_requests_total{method="tools/call",tool="fx_echo",upstream="fx",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"mcpgate_oauth_token_requests_total{grant_type="refresh_token",outcome="invalid_grant"} 1"#
        ));
        assert!(text.contains(r#"mcpgate_upstream_state{upstream="fx",state="running"} 1"#));
        assert!(text.contains(r#"mcpgate_upstream_state{upstream="fx",state="restarting"} 0"#));
        assert!(text.contains(r#"mcpgate_upstream_restarts_total{upstream="fx"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_gauge_guard_counts_while_it_lives() {
        let m = Metrics::new();
        let a = m.open_stream(StreamKind::LegacySse);
        let b = m.open_stream(StreamKind::LegacySse);
        let g = m.streams.get_or_create_owned(&StreamLabels {
            kind: StreamKind::LegacySse,
        });
        assert_eq!(g.get(), 2);
        drop(a);
        assert_eq!(g.get(), 1);
        drop(b);
        assert_eq!(g.get(), 0);
    }
}
