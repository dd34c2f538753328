//! The ceiling of bench/run's workload 1: a bare axum handler that parses
//! the same JSON-RPC `tools/call` request the MCP servers get and answers
//! the same result, with no MCP layer, no session and no authentication. It
//! is what this machine can do for one such request with the same HTTP
//! stack (hyper + axum + tokio) that mcpgate uses.
//!
//! `GET /mcp` is an event stream that sends nothing but a keep-alive
//! comment every 15 s (as rmcp's GET stream does) until the client closes
//! it: workload 5 holds many of them open, to measure what an open event
//! stream costs any server on this stack, the floor under mcpgate's idle
//! sessions.
//!
//! With `--h2c` it serves HTTP/2 with prior knowledge instead (cleartext,
//! no HTTP/1.1): how workload 5 at scale measures the floor of an event
//! stream over HTTP/2, where many streams share a connection (mcpgate
//! speaks HTTP/2 only over TLS, by ALPN; the floor leaves TLS out).
//!
//!     mcpgate-bench-ceiling PORT [--h2c]

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Request {
    jsonrpc: String,
    id: Value,
    method: String,
    #[serde(default)]
    params: Params,
}

#[derive(Deserialize, Default)]
struct Params {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

async fn mcp(Json(req): Json<Request>) -> (StatusCode, Json<Value>) {
    let text = req.params.arguments.get("text").and_then(Value::as_str);
    match (
        req.jsonrpc.as_str(),
        req.method.as_str(),
        req.params.name.as_str(),
        text,
    ) {
        ("2.0", "tools/call", "echo", Some(text)) => (
            StatusCode::OK,
            Json(json!({
                "jsonrpc": "2.0",
                "id": req.id,
                "result": {"content": [{"type": "text", "text": text}], "isError": false},
            })),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "jsonrpc": "2.0",
                "id": req.id,
                "error": {"code": -32601, "message": "only tools/call of echo"},
            })),
        ),
    }
}

/// An event stream with no events: keep-alives only.
async fn idle() -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    Sse::new(futures::stream::pending())
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3409);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = Router::new().route("/mcp", post(mcp).get(idle));
    if std::env::args().any(|a| a == "--h2c") {
        eprintln!("ceiling on 127.0.0.1:{port}, HTTP/2 with prior knowledge");
        return serve_h2c(listener, app).await;
    }
    eprintln!("ceiling on 127.0.0.1:{port}");
    // TCP_NODELAY, as mcpgate sets it.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

/// HTTP/2 with prior knowledge on every connection (hyper's defaults, as
/// mcpgate's TLS connections have: up to 200 streams each).
async fn serve_h2c(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
