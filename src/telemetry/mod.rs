//! Observability: Prometheus metrics and OpenTelemetry traces
//! ([docs/observability.md](../../docs/observability.md) for operators).
//!
//! - [`metrics`]: the process-wide registry, off until a metrics setting
//!   is given (`metrics_listen`, `metrics_token_env`); the recording
//!   functions the request paths call.
//! - [`labels`]: the label values, all from fixed sets or bounded catalogs
//!   (no user, token or client-chosen label).
//! - [`scrape`]: `/metrics` on its own listener or behind a bearer token,
//!   and the HTTP middleware that counts requests by route template.
//! - [`traces`]: OTLP export configured by `OTEL_*` variables, the MCP
//!   spans, and W3C Trace Context (`traceparent`) from clients to upstreams.
//! - [`otlp_client`]: the exporter's HTTP client (`crate::outbound`).

pub mod labels;
pub mod metrics;
pub mod otlp_client;
pub mod scrape;
pub mod traces;
