//! Traces (docs/observability.md): one tool call through the gateway,
//! exported over OTLP/HTTP to a receiver in this test, is one connected
//! trace: the client's `traceparent` (in `_meta`) → mcpgate's server span
//! → its client span to the upstream, whose context the fixture upstream
//! received in `_meta.traceparent` and reports back. And every MCP method
//! gets its server span, named and attributed per the conventions, on each
//! transport (a Streamable HTTP session, a stateless request, legacy SSE),
//! and so does each REST tool request (`GET /tools`, `POST /tools/{name}`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use rmcp::model::{ClientRequest, Request, RequestMetaObject, ServerResult};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

use crate::gateway_support::*;
use crate::helpers::{TestApp, spawn_app_traced};
use crate::mcp_support::signed_in;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver keeping every span it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        kept.lock().unwrap().extend(ss.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1/traces"), spans)
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

/// Calls `tool` with `_meta.traceparent` set; the result's text.
async fn call_with_traceparent(client: &Client, tool: &str, traceparent: &str) -> String {
    let mut meta = RequestMetaObject::default();
    meta.set_traceparent(traceparent);
    let handle = client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(tool_call(tool, json!({})))),
            PeerRequestOptions::no_options().with_meta(meta),
        )
        .await
        .expect("tools/call sent");
    let result = tokio::time::timeout(WAIT, handle.await_response())
        .await
        .expect("in time")
        .expect("the call succeeds");
    let ServerResult::CallToolResult(r) = result else {
        panic!("not a tool result: {result:?}");
    };
    text_of(&r)
}

async fn gateway_with(traces: Option<String>) -> TestApp {
    let tweak = |s: &mut mcpgate::config::Settings| s.upstream = vec![fixture("tracefx", "")];
    let app = match traces {
        Some(endpoint) => {
            spawn_app_traced(
                tweak,
                mcpgate::telemetry::traces::TraceConfig {
                    endpoint,
                    service_name: "mcpgate-under-test".into(),
                    timeout: Duration::from_secs(5),
                },
            )
            .await
        }
        None => crate::helpers::spawn_app_with(tweak).await,
    };
    wait_for_upstream(&app, "tracefx", WAIT, |u| u["state"] == "running").await;
    app
}

#[tokio::test]
async fn one_tool_call_through_the_gateway_is_one_connected_trace() {
    let (endpoint, spans) = receiver().await;
    let mut app = gateway_with(Some(endpoint)).await;
    let (_, token) = signed_in(&app, "trace-user").await;
    let (client, _events) = connect(&app, &token).await;
    let text = call_with_traceparent(
        &client,
        "tracefx_trace_context",
        &format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"),
    )
    .await;
    // What the upstream received: the same trace, a new parent (mcpgate's).
    let upstream_tp = text.strip_prefix("traceparent=").expect("fixture answer");
    let parts: Vec<&str> = upstream_tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{upstream_tp}");
    assert_eq!(parts[1], TRACE_ID, "the upstream joins the client's trace");
    assert_ne!(
        parts[2], CLIENT_SPAN,
        "the upstream's parent is mcpgate's span"
    );
    client.cancel().await.ok();
    // Shutting down flushes the exporter.
    app.stop().await;

    let spans = spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let server = spans
        .iter()
        .find(|s| s.name == "tools/call tracefx_trace_context" && s.kind == 2)
        .unwrap_or_else(|| panic!("a SERVER span for the call: {spans:#?}"));
    assert_eq!(hex(&server.trace_id), TRACE_ID);
    assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN);
    assert_eq!(
        attr(server, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attr(server, "gen_ai.tool.name").as_deref(),
        Some("tracefx_trace_context")
    );
    assert!(attr(server, "mcp.session.id").is_some(), "{server:#?}");
    let relayed = spans
        .iter()
        .find(|s| s.kind == 3 && hex(&s.span_id) == parts[2])
        .unwrap_or_else(|| panic!("the CLIENT span whose context the upstream got: {spans:#?}"));
    assert_eq!(hex(&relayed.trace_id), TRACE_ID);
    assert_eq!(relayed.parent_span_id, server.span_id);
    assert_eq!(relayed.name, "tools/call trace_context");
}

#[tokio::test]
async fn without_export_the_clients_context_is_passed_on_unchanged() {
    let app = gateway_with(None).await;
    let (_, token) = signed_in(&app, "trace-plain").await;
    let (client, _events) = connect(&app, &token).await;
    let tp = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let text = call_with_traceparent(&client, "tracefx_trace_context", &tp).await;
    assert_eq!(text, format!("traceparent={tp}"));
    // A call outside any trace sends none.
    assert_eq!(
        call_text(&client, "tracefx_trace_context", json!({})).await,
        "traceparent=none"
    );
    client.cancel().await.ok();
}

/// A Streamable HTTP upstream (rmcp) whose one tool reports the
/// `traceparent` header of the POST and the `_meta.traceparent` of the call.
#[derive(Clone)]
struct HttpUpstream;

impl rmcp::ServerHandler for HttpUpstream {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _r: Option<rmcp::model::PaginatedRequestParams>,
        _c: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        Ok(rmcp::model::ListToolsResult::with_all_items(vec![
            rmcp::model::Tool::new("ctx", "trace context", Arc::new(serde_json::Map::new())),
        ]))
    }

    async fn call_tool(
        &self,
        _r: rmcp::model::CallToolRequestParams,
        ctx: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let header = ctx
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.headers.get("traceparent"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        let meta = ctx.meta.get_traceparent().unwrap_or("none").to_string();
        Ok(rmcp::model::CallToolResponse::Complete(
            rmcp::model::CallToolResult::success(vec![rmcp::model::ContentBlock::text(format!(
                "header={header};meta={meta}"
            ))]),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_gets_the_context_in_the_header_and_in_meta() {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let service = StreamableHttpService::new(
        || Ok(HttpUpstream),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().route_service("/mcp", service)).await;
    });
    let cfg = upstream(&format!("name = \"web\"\nurl = \"{url}\"\n"));
    let app = crate::helpers::spawn_app_with(|s| s.upstream = vec![cfg]).await;
    wait_for_upstream(&app, "web", WAIT, |u| u["state"] == "running").await;
    let (_, token) = signed_in(&app, "trace-http").await;

    // The context in `_meta`: both forms upstream carry it.
    let (client, _events) = connect(&app, &token).await;
    let tp = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    assert_eq!(
        call_with_traceparent(&client, "web_ctx", &tp).await,
        format!("header={tp};meta={tp}")
    );
    assert_eq!(
        call_text(&client, "web_ctx", json!({})).await,
        "header=none;meta=none"
    );
    client.cancel().await.ok();

    // The context in the client's HTTP header only.
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut headers = std::collections::HashMap::new();
    headers.insert(
        http::HeaderName::from_static("traceparent"),
        http::HeaderValue::from_static(other),
    );
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/v1/ai/mcp"))
        .auth_header(token)
        .custom_headers(headers);
    let (recorder, _events) = Recorder::new();
    let client = recorder
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize");
    assert_eq!(
        call_text(&client, "web_ctx", json!({})).await,
        format!("header={other};meta={other}")
    );
    client.cancel().await.ok();
}

/// Sends `request` with `_meta.traceparent`; its result.
async fn request_with_traceparent(
    client: &Client,
    request: ClientRequest,
    traceparent: &str,
) -> Result<ServerResult, rmcp::ServiceError> {
    let mut meta = RequestMetaObject::default();
    meta.set_traceparent(traceparent);
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options().with_meta(meta))
        .await
        .expect("request sent");
    tokio::time::timeout(WAIT, handle.await_response())
        .await
        .expect("in time")
}

/// A stateless (2026-07-28) request of `method` without parameters, with
/// `traceparent` in its HTTP header.
async fn stateless_traced(
    app: &TestApp,
    token: &str,
    method: &str,
    id: u64,
    traceparent: &str,
) -> reqwest::Response {
    crate::mcp_support::stateless_post(app, token, method, None)
        .header("traceparent", traceparent)
        .json(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }}}),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_mcp_method_gets_a_server_span_named_and_attributed_by_the_conventions() {
    let (endpoint, spans) = receiver().await;
    let mut app = gateway_with(Some(endpoint)).await;
    let (_, token) = signed_in(&app, "trace-methods").await;
    let (client, _events) = connect(&app, &token).await;
    let list_parent = "1111111111111111";
    let read_parent = "2222222222222222";
    let fail_parent = "3333333333333333";
    let tp = |parent: &str| format!("00-{TRACE_ID}-{parent}-01");
    let r = request_with_traceparent(
        &client,
        ClientRequest::ListToolsRequest(Default::default()),
        &tp(list_parent),
    )
    .await;
    assert!(matches!(r, Ok(ServerResult::ListToolsResult(_))), "{r:?}");
    let read = |uri: &str| {
        ClientRequest::ReadResourceRequest(Request::new(
            rmcp::model::ReadResourceRequestParams::new(uri),
        ))
    };
    let r = request_with_traceparent(&client, read("fixture://static"), &tp(read_parent)).await;
    assert!(
        matches!(r, Ok(ServerResult::ReadResourceResult(_))),
        "{r:?}"
    );
    let r = request_with_traceparent(&client, read("fixture://nope"), &tp(fail_parent)).await;
    assert!(r.is_err(), "{r:?}");
    // A stateless (2026-07-28) request, outside any session, with the
    // context in its HTTP header.
    let stateless_parent = "4444444444444444";
    let r = stateless_traced(&app, &token, "tools/list", 7, &tp(stateless_parent)).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    // `server/discover` (2026-07-28), which rmcp serves on its own path.
    let discover_parent = "6666666666666666";
    let r = stateless_traced(&app, &token, "server/discover", 8, &tp(discover_parent)).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let discovered: serde_json::Value = r.json().await.unwrap();
    assert!(
        discovered["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "2026-07-28")),
        "{discovered}"
    );
    // The legacy SSE transport (2024-11-05).
    use crate::mcp_sse::{accepted, open, reply};
    use crate::mcp_support::{initialize_body, initialized_notification};
    let sse_parent = "5555555555555555";
    let (mut events, endpoint) = open(&app, "/sse", &token).await;
    accepted(&app, &endpoint, &token, &initialize_body(1, "2024-11-05")).await;
    reply(&mut events, 1).await;
    accepted(&app, &endpoint, &token, &initialized_notification()).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
                      "params": {"_meta": {"traceparent": tp(sse_parent)}}});
    accepted(&app, &endpoint, &token, &list).await;
    reply(&mut events, 2).await;
    let sse_session = endpoint.split("session_id=").nth(1).unwrap().to_string();
    drop(events);
    client.cancel().await.ok();
    app.stop().await;

    let spans = spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let server_span = |name: &str, parent: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.kind == 2 && hex(&s.parent_span_id) == parent)
            .unwrap_or_else(|| panic!("a SERVER span {name} under {parent}: {spans:#?}"))
            .clone()
    };
    let list = server_span("tools/list", list_parent);
    assert_eq!(hex(&list.trace_id), TRACE_ID);
    assert_eq!(
        attr(&list, "mcp.method.name").as_deref(),
        Some("tools/list")
    );
    assert_eq!(attr(&list, "network.transport").as_deref(), Some("tcp"));
    assert_eq!(
        attr(&list, "network.protocol.name").as_deref(),
        Some("http")
    );
    assert!(attr(&list, "mcp.session.id").is_some(), "{list:#?}");
    assert!(attr(&list, "jsonrpc.request.id").is_some(), "{list:#?}");
    assert!(attr(&list, "mcp.protocol.version").is_some(), "{list:#?}");
    assert_eq!(attr(&list, "error.type"), None);

    let read = server_span("resources/read", read_parent);
    assert_eq!(hex(&read.trace_id), TRACE_ID);
    assert_eq!(
        attr(&read, "mcp.method.name").as_deref(),
        Some("resources/read")
    );
    assert_eq!(
        attr(&read, "mcp.resource.uri").as_deref(),
        Some("fixture://static")
    );
    assert_eq!(
        attr(&read, "mcp.session.id"),
        attr(&list, "mcp.session.id"),
        "the same session"
    );
    assert_eq!(attr(&read, "error.type"), None);
    // The relay to the upstream is a CLIENT span under it.
    assert!(
        spans
            .iter()
            .any(|s| s.kind == 3 && s.parent_span_id == read.span_id),
        "{spans:#?}"
    );

    let failed = server_span("resources/read", fail_parent);
    let code = attr(&failed, "error.type").expect("error.type on a failed read");
    assert!(code.parse::<i32>().is_ok(), "a JSON-RPC error code: {code}");
    assert_eq!(attr(&failed, "rpc.response.status_code"), Some(code));

    let stateless = server_span("tools/list", stateless_parent);
    assert_eq!(attr(&stateless, "mcp.session.id"), None, "no session");
    assert_eq!(
        attr(&stateless, "mcp.protocol.version").as_deref(),
        Some("2026-07-28")
    );

    let discover = server_span("server/discover", discover_parent);
    assert_eq!(hex(&discover.trace_id), TRACE_ID);
    assert_eq!(
        attr(&discover, "mcp.method.name").as_deref(),
        Some("server/discover")
    );
    assert_eq!(attr(&discover, "mcp.session.id"), None, "no session");
    assert_eq!(attr(&discover, "error.type"), None);

    let legacy = server_span("tools/list", sse_parent);
    assert_eq!(
        attr(&legacy, "mcp.session.id").as_deref(),
        Some(sse_session.as_str()),
        "the legacy session"
    );

    // The session's other messages have spans too.
    for name in ["initialize", "notifications/initialized"] {
        assert!(
            spans.iter().any(|s| s.name == name && s.kind == 2),
            "{name}: {spans:#?}"
        );
    }
}

#[tokio::test]
async fn rest_tool_requests_get_server_spans_joined_to_the_http_traceparent() {
    let (endpoint, spans) = receiver().await;
    let mut app = gateway_with(Some(endpoint)).await;
    let (_, token) = signed_in(&app, "trace-rest").await;
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let post = |tool: &str| {
        app.http
            .post(app.url(&format!("/tools/{tool}")))
            .bearer_auth(&token)
            .header("traceparent", &traceparent)
            .send()
    };
    // Through the gateway: the upstream gets mcpgate's span as its parent.
    let r = post("tracefx_trace_context").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let result: serde_json::Value = r.json().await.unwrap();
    let text = result["content"][0]["text"].as_str().unwrap().to_string();
    let upstream_tp = text.strip_prefix("traceparent=").expect("fixture answer");
    let upstream_parent = upstream_tp.split('-').nth(2).unwrap().to_string();
    assert_eq!(upstream_tp.split('-').nth(1), Some(TRACE_ID));
    // Unknown: a 404, recorded on the span.
    let r = post("no_such_tool").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    let r = app
        .http
        .get(app.url("/tools"))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    app.stop().await;

    let spans = spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let server = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.kind == 2)
            .unwrap_or_else(|| panic!("a SERVER span {name:?}: {spans:#?}"))
            .clone()
    };
    let call = server("tools/call tracefx_trace_context");
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), CLIENT_SPAN);
    assert_eq!(
        attr(&call, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attr(&call, "gen_ai.tool.name").as_deref(),
        Some("tracefx_trace_context")
    );
    assert_eq!(attr(&call, "error.type"), None);
    let relayed = spans
        .iter()
        .find(|s| s.kind == 3 && hex(&s.span_id) == upstream_parent)
        .unwrap_or_else(|| panic!("the CLIENT span the upstream got: {spans:#?}"));
    assert_eq!(relayed.parent_span_id, call.span_id);

    let unknown = server("tools/call no_such_tool");
    assert_eq!(
        attr(&unknown, "error.type").as_deref(),
        Some("unknown_tool")
    );
    assert_eq!(
        attr(&unknown, "http.response.status_code").as_deref(),
        Some("IntValue(404)")
    );
    let list = server("tools/list");
    assert_eq!(hex(&list.parent_span_id), CLIENT_SPAN);
    assert_eq!(attr(&list, "mcp.session.id"), None);
}

/// The gateway with the conformance fixture (prefix `""`, its
/// task-supporting `slow_compute`), exporting spans to `endpoint`.
async fn traced_conformance_gateway(endpoint: String) -> TestApp {
    let upstream = fixture("conf", "args = [\"--conformance\"]\nprefix = \"\"");
    let app = spawn_app_traced(
        |s| s.upstream = vec![upstream],
        mcpgate::telemetry::traces::TraceConfig {
            endpoint,
            service_name: "mcpgate-under-test".into(),
            timeout: Duration::from_secs(5),
        },
    )
    .await;
    wait_for_upstream(&app, "conf", WAIT, |u| u["state"] == "running").await;
    app
}

/// The server span of `tools/call slow_compute` is a child of the client's
/// span, and the client span of its (background) upstream call a child of
/// the server span, all in the client's trace.
fn assert_slow_compute_joined_the_clients_trace(spans: &[Span]) {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let server = spans
        .iter()
        .find(|s| s.name == "tools/call slow_compute" && s.kind == 2)
        .unwrap_or_else(|| panic!("the SERVER span of the call: {spans:#?}"));
    assert_eq!(hex(&server.trace_id), TRACE_ID);
    assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN);
    let relayed = spans
        .iter()
        .find(|s| s.kind == 3 && s.name == "tools/call slow_compute")
        .unwrap_or_else(|| panic!("the CLIENT span of the background call: {spans:#?}"));
    assert_eq!(hex(&relayed.trace_id), TRACE_ID);
    assert_eq!(relayed.parent_span_id, server.span_id);
}

/// A task (SEP-2663) runs its upstream call in the background, after the
/// `tools/call` that created it has answered: the call still belongs to
/// that request's trace, its client span a child of the request's span.
#[tokio::test]
async fn a_tasks_background_upstream_call_joins_the_trace_of_the_call_that_created_it() {
    use crate::tasks::{Client as TaskClient, EXT, V, task_id};
    let (endpoint, spans) = receiver().await;
    let mut app = traced_conformance_gateway(endpoint).await;
    let (_, token) = signed_in(&app, "trace-task").await;
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": "slow_compute",
            "arguments": { "seconds": 1, "label": "traced" },
            "_meta": {
                "traceparent": format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"),
                "io.modelcontextprotocol/protocolVersion": V,
                "io.modelcontextprotocol/clientInfo": { "name": "trace-test", "version": "1" },
                "io.modelcontextprotocol/clientCapabilities": { "extensions": { EXT: {} } },
            },
        },
    });
    let r = crate::mcp_support::stateless_post(&app, &token, "tools/call", Some("slow_compute"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = r.json().await.unwrap();
    let id = task_id(&created["result"]);
    let tasks = TaskClient {
        app: &app,
        token: token.clone(),
        tasks: true,
    };
    let done = tasks.terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    drop(tasks);
    app.stop().await;

    assert_slow_compute_joined_the_clients_trace(&spans.lock().unwrap());
}

/// The same for a task created at once in a Streamable HTTP session (a
/// client of an earlier revision declaring the tasks extension).
#[tokio::test]
async fn a_session_tasks_background_upstream_call_joins_the_trace_of_its_request() {
    use crate::mcp_support::{McpClient, response_message};
    let (endpoint, spans) = receiver().await;
    let mut app = traced_conformance_gateway(endpoint).await;
    let (_, token) = signed_in(&app, "trace-session-task").await;
    let mut client = McpClient::new(&app, &token);
    let id = client.take_id();
    let init = json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": { "extensions": { crate::tasks::EXT: {} } },
            "clientInfo": { "name": "trace-test", "version": "1" },
        },
    });
    let r = client.post(&init).send().await.unwrap();
    client.session = crate::mcp_support::header(&r, "mcp-session-id");
    let init = response_message(r, id).await;
    client.version = init["result"]["protocolVersion"]
        .as_str()
        .map(str::to_string);
    let r = client
        .post(&crate::mcp_support::initialized_notification())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);

    let created = client
        .request(
            "tools/call",
            json!({
                "name": "slow_compute",
                "arguments": { "seconds": 1, "label": "traced" },
                "_meta": { "traceparent": format!("00-{TRACE_ID}-{CLIENT_SPAN}-01") },
            }),
        )
        .await;
    let task = created["result"]["taskId"]
        .as_str()
        .or_else(|| created["result"]["task"]["taskId"].as_str())
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_string();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let t = client.request("tasks/get", json!({ "taskId": task })).await;
        if t["result"]["status"] == "completed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not completed: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;

    assert_slow_compute_joined_the_clients_trace(&spans.lock().unwrap());
}
