//! Hostile input on every public route (issue #15, "Proof"): bad UTF-8 in
//! bodies, paths and headers, huge headers, deeply nested JSON, wrong
//! content types, truncated bodies and heads, random bytes (a seeded
//! generator, a bounded number of requests). Every answer is below 500
//! (4xx for malformed input; a valid GET of a public document may be a
//! 2xx), nothing panics, nothing is logged at ERROR, and a real flow works
//! afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::federation_support::Logs;
use crate::helpers::{TestApp, spawn_app_with};
use crate::mcp_support::{McpClient, bearer, signed_in};

/// xorshift64*: a small seeded generator, so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Every route the server answers (src/http/mod.rs, src/mcp/mod.rs), with
/// the methods it takes.
fn routes(app: &TestApp) -> Vec<(&'static str, String)> {
    let u = &app.urls;
    let mut r: Vec<(&'static str, String)> = vec![
        ("GET", u.as_metadata_path.clone()),
        ("GET", u.resource_metadata_path.clone()),
        ("GET", u.sse_resource_metadata_path.clone()),
        ("GET", "/.well-known/oauth-protected-resource".into()),
        ("GET", "/.well-known/openid-configuration".into()),
        ("GET", "/.well-known/mcp/manifest.json".into()),
        ("GET", "/healthz".into()),
        ("GET", "/assets/mcpgate.css".into()),
        ("GET", "/oauth/callback".into()),
        ("GET", "/no/such/route".into()),
        ("DELETE", "/v1/ai/mcp".into()),
        ("GET", "/v1/ai/mcp".into()),
        ("GET", "/sse".into()),
        ("GET", "/v1/ai/mcp/sse".into()),
        ("GET", "/tools".into()),
        ("PUT", "/v1/oauth/token".into()),
    ];
    for path in ["/v1/oauth/authorize", "/authorize"] {
        r.push(("GET", path.into()));
        r.push(("POST", path.into()));
    }
    for path in [
        "/v1/oauth/token",
        "/token",
        "/v1/oauth/revoke",
        "/revoke",
        "/v1/oauth/register",
        "/register",
        "/v1/ai/mcp",
        "/messages",
        "/messages/?session_id=0123456789abcdef0123456789abcdef",
        "/v1/ai/mcp/messages/?session_id=0123456789abcdef0123456789abcdef",
        "/tools/echo",
        "/tools/no-such-tool",
    ] {
        r.push(("POST", path.into()));
    }
    r
}

/// One hostile request: the raw bytes, and whether the server may close
/// the connection without answering (a head that never ends or is too big).
struct Case {
    what: String,
    bytes: Vec<u8>,
    may_close: bool,
}

fn request(method: &str, path: &str, headers: &[(&str, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n")
        .into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    }) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn cases(app: &TestApp, token: &str, rng: &mut Rng) -> Vec<Case> {
    let nested_small = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let nested_objects = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let bad_utf8: &[u8] = b"\xff\xfe\xc3\x28grant_type=\xe2\x82&code=\xf0\x28\x8c\x28";
    let mcp_accept = b"application/json, text/event-stream".to_vec();
    let auth = bearer(token).into_bytes();
    let mut out = Vec::new();
    for (method, path) in routes(app) {
        let mut add = |what: &str, headers: Vec<(&str, Vec<u8>)>, body: Vec<u8>| {
            out.push(Case {
                what: format!("{method} {path}: {what}"),
                bytes: request(method, &path, &headers, &body),
                may_close: false,
            });
        };
        for with_token in [false, true] {
            let mut h: Vec<(&str, Vec<u8>)> = vec![("Accept", mcp_accept.clone())];
            if with_token {
                h.push(("Authorization", auth.clone()));
            }
            let with = |extra: &[(&'static str, &[u8])]| {
                let mut h = h.clone();
                h.extend(extra.iter().map(|(k, v)| (*k, v.to_vec())));
                h
            };
            let len = rng.below(2048);
            add(
                "random bytes as JSON",
                with(&[("Content-Type", b"application/json")]),
                rng.bytes(len),
            );
            let len = rng.below(2048);
            add(
                "random bytes as a form",
                with(&[("Content-Type", b"application/x-www-form-urlencoded")]),
                rng.bytes(len),
            );
            add(
                "bad UTF-8 form",
                with(&[("Content-Type", b"application/x-www-form-urlencoded")]),
                bad_utf8.to_vec(),
            );
            add(
                "bad UTF-8 JSON",
                with(&[("Content-Type", b"application/json")]),
                bad_utf8.to_vec(),
            );
            add(
                "nested arrays",
                with(&[("Content-Type", b"application/json")]),
                nested_small.clone().into_bytes(),
            );
            add(
                "nested objects",
                with(&[("Content-Type", b"application/json")]),
                nested_objects.clone().into_bytes(),
            );
            add(
                "a JSON-RPC message as text/plain",
                with(&[("Content-Type", b"text/plain")]),
                br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec(),
            );
            add(
                "wrong types in a JSON-RPC message",
                with(&[("Content-Type", b"application/json")]),
                br#"{"jsonrpc":2,"id":{"a":[]},"method":7,"params":"x"}"#.to_vec(),
            );
            add(
                "a JSON-RPC batch",
                with(&[("Content-Type", b"application/json")]),
                br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},1,null]"#.to_vec(),
            );
            add(
                "registration with wrong types",
                with(&[("Content-Type", b"application/json")]),
                br#"{"redirect_uris":"x","client_name":[1],"grant_types":{},"token_endpoint_auth_method":7}"#.to_vec(),
            );
            add("no content type", h.clone(), rng.bytes(64));
            add(
                "a content type of garbage",
                with(&[("Content-Type", b"\xff;;=;charset=\x01")]),
                b"a=b".to_vec(),
            );
            add(
                "multipart without a boundary",
                with(&[("Content-Type", b"multipart/form-data")]),
                b"--x\r\n".to_vec(),
            );
            add(
                "a truncated body",
                with(&[
                    ("Content-Type", b"application/json"),
                    ("Content-Length", b"1000"),
                ]),
                b"{\"jsonrpc\":\"2.0\",".to_vec(),
            );
            add(
                "bad UTF-8 in headers",
                with(&[
                    ("Mcp-Session-Id", b"\xff\xfe\x00"),
                    ("Mcp-Protocol-Version", b"\xc3\x28"),
                    ("Cookie", b"mcpgate_session=\xff\xfe; a=\x80"),
                    ("Origin", b"http://\xff"),
                    ("Last-Event-Id", b"\xff"),
                ]),
                Vec::new(),
            );
            add(
                "a session id and versions of garbage",
                with(&[
                    ("Content-Type", b"application/json"),
                    ("Mcp-Session-Id", b"../../etc/passwd"),
                    ("Mcp-Protocol-Version", b"9999-99-99"),
                    ("Mcp-Method", b"tools/call"),
                    ("Mcp-Name", b"\x01\x02"),
                ]),
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#
                    .to_vec(),
            );
            add(
                "an Origin that is not allowed",
                with(&[("Origin", b"null")]),
                Vec::new(),
            );
            add(
                "a malformed chunked body",
                with(&[
                    ("Content-Type", b"application/json"),
                    ("Transfer-Encoding", b"chunked"),
                ]),
                b"zz\r\n{}\r\n0\r\n\r\n".to_vec(),
            );
            add(
                "a chunked body cut short",
                with(&[
                    ("Content-Type", b"application/json"),
                    ("Transfer-Encoding", b"chunked"),
                ]),
                b"ff\r\n{\"jsonrpc\"".to_vec(),
            );
        }
        let mut add_raw = |what: &str, bytes: Vec<u8>, may_close: bool| {
            out.push(Case {
                what: format!("{method} {path}: {what}"),
                bytes,
                may_close,
            });
        };
        add_raw(
            "authorization schemes of garbage",
            request(
                method,
                &path,
                &[
                    ("Authorization", b"Bearer".to_vec()),
                    (
                        "Authorization",
                        format!("Bearer {}", "A".repeat(6000)).into_bytes(),
                    ),
                    ("Authorization", b"Basic !!!\xff".to_vec()),
                ],
                b"",
            ),
            false,
        );
        add_raw(
            "a huge header",
            request(method, &path, &[("X-Big", vec![b'a'; 200_000])], b""),
            true,
        );
        let many: Vec<(&str, Vec<u8>)> = (0..300).map(|_| ("X-Many", b"1".to_vec())).collect();
        add_raw(
            "three hundred headers",
            request(method, &path, &many, b""),
            true,
        );
        let query = format!(
            "{path}{}%ff%fe=%zz&&&=;&redirect_uri=%00&state={}",
            if path.contains('?') { "&" } else { "?" },
            "s".repeat(4000)
        );
        add_raw(
            "a query of garbage",
            request(method, &query, &[], b""),
            false,
        );
        add_raw(
            "a truncated head",
            format!("{method} {path} HTTP/1.1\r\nHost: loc").into_bytes(),
            true,
        );
    }
    // Request lines of garbage.
    for i in 0..20 {
        let len = 1 + rng.below(300);
        let mut bytes = rng.bytes(len);
        bytes.extend_from_slice(b"\r\n\r\n");
        out.push(Case {
            what: format!("random request line {i}"),
            bytes,
            may_close: true,
        });
    }
    // A chunked body past the 4 MiB limit of the MCP routes.
    let mut big = Vec::new();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..5 {
        big.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        big.extend_from_slice(&chunk);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"0\r\n\r\n");
    for path in ["/v1/ai/mcp", "/tools/echo"] {
        out.push(Case {
            what: format!("POST {path}: a chunked body past the limit"),
            bytes: request(
                "POST",
                path,
                &[
                    ("Authorization", auth.clone()),
                    ("Accept", mcp_accept.clone()),
                    ("Content-Type", b"application/json".to_vec()),
                    ("Transfer-Encoding", b"chunked".to_vec()),
                ],
                &big,
            ),
            may_close: false,
        });
    }
    out.push(Case {
        what: "a path with bad UTF-8".into(),
        bytes: b"GET /v1/oauth/\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        may_close: true,
    });
    out
}

/// Sends the case, reads until the server closes; returns the status, if
/// the server answered.
async fn send(app: &TestApp, case: &Case) -> Option<u16> {
    let mut tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    // The server may answer and close before taking everything.
    let _ = tcp.write_all(&case.bytes).await;
    // Until the end of the answer's head (a stream goes on), or the close.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
}

#[tokio::test]
async fn hostile_input_on_every_route_gets_no_5xx_no_panic_and_no_error_log() {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let me = std::thread::current().name().map(str::to_string);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name().map(str::to_string) == me {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));

    let logs = Logs::capture();
    let app = spawn_app_with(|s| {
        s.header_read_timeout = Duration::from_secs(1);
        s.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, token) = signed_in(&app, "alice").await;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let cases = cases(&app, &token, &mut rng);
    assert!(cases.len() > 500, "{}", cases.len());

    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let answers: Vec<Option<u16>> = futures::stream::iter(cases.iter().map(|c| send(&app, c)))
        .buffered(256)
        .collect()
        .await;
    for (case, status) in cases.iter().zip(answers) {
        match status {
            Some(s) => {
                *statuses.entry(s).or_default() += 1;
                // Only a GET (of a public document) may succeed.
                if s < 400 && !case.what.starts_with("GET ") {
                    failures.push(format!("{s} for {}", case.what));
                }
                if s >= 500 {
                    failures.push(format!("{s} for {}", case.what));
                }
            }
            None if case.may_close => {}
            None => failures.push(format!("no answer for {}", case.what)),
        }
    }
    eprintln!("{} hostile requests; statuses: {statuses:?}", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        statuses.range(400..500).map(|(_, n)| n).sum::<usize>() > cases.len() / 2,
        "{statuses:?}"
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic while serving");

    // A real client is still served.
    app.add_user("bob").await;
    let (_, t) = app.full_flow("bob").await;
    let mut c = McpClient::new(&app, t["access_token"].as_str().unwrap());
    c.initialize("2025-06-18").await;
    let m = c.call_tool("echo", json!({"text": "fine"})).await;
    assert_eq!(m["result"]["content"][0]["text"], "fine", "{m}");

    let text = logs.text();
    assert!(!text.contains("ERROR"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
