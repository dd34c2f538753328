//! Traces: OpenTelemetry spans exported over OTLP/HTTP (protobuf), and W3C
//! Trace Context propagation between clients, mcpgate and upstreams.
//!
//! **Configuration** is the standard `OTEL_*` environment ([`TraceConfig`]):
//! export is on when `OTEL_TRACES_EXPORTER=otlp`, or when it is unset and
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set; `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` turn it
//! off. Only `http/protobuf` is spoken. The exporter sends with the
//! server's outbound client policy (`crate::outbound`, `outbound_ca_file`).
//!
//! **Spans** follow the OpenTelemetry semantic conventions for MCP
//! (gen-ai/mcp, status Development; `crate::mcp::spans` makes them): a
//! `SERVER` span per MCP request or notification a client sends, on every
//! transport, named `{mcp.method.name} {target}` where the target is the
//! tool (`gen_ai.tool.name`) or prompt (`gen_ai.prompt.name`), else just
//! `{mcp.method.name}` (a resource URI is an attribute, `mcp.resource.uri`,
//! never in the name: high cardinality). Attributes: `mcp.method.name`,
//! `mcp.session.id`, `jsonrpc.request.id` (requests),
//! `mcp.protocol.version`, `network.transport = tcp`,
//! `network.protocol.name = http`, `gen_ai.operation.name = execute_tool`
//! on `tools/call`; on failure `error.type` (the JSON-RPC error code, or
//! `tool_error` for a result with `isError`) and `rpc.response.status_code`.
//! The span status is `ERROR` for a tool error and for the server's errors
//! (`-32603`, `-32000` to `-32099`), as the conventions ask; other codes
//! are the client's mistakes. A `CLIENT` span per request relayed to an
//! upstream, named after its method and tool.
//!
//! **Propagation** (SEP-414, MCP 2026-07-28 `_meta` keys `traceparent` and
//! `tracestate`): the parent is the request's `_meta.traceparent`, else its
//! HTTP `traceparent` header. Upstreams receive the context of the client
//! span in `_meta.traceparent` (every transport, stdio included) and, over
//! Streamable HTTP, in the `traceparent` header too
//! (`crate::gateway::trace_header`). With export off, a client's context
//! is passed on unchanged, so a trace still connects across mcpgate.
//!
//! The context travels with the request's future
//! (`opentelemetry::context::FutureExt::with_context`), holding the
//! server's [`Tracer`] as a context value: each `App` has its own, so
//! tests can run servers with and without export in one process.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use rmcp::model::RequestMetaObject;

use super::otlp_client::OutboundHttpClient;

/// The OTLP settings read from the `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// The full URL spans are POSTed to (`.../v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    pub timeout: Duration,
}

impl TraceConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From any source of variables; `None` when export is off.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let set = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let traces_endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        match set("OTEL_TRACES_EXPORTER").as_deref() {
            Some("otlp") => {}
            None if traces_endpoint.is_some() || endpoint.is_some() => {}
            None | Some("none") => return Ok(None),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_EXPORTER={other:?} is not supported (otlp or none)"
                ));
            }
        }
        let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".into());
        if protocol != "http/protobuf" {
            return Err(format!(
                "OTLP protocol {protocol:?} is not supported: mcpgate exports http/protobuf"
            ));
        }
        let endpoint = match (traces_endpoint, endpoint) {
            (Some(t), _) => t,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => "http://localhost:4318/v1/traces".into(),
        };
        url::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| format!("the OTLP endpoint {endpoint:?} is not an http(s) URL"))?;
        let timeout = set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10));
        Ok(Some(Self {
            endpoint,
            service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| "mcpgate".into()),
            timeout,
        }))
    }
}

/// A server's span export: its provider (batching, a background thread)
/// and tracer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tracer {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Tracer {
    /// Starts the exporter. Must run inside a Tokio runtime (the exporter's
    /// requests run on it).
    pub fn start(
        config: &TraceConfig,
        outbound: &crate::outbound::OutboundSettings,
    ) -> Result<Self, String> {
        let client = OutboundHttpClient::new(config.timeout, outbound)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(config.endpoint.clone())
            .with_timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("mcpgate");
        Ok(Self { provider, tracer })
    }

    /// Sends the finished spans now.
    pub fn force_flush(&self) {
        let _ = self.provider.force_flush();
    }

    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

/// The context a client sent: `_meta.traceparent`/`tracestate` if present,
/// else the HTTP `traceparent`/`tracestate` headers.
pub fn incoming(meta: Option<&RequestMetaObject>, headers: Option<&http::HeaderMap>) -> Context {
    let mut carrier: HashMap<String, String> = HashMap::new();
    if let Some(tp) = meta.and_then(|m| m.get_traceparent()) {
        carrier.insert("traceparent".into(), tp.to_string());
        if let Some(ts) = meta.and_then(|m| m.get_tracestate()) {
            carrier.insert("tracestate".into(), ts.to_string());
        }
    } else if let Some(h) = headers {
        for key in ["traceparent", "tracestate"] {
            if let Some(v) = h.get(key).and_then(|v| v.to_str().ok()) {
                carrier.insert(key.into(), v.to_string());
            }
        }
    }
    if carrier.is_empty() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// What describes an MCP request (or notification) on its span.
#[derive(Default)]
pub struct ServerRequest<'a> {
    pub method: &'a str,
    pub tool: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub resource_uri: Option<&'a str>,
    pub session: Option<&'a str>,
    /// `None` for a notification.
    pub request_id: Option<String>,
    pub protocol_version: Option<&'a str>,
}

/// How an MCP request ended, for its span.
pub enum Outcome<'a> {
    Ok,
    /// A tool result with `isError`.
    ToolError,
    /// A JSON-RPC error response.
    JsonRpc {
        code: i32,
        message: &'a str,
    },
    /// An error answer of the REST tool routes: its HTTP status and error
    /// code (`unknown_tool`, `invalid_arguments`, ...).
    Http {
        status: u16,
        error: &'a str,
    },
}

/// A started server span, or the client's context alone when export is off.
pub struct ServerSpan {
    cx: Context,
    traced: bool,
}

impl ServerSpan {
    /// The context the request's future runs in.
    pub fn context(&self) -> Context {
        self.cx.clone()
    }

    /// Ends the span with the request's outcome (`error.type` when it failed).
    pub fn end(self, outcome: Outcome<'_>) {
        if !self.traced {
            return;
        }
        let span = self.cx.span();
        match outcome {
            Outcome::Ok => {}
            Outcome::ToolError => {
                span.set_attribute(KeyValue::new("error.type", "tool_error"));
                span.set_status(Status::error("tool_error"));
            }
            Outcome::JsonRpc { code, message } => {
                span.set_attribute(KeyValue::new("error.type", code.to_string()));
                span.set_attribute(KeyValue::new("rpc.response.status_code", code.to_string()));
                // Server errors only: the others are the client's (like a 4xx).
                if code == -32603 || (-32099..=-32000).contains(&code) {
                    span.set_status(Status::error(message.to_string()));
                }
            }
            Outcome::Http { status, error } => {
                span.set_attribute(KeyValue::new("error.type", error.to_string()));
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                // As above: a 4xx is the client's.
                if status >= 500 {
                    span.set_status(Status::error(error.to_string()));
                }
            }
        }
        span.end();
    }
}

/// Starts the server span of an MCP request under `parent` (see
/// [`incoming`]). Without a tracer the parent context is kept as it is, so
/// that it is still passed on to upstreams.
pub fn server_span(tracer: Option<&Tracer>, parent: Context, req: ServerRequest<'_>) -> ServerSpan {
    let Some(t) = tracer else {
        return ServerSpan {
            cx: parent,
            traced: false,
        };
    };
    let name = match req.tool.or(req.prompt) {
        Some(target) => format!("{} {target}", req.method),
        None => req.method.to_string(),
    };
    let mut attributes = vec![
        KeyValue::new("mcp.method.name", req.method.to_string()),
        KeyValue::new("network.transport", "tcp"),
        KeyValue::new("network.protocol.name", "http"),
    ];
    if let Some(tool) = req.tool {
        attributes.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
        attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
    }
    if let Some(prompt) = req.prompt {
        attributes.push(KeyValue::new("gen_ai.prompt.name", prompt.to_string()));
    }
    if let Some(uri) = req.resource_uri {
        attributes.push(KeyValue::new("mcp.resource.uri", uri.to_string()));
    }
    if let Some(s) = req.session {
        attributes.push(KeyValue::new("mcp.session.id", s.to_string()));
    }
    if let Some(id) = req.request_id {
        attributes.push(KeyValue::new("jsonrpc.request.id", id));
    }
    if let Some(v) = req.protocol_version {
        attributes.push(KeyValue::new("mcp.protocol.version", v.to_string()));
    }
    let span = t
        .tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(&t.tracer, &parent);
    ServerSpan {
        cx: parent.with_span(span).with_value(ActiveTracer(t.clone())),
        traced: true,
    }
}

/// The tracer of the request being served, carried in its context.
#[derive(Clone)]
struct ActiveTracer(Tracer);

/// The client span of one request relayed to an upstream.
pub struct UpstreamSpan {
    cx: Option<Context>,
    /// The `_meta` entries to send (`traceparent`, `tracestate`).
    pub meta: RequestMetaObject,
}

impl UpstreamSpan {
    pub fn end(self, ok: bool) {
        if let Some(cx) = self.cx {
            let span = cx.span();
            if !ok {
                span.set_attribute(KeyValue::new("error.type", "error"));
                span.set_status(Status::error("error"));
            }
            span.end();
        }
    }
}

/// For a request about to be relayed to `upstream`: a client span under the
/// current context (when traced), and the `_meta` carrying its context;
/// `None` when the request belongs to no trace.
pub fn upstream_call(method: &str, tool: Option<&str>, upstream: &str) -> Option<UpstreamSpan> {
    let current = Context::current();
    if !current.span().span_context().is_valid() {
        return None;
    }
    let (cx, traced) = match current.get::<ActiveTracer>() {
        Some(ActiveTracer(t)) => {
            let name = match tool {
                Some(tool) => format!("{method} {tool}"),
                None => method.to_string(),
            };
            let mut attributes = vec![
                KeyValue::new("mcp.method.name", method.to_string()),
                KeyValue::new("server.address", upstream.to_string()),
            ];
            if let Some(tool) = tool {
                attributes.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
            }
            let span = t
                .tracer
                .span_builder(name)
                .with_kind(SpanKind::Client)
                .with_attributes(attributes)
                .start_with_context(&t.tracer, &current);
            (current.with_span(span), true)
        }
        None => (current, false),
    };
    let meta = meta_of(cx.span().span_context(), &cx);
    Some(UpstreamSpan {
        cx: traced.then_some(cx),
        meta,
    })
}

fn meta_of(sc: &SpanContext, cx: &Context) -> RequestMetaObject {
    let mut carrier: HashMap<String, String> = HashMap::new();
    if sc.is_valid() {
        TraceContextPropagator::new().inject_context(cx, &mut carrier);
    }
    let mut meta = RequestMetaObject::default();
    if let Some(tp) = carrier.remove("traceparent") {
        meta.set_traceparent(tp);
    }
    if let Some(ts) = carrier.remove("tracestate") {
        meta.set_tracestate(ts);
    }
    meta
}

/// The `traceparent` of a relayed JSON-RPC message, for the HTTP header.
pub fn traceparent_of(meta: Option<&RequestMetaObject>) -> Option<&str> {
    meta.and_then(|m| m.get_traceparent())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn export_is_off_without_otel_variables() {
        assert_eq!(TraceConfig::from_vars(vars(&[])).unwrap(), None);
        assert_eq!(
            TraceConfig::from_vars(vars(&[
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")
            ]))
            .unwrap(),
            None
        );
        assert_eq!(
            TraceConfig::from_vars(vars(&[
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_TRACES_EXPORTER", "otlp")
            ]))
            .unwrap(),
            None
        );
    }

    #[test]
    fn the_endpoint_follows_the_otlp_rules() {
        let c = TraceConfig::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint, "http://c:4318/v1/traces");
        assert_eq!(c.service_name, "mcpgate");
        let c = TraceConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
            ("OTEL_SERVICE_NAME", "gate-1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://t:1/custom");
        assert_eq!(c.service_name, "gate-1");
        let c = TraceConfig::from_vars(vars(&[("OTEL_TRACES_EXPORTER", "otlp")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint, "http://localhost:4318/v1/traces");
    }

    #[test]
    fn grpc_and_unknown_exporters_are_refused() {
        assert!(
            TraceConfig::from_vars(vars(&[
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ]))
            .is_err()
        );
        assert!(TraceConfig::from_vars(vars(&[("OTEL_TRACES_EXPORTER", "zipkin")])).is_err());
    }

    #[test]
    fn meta_wins_over_the_header_and_a_context_is_passed_on_unchanged_without_export() {
        let mut meta = RequestMetaObject::default();
        meta.set_traceparent("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01"
                .parse()
                .unwrap(),
        );
        let cx = incoming(Some(&meta), Some(&headers));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let cx = incoming(None, Some(&headers));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "11111111111111111111111111111111"
        );
        let span = server_span(
            None,
            cx,
            ServerRequest {
                method: "tools/call",
                tool: Some("x"),
                ..Default::default()
            },
        );
        let _guard = span.context().attach();
        let up = upstream_call("tools/call", Some("x"), "fx").unwrap();
        assert_eq!(
            traceparent_of(Some(&up.meta)),
            Some("00-11111111111111111111111111111111-2222222222222222-01")
        );
    }

    #[test]
    fn a_request_outside_any_trace_sends_no_traceparent() {
        let _guard = Context::new().attach();
        assert!(upstream_call("tools/call", None, "fx").is_none());
        assert!(
            incoming(None, None).span().span_context().trace_id()
                == opentelemetry::trace::TraceId::INVALID
        );
    }
}
