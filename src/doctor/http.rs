//! The doctor's HTTP client and the small parsers its checks share.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder};
use serde_json::{Map, Value, json};
use url::{Host, Url};

use crate::outbound::{Outbound, Redirects};

const USER_AGENT: &str = concat!("mcpgate-doctor/", env!("CARGO_PKG_VERSION"));

/// Two clients, both built by [`crate::outbound`]: documents are fetched
/// following same-origin redirects (as browsers and SDK `fetch` do, but
/// never to another origin); everything else sees redirects as they are.
pub(super) struct Http {
    follow: reqwest::Client,
    manual: reqwest::Client,
}

/// A response, read in full.
pub(super) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Http {
    pub fn new(
        timeout: Duration,
        outbound: &crate::outbound::OutboundSettings,
    ) -> Result<Self, String> {
        let build = |redirects| {
            Outbound::request_response(redirects, timeout)
                .user_agent(USER_AGENT)
                .settings(outbound)
                .build()
        };
        Ok(Self {
            follow: build(Redirects::SameOriginDocuments)?,
            manual: build(Redirects::Never)?,
        })
    }

    /// GET a document (JSON expected), following redirects.
    pub async fn get_doc(&self, url: &str) -> Result<Reply, String> {
        send(
            self.follow
                .get(url)
                .header(header::ACCEPT, "application/json"),
            url,
        )
        .await
    }

    /// GET without following redirects.
    pub async fn get(&self, url: &str) -> Result<Reply, String> {
        send(self.manual.get(url), url).await
    }

    /// POST a JSON body without following redirects.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Reply, String> {
        send(self.manual.post(url).json(body), url).await
    }

    /// The first message a client sends: an MCP `initialize` POST with no token.
    pub async fn post_initialize(&self, url: &str, origin: Option<&str>) -> Result<Reply, String> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "mcpgate-doctor", "version": env!("CARGO_PKG_VERSION")},
            },
        });
        let mut req = self
            .manual
            .post(url)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(&body);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        send(req, url).await
    }

    /// A CORS preflight as a browser sends it.
    pub async fn preflight(
        &self,
        url: &str,
        origin: &str,
        method: &str,
        headers: &str,
    ) -> Result<Reply, String> {
        let mut req = self
            .manual
            .request(Method::OPTIONS, url)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method);
        if !headers.is_empty() {
            req = req.header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers);
        }
        send(req, url).await
    }
}

async fn send(req: RequestBuilder, url: &str) -> Result<Reply, String> {
    let resp = req.send().await.map_err(|e| describe(&e, url))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.map_err(|e| describe(&e, url))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A transport error in one phrase.
fn describe(e: &reqwest::Error, url: &str) -> String {
    if e.is_timeout() {
        return format!("no answer from {url} (timed out)");
    }
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    if url.starts_with("https:") && chain.iter().any(|c| c.contains("scheme is not http")) {
        return format!(
            "cannot request {url}: this mcpgate binary was built without TLS for outgoing requests"
        );
    }
    let last = chain.last().cloned().unwrap_or_default();
    format!("cannot reach {url}: {last}")
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status)
    }

    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// The body as a JSON object.
    pub fn object(&self) -> Option<Map<String, Value>> {
        match serde_json::from_str(&self.body) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    /// A 200 JSON object, or why not.
    pub fn json_doc(&self) -> Result<Map<String, Value>, String> {
        if self.status != 200 {
            return Err(format!("answers {}{}", self.status, self.error_suffix()));
        }
        self.object().ok_or_else(|| {
            format!(
                "answers 200 with a body that is not a JSON object (content type {:?})",
                self.content_type()
            )
        })
    }

    /// `: error: description` from an OAuth-style JSON error body, or a
    /// short excerpt of any other body.
    pub fn error_suffix(&self) -> String {
        if let Some(o) = self.object() {
            let error = o.get("error").and_then(Value::as_str);
            let desc = o.get("error_description").and_then(Value::as_str);
            return match (error, desc) {
                (Some(e), Some(d)) => format!(" ({e}: {d})"),
                (Some(e), None) => format!(" ({e})"),
                _ => String::new(),
            };
        }
        let text: String = self.body.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            String::new()
        } else {
            let cut: String = text.chars().take(100).collect();
            let more = if cut.len() < text.len() { "…" } else { "" };
            format!(" ({cut}{more})")
        }
    }
}

/// A string field of a JSON object.
pub(super) fn str_field<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

/// A list-of-strings field (absent or malformed gives an empty list).
pub(super) fn list_field(doc: &Map<String, Value>, key: &str) -> Vec<String> {
    doc.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 8414 §3.1 / RFC 9728 §3.1: `/.well-known/<suffix>` inserted
/// between the host and the path (a trailing slash removed first).
pub(super) fn well_known(url: &Url, suffix: &str) -> String {
    format!(
        "{}/.well-known/{suffix}{}",
        url.origin().ascii_serialization(),
        url.path().trim_end_matches('/')
    )
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// The auth-params of the first `Bearer` challenge in a `WWW-Authenticate`
/// value (RFC 9110 §11.6.1), keys lowercased; `None` without one.
pub(super) fn bearer_params(value: &str) -> Option<Vec<(String, String)>> {
    let start = bearer_start(value)?;
    let mut rest = &value[start..];
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        // `Basic realm=...`: the next challenge starts.
        if key.is_empty() || key.contains([' ', '\t', ',', '"']) {
            break;
        }
        rest = rest[eq + 1..].trim_start();
        let value = if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut end = q.len();
            let mut escaped = false;
            for (i, c) in q.char_indices() {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = i + 1;
                    break;
                } else {
                    out.push(c);
                }
            }
            rest = &q[end..];
            out
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let v = rest[..end].trim().to_string();
            rest = &rest[end..];
            v
        };
        params.push((key.to_ascii_lowercase(), value));
    }
    Some(params)
}

/// Where the parameters of the first `Bearer` challenge start: after a
/// `Bearer` that begins the value or follows a comma, outside any
/// quoted-string (RFC 9110 §5.6.4), and ends at a space, comma or the end.
fn bearer_start(value: &str) -> Option<usize> {
    let lower = value.to_ascii_lowercase();
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in lower.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            quoted = true;
            continue;
        }
        if !lower[i..].starts_with("bearer") {
            continue;
        }
        let before = lower[..i].trim_end();
        let after = &lower[i + 6..];
        let starts = before.is_empty() || before.ends_with(',');
        let ends = after.is_empty() || after.starts_with([' ', '\t', ',']);
        if starts && ends {
            return Some(i + 6);
        }
    }
    None
}

/// Whether a comma-separated header value lists `name` (case-insensitive),
/// or `*` when `star_counts`.
pub(super) fn lists(value: Option<&str>, name: &str, star_counts: bool) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|x| x.eq_ignore_ascii_case(name) || (star_counts && x == "*"))
    })
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn bearer_challenges_are_parsed() {
        let p = bearer_params(
            r#"Bearer resource_metadata="https://x/.well-known/oauth-protected-resource/v1/ai/mcp", scope="mcp""#,
        )
        .unwrap();
        assert_eq!(
            get(&p, "resource_metadata"),
            Some("https://x/.well-known/oauth-protected-resource/v1/ai/mcp")
        );
        assert_eq!(get(&p, "scope"), Some("mcp"));

        let p = bearer_params(
            r#"Basic realm="bearer", Bearer error=invalid_token, scope="a \"b\"", Basic realm="x""#,
        )
        .unwrap();
        assert_eq!(get(&p, "error"), Some("invalid_token"));
        assert_eq!(get(&p, "scope"), Some("a \"b\""));
        assert_eq!(get(&p, "realm"), None);

        assert!(bearer_params(r#"Basic realm="x""#).is_none());
        assert_eq!(bearer_params("Bearer").unwrap(), vec![]);
    }

    /// Found by the property tests: "bearer" inside another challenge's
    /// quoted string was taken for the Bearer challenge.
    #[test]
    fn bearer_inside_a_quoted_string_is_not_a_challenge() {
        assert_eq!(bearer_params(r#"Basic realm="bearer, ,bearer ""#), None);
        assert_eq!(
            bearer_params(r#"Basic realm="bearer, ,bearer ", BeARer A=~"#),
            Some(vec![("a".to_string(), "~".to_string())])
        );
    }

    #[test]
    fn well_known_urls_insert_the_suffix_before_the_path() {
        let u = Url::parse("https://a.example/tenant/").unwrap();
        assert_eq!(
            well_known(&u, "oauth-authorization-server"),
            "https://a.example/.well-known/oauth-authorization-server/tenant"
        );
        let u = Url::parse("https://a.example").unwrap();
        assert_eq!(
            well_known(&u, "oauth-authorization-server"),
            "https://a.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://localhost:1", true),
            ("http://127.0.0.2", true),
            ("http://[::1]:3", true),
            ("http://app.localhost", true),
            ("http://mcp.example.com", false),
            ("http://10.0.0.1", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
