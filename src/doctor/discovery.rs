//! Discovery checks: the 401 challenge, protected resource metadata,
//! authorization server metadata.

use serde_json::{Map, Value};
use url::Url;

use super::http::{bearer_params, is_loopback, list_field, same_origin, str_field, well_known};
use super::{AsDoc, Check, CheckResult, Ctx, Findings};

const NO_OAUTH: &str = "Claude: \"no authorization required\" (or it cannot connect) / ChatGPT: \"OAuth not supported\"; the client never starts the OAuth flow";

/// Check 1: `POST <mcp>` without a token must get 401 with a Bearer challenge
/// naming the protected resource metadata on the public host.
pub(super) async fn challenge(ctx: &mut Ctx) -> CheckResult {
    let mut f = Findings::new(Check::Challenge);
    let t = &ctx.t;
    let r = match ctx.http.post_initialize(&t.mcp_url, None).await {
        Ok(r) => r,
        Err(e) => {
            ctx.unreachable = true;
            let fix = if e.contains("without TLS") {
                "build mcpgate with TLS for outgoing requests (reqwest's rustls feature) to check https deployments"
            } else {
                "check the URL and that the server is running and reachable from here"
            };
            f.fail(e).fix(fix);
            return f.finish();
        }
    };
    let prm_hint = format!(
        "answer requests without a token with 401 and WWW-Authenticate: Bearer resource_metadata=\"{}\" (RFC 9728 §5.1)",
        t.prm_suffixed
    );
    match r.status {
        401 => {}
        200..=299 => {
            f.fail(format!(
                "{} answered {} to an initialize request without a token: the endpoint is not protected",
                t.mcp_url, r.status
            ))
            .says(NO_OAUTH)
            .fix(prm_hint);
            return f.finish();
        }
        300..=399 => {
            let to = r.header("location").unwrap_or("?");
            f.fail(format!("{} redirects ({}) to {to}", t.mcp_url, r.status))
                .says("clients POST to the MCP URL and do not follow the redirect (or lose the body and the token on the way)")
                .fix("give clients the final URL, or serve the endpoint without a redirect (a missing or extra trailing slash is the usual cause)");
            return f.finish();
        }
        403 => {
            f.fail(format!("{} answered 403 before any token was sent{}", t.mcp_url, r.error_suffix()))
                .says(NO_OAUTH)
                .fix("a 403 without a token usually means a Host or Origin check refused the request (mcpgate: add the public host to allowed_hosts) or a proxy/firewall blocks it; unauthenticated requests must get 401");
            return f.finish();
        }
        404 | 405 => {
            f.fail(format!("no MCP endpoint at {} ({})", t.mcp_url, r.status))
                .says("clients report that the server cannot be reached or is not an MCP server")
                .fix("check the public URL and --mcp-path (mcpgate serves the endpoint at /v1/ai/mcp)");
            return f.finish();
        }
        s => {
            f.fail(format!(
                "{} answered {s} instead of 401{}",
                t.mcp_url,
                r.error_suffix()
            ))
            .says(NO_OAUTH)
            .fix(prm_hint);
            return f.finish();
        }
    }
    let values = r.headers_all("www-authenticate");
    let Some(params) = values.iter().find_map(|v| bearer_params(v)) else {
        let msg = if values.is_empty() {
            "the 401 has no WWW-Authenticate header".to_string()
        } else {
            format!(
                "the 401's WWW-Authenticate has no Bearer challenge: {}",
                values.join(" | ")
            )
        };
        f.fail(msg).says(NO_OAUTH).fix(prm_hint);
        return f.finish();
    };
    let param = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    ctx.challenge_scope = param("scope").filter(|s| !s.trim().is_empty());
    match param("resource_metadata") {
        None => {
            f.fail("the Bearer challenge has no resource_metadata=\"…\"")
                .says(format!(
                    "{NO_OAUTH} (clients of MCP 2025-06-18 look for the metadata only there)"
                ))
                .fix(prm_hint);
        }
        Some(u) => match Url::parse(&u) {
            Err(_) => {
                f.fail(format!("resource_metadata {u:?} is not an absolute URL"))
                    .says(NO_OAUTH)
                    .fix(prm_hint);
            }
            Ok(url) => {
                if same_origin(&url, &t.base_url) {
                    f.ok(format!(
                        "401 with WWW-Authenticate: Bearer resource_metadata=\"{u}\""
                    ));
                } else {
                    f.fail(format!(
                        "resource_metadata points to {u}, not to the public host {}",
                        t.origin
                    ))
                    .says("clients fetch the metadata from a host they cannot reach or do not trust, and stop before sign-in")
                    .fix(format!(
                        "the server does not know its public URL (behind a reverse proxy?): configure it (mcpgate: public_url = \"{}\")",
                        t.base
                    ));
                }
                ctx.challenge_url = Some(u);
            }
        },
    }
    if let Some(e) = param("error") {
        f.warn(format!(
            "the challenge to a request without any token carries error=\"{e}\""
        ))
        .fix("send no error code when the request had no Authorization header (RFC 6750 §3.1); clients mostly tolerate it");
    }
    f.finish()
}

/// Check 2: The protected resource metadata at the challenge URL and both
/// well-known locations.
pub(super) async fn protected_resource(ctx: &mut Ctx) -> CheckResult {
    let mut f = Findings::new(Check::ProtectedResource);
    let t = ctx.t.clone();
    let mut urls: Vec<(&str, String)> = Vec::new();
    if let Some(u) = &ctx.challenge_url {
        urls.push(("challenge", u.clone()));
    }
    for (label, u) in [("path-suffixed", &t.prm_suffixed), ("root", &t.prm_root)] {
        if !urls.iter().any(|(_, x)| x == u) {
            urls.push((label, u.clone()));
        }
    }
    let says_resource = format!(
        "the MCP SDKs and Claude compare resource with the URL they connect to and stop (\"Protected resource … does not match expected {}\")",
        t.mcp_url
    );
    let mut served = Vec::new();
    let mut missing = Vec::new();
    // Wrong `resource` values and the documents that carry them.
    let mut bad: Vec<(String, Vec<String>)> = Vec::new();
    for (label, url) in &urls {
        let doc = match ctx.http.get_doc(url).await.and_then(|r| {
            if r.status == 200 && !r.content_type().ends_with("json") {
                f.warn(format!(
                    "{url} is served as {:?}, not application/json",
                    r.content_type()
                ))
                .fix("serve the metadata with Content-Type: application/json (RFC 9728 §3.2)");
            }
            r.json_doc()
        }) {
            Ok(d) => d,
            Err(e) => {
                missing.push((*label, format!("{url} {e}")));
                continue;
            }
        };
        served.push(url.clone());
        match str_field(&doc, "resource") {
            None => {
                f.fail(format!("{url} has no resource"))
                    .says(says_resource.clone())
                    .fix(format!("set \"resource\": \"{}\"", t.mcp_url));
            }
            Some(r) => {
                ctx.resources.push((url.clone(), r.to_string()));
                if r != t.mcp_url {
                    match bad.iter_mut().find(|(v, _)| v == r) {
                        Some((_, docs)) => docs.push(url.clone()),
                        None => bad.push((r.to_string(), vec![url.clone()])),
                    }
                }
            }
        }
        let servers = list_field(&doc, "authorization_servers");
        if servers.is_empty() {
            f.fail(format!("{url} lists no authorization_servers"))
                .says("clients cannot find where to sign in")
                .fix(format!(
                    "list your authorization server's issuer, e.g. \"authorization_servers\": [\"{}\"]",
                    t.base
                ));
        }
        for s in servers {
            if !ctx.authorization_servers.contains(&s) {
                ctx.authorization_servers.push(s);
            }
        }
        if ctx.scopes_supported.is_empty() {
            ctx.scopes_supported = list_field(&doc, "scopes_supported");
        }
    }
    for (r, docs) in &bad {
        let why = if r.trim_end_matches('/') == t.mcp_url {
            "has a trailing slash"
        } else {
            "is not the MCP URL"
        };
        f.fail(format!(
            "resource {r:?} {why} ({:?} expected) in {}",
            t.mcp_url,
            docs.join(", ")
        ))
        .says(says_resource.clone())
        .fix(format!(
            "set resource to exactly {} (same scheme and host, no trailing slash; mcpgate derives it from public_url)",
            t.mcp_url
        ));
    }
    for (label, why) in &missing {
        if *label == "challenge" {
            f.fail(format!("the challenge's resource_metadata URL {why}"))
                .says("clients follow resource_metadata and stop when it does not lead to the document")
                .fix(format!("serve the protected resource metadata at {}", t.prm_suffixed));
        }
    }
    let well_known_missing: Vec<&String> = missing
        .iter()
        .filter(|(l, _)| *l != "challenge")
        .map(|(_, w)| w)
        .collect();
    let challenge_failed = missing.iter().any(|(l, _)| *l == "challenge");
    let well_known_served = served
        .iter()
        .any(|u| *u == t.prm_suffixed || *u == t.prm_root);
    if !well_known_served && !challenge_failed {
        f.fail(format!(
            "no document at either well-known location: {}",
            well_known_missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
        ))
        .says("clients that do not read the challenge (ChatGPT fetches the path-suffixed document first) cannot discover the server")
        .fix(format!("serve the document at {} and {}", t.prm_suffixed, t.prm_root));
    } else if well_known_served {
        for w in well_known_missing {
            f.warn(w.clone()).fix(format!(
                "serve the document at both {} and {} (clients probe the path-suffixed one first, then the root one)",
                t.prm_suffixed, t.prm_root
            ));
        }
    }
    if served.is_empty() && !f.has_failures() {
        f.fail("no protected resource metadata found");
    }
    f.ok(format!(
        "resource {}, authorization_servers {:?} ({} document{})",
        t.mcp_url,
        ctx.authorization_servers,
        served.len(),
        if served.len() == 1 { "" } else { "s" }
    ));
    f.finish()
}

/// Check 3: RFC 8414 metadata of every authorization server.
pub(super) async fn authorization_server(ctx: &mut Ctx) -> CheckResult {
    let mut f = Findings::new(Check::AuthorizationServer);
    let mut servers = ctx.authorization_servers.clone();
    if servers.is_empty() {
        // The MCP 2025-03-26 rule: the MCP server's origin is the AS.
        servers.push(ctx.t.origin.clone());
        f.ok("no authorization_servers known: tried the MCP server's origin");
    }
    for server in servers {
        let Ok(url) = Url::parse(&server) else {
            f.fail(format!(
                "authorization_servers entry {server:?} is not a URL"
            ))
            .says("clients cannot find where to sign in")
            .fix("list absolute https URLs in authorization_servers");
            continue;
        };
        let meta_url = well_known(&url, "oauth-authorization-server");
        let doc = match ctx.http.get_doc(&meta_url).await.and_then(|r| r.json_doc()) {
            Ok(d) => d,
            Err(e) => match super::openid::fallback(ctx, &url).await {
                Some((oidc_url, d)) => {
                    f.warn(format!(
                        "{meta_url} {e}; only OpenID discovery at {oidc_url}"
                    ))
                    .says("clients of MCP 2025-06-18 look only for RFC 8414 metadata")
                    .fix(format!("serve RFC 8414 metadata at {meta_url}"));
                    d
                }
                None => {
                    f.fail(format!("{meta_url} {e}"))
                        .says("clients cannot find the authorization and token endpoints and stop before sign-in")
                        .fix(format!(
                            "serve RFC 8414 metadata at {meta_url} (for an issuer with a path, /.well-known/oauth-authorization-server goes between host and path)"
                        ));
                    continue;
                }
            },
        };
        validate_as(&mut f, &server, &doc);
        ctx.as_docs.push(AsDoc {
            server,
            url: meta_url,
            doc,
        });
    }
    f.finish()
}

fn validate_as(f: &mut Findings, server: &str, doc: &Map<String, Value>) {
    match str_field(doc, "issuer") {
        Some(i) if i == server => {}
        other => {
            let why = match other {
                None => "no issuer".to_string(),
                Some(i) if i.trim_end_matches('/') == server.trim_end_matches('/') => {
                    format!("issuer {i:?} differs from {server:?} by a trailing slash")
                }
                Some(i) => format!("issuer {i:?} is not {server:?}"),
            };
            f.fail(format!("{why} (the authorization_servers entry)"))
                .says("clients must discard metadata whose issuer is not exactly the URL it was fetched for (RFC 8414 §3.3); the MCP SDKs and Claude stop before sign-in")
                .fix(format!(
                    "make issuer and the authorization_servers entry the same string, character for character (e.g. \"{}\"; mcpgate derives both from public_url)",
                    server.trim_end_matches('/')
                ));
        }
    }
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
    ] {
        let Some(v) = str_field(doc, key) else {
            if key == "registration_endpoint" {
                let cimd = doc
                    .get("client_id_metadata_document_supported")
                    .and_then(Value::as_bool)
                    == Some(true);
                f.warn(format!(
                    "no registration_endpoint{}",
                    if cimd { " (client ID metadata documents only)" } else { "" }
                ))
                .says("ChatGPT and Claude register themselves with Dynamic Client Registration; without it users must enter a client ID by hand")
                .fix("offer RFC 7591 registration and advertise registration_endpoint");
            } else {
                f.fail(format!("no {key}"))
                    .says("clients cannot run the authorization code flow")
                    .fix(format!("advertise {key}"));
            }
            continue;
        };
        match Url::parse(v) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
            Ok(u) if u.scheme() == "http" => {
                f.fail(format!("{key} {v} is plain http"))
                    .says("clients refuse OAuth endpoints without https outside localhost (OAuth 2.1 §1.5)")
                    .fix("serve every OAuth endpoint over https (mcpgate: public_url = \"https://…\")");
            }
            _ => {
                f.fail(format!("{key} {v:?} is not an http(s) URL"))
                    .says("clients cannot run the authorization code flow")
                    .fix(format!("advertise an absolute https URL as {key}"));
            }
        }
    }
    let pkce = list_field(doc, "code_challenge_methods_supported");
    if !pkce.iter().any(|m| m == "S256") {
        let why = if doc.contains_key("code_challenge_methods_supported") {
            format!("code_challenge_methods_supported {pkce:?} lacks S256")
        } else {
            "no code_challenge_methods_supported".to_string()
        };
        f.fail(why)
            .says("Claude and the MCP SDKs refuse to continue: MCP clients must verify PKCE S256 support from the metadata")
            .fix("support PKCE and advertise \"code_challenge_methods_supported\": [\"S256\"]");
    }
    if !list_field(doc, "response_types_supported")
        .iter()
        .any(|m| m == "code")
    {
        f.fail("response_types_supported does not contain \"code\"")
            .says("clients find no authorization code flow")
            .fix("advertise \"response_types_supported\": [\"code\"] (RFC 8414 §2: required)");
    }
    let methods = list_field(doc, "token_endpoint_auth_methods_supported");
    if !methods.iter().any(|m| m == "none") {
        f.fail(format!(
            "token_endpoint_auth_methods_supported {methods:?} lacks \"none\"{}",
            if doc.contains_key("token_endpoint_auth_methods_supported") { "" } else { " (absent means client_secret_basic only)" }
        ))
        .says("public clients (MCP Inspector, Claude Code, mcp-remote) cannot redeem their codes")
        .fix("accept public clients with PKCE and advertise \"none\" in token_endpoint_auth_methods_supported");
    }
    if !methods.iter().any(|m| m == "client_secret_post") {
        f.warn("token_endpoint_auth_methods_supported lacks \"client_secret_post\"")
            .says("Claude registers with client_secret_post and authenticates only that way")
            .fix("accept client_secret_post at the token endpoint and advertise it");
    }
    f.ok(format!(
        "issuer {server}: S256, {}, token auth {:?}",
        str_field(doc, "registration_endpoint").map_or("no registration".to_string(), |r| format!(
            "registration at {r}"
        )),
        methods
    ));
}
