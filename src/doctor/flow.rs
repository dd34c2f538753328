//! Checks of what happens after discovery: CORS for browser clients,
//! client registration, the authorization endpoint, the manifest.

use serde_json::json;
use url::Url;

use super::http::{lists, str_field};
use super::{Check, CheckResult, Ctx, Findings};

/// The redirect URI of the test clients: loopback, port 1 (nothing listens).
const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";
/// A redirect URI that was never registered.
const WRONG_REDIRECT_URI: &str = "http://127.0.0.1:1/mcpgate-doctor-unregistered";
/// RFC 7636 appendix B's challenge; the code is never redeemed.
const CODE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

const CORS_SAYS: &str =
    "MCP Inspector and other browser-based clients fail with a CORS error (\"Failed to fetch\")";

/// Check 5: CORS preflights from MCP Inspector's origin, and a readable 401.
pub(super) async fn cors(ctx: &Ctx) -> CheckResult {
    let mut f = Findings::new(Check::Cors);
    let origin = ctx.opts.origin.as_str();
    let prm = ctx
        .challenge_url
        .clone()
        .unwrap_or_else(|| ctx.t.prm_suffixed.clone());
    // (what, URL, method, request headers, whether a missing header fails)
    let mut targets: Vec<(&str, String, &str, &str, bool)> = vec![(
        "protected resource metadata",
        prm,
        "GET",
        "mcp-protocol-version",
        false,
    )];
    if let Some(d) = ctx.as_docs.first() {
        targets.push((
            "authorization server metadata",
            d.url.clone(),
            "GET",
            "mcp-protocol-version",
            false,
        ));
    }
    if let Some(u) = ctx.as_field("token_endpoint") {
        targets.push(("token endpoint", u, "POST", "", true));
    }
    if let Some(u) = ctx.as_field("registration_endpoint") {
        targets.push(("registration endpoint", u, "POST", "content-type", true));
    }
    targets.push((
        "MCP endpoint",
        ctx.t.mcp_url.clone(),
        "POST",
        "authorization, content-type, mcp-protocol-version",
        true,
    ));
    let fix = "answer OPTIONS preflights from any origin with Access-Control-Allow-Origin: * and Access-Control-Allow-Headers: authorization, content-type, mcp-protocol-version on the metadata documents and the token, registration and MCP endpoints (never on /authorize)";
    // Endpoints whose preflight got no Access-Control-Allow-Origin at all.
    let mut without = Vec::new();
    for (what, url, method, headers, strict) in &targets {
        let r = match ctx.http.preflight(url, origin, method, headers).await {
            Ok(r) => r,
            Err(e) => {
                f.fail(format!("{what}: {e}"));
                continue;
            }
        };
        let acao = r.header("access-control-allow-origin");
        match acao {
            None => {
                without.push(format!("{what} {url} ({})", r.status));
                continue;
            }
            Some(a) if a != "*" && a != origin => {
                f.fail(format!(
                    "{what}: Access-Control-Allow-Origin is {a:?}, not {origin}"
                ))
                .says(CORS_SAYS)
                .fix(fix);
                continue;
            }
            Some(_) if !(200..300).contains(&r.status) => {
                f.fail(format!("{what}: the preflight gets {}", r.status))
                    .says(CORS_SAYS)
                    .fix(fix);
                continue;
            }
            Some(_) => {}
        }
        let allowed = r.header("access-control-allow-headers");
        let missing: Vec<&str> = headers
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty() && !lists(allowed, h, *h != "authorization"))
            .collect();
        if missing.is_empty() {
            continue;
        }
        if *strict {
            f.fail(format!(
                "{what}: the preflight does not allow the headers {}",
                missing.join(", ")
            ))
            .says(CORS_SAYS)
            .fix(fix);
        } else {
            f.warn(format!(
                "{what}: the preflight does not allow the headers {}",
                missing.join(", ")
            ))
            .says("the MCP SDK retries without MCP-Protocol-Version; stricter browser clients fail")
            .fix(fix);
        }
    }
    if !without.is_empty() {
        f.fail(format!(
            "preflights from {origin} get no Access-Control-Allow-Origin: {}",
            without.join(", ")
        ))
        .says(CORS_SAYS)
        .fix(fix);
    }
    // The 401 itself must be readable by the page.
    match ctx.http.post_initialize(&ctx.t.mcp_url, Some(origin)).await {
        Err(e) => {
            f.fail(format!("MCP endpoint with Origin {origin}: {e}"));
        }
        Ok(r) if r.status == 403 => {
            f.warn(format!(
                "the MCP endpoint refuses requests from Origin {origin} (403): good DNS-rebinding protection, but browser clients on that origin cannot connect"
            ))
            .says("MCP Inspector in the browser cannot connect")
            .fix(format!(
                "to use MCP Inspector, allow its origin (mcpgate: allowed_origins = [\"{origin}\"])"
            ));
        }
        Ok(r) if r.status == 401 => {
            let expose = r.header("access-control-expose-headers");
            if r.header("access-control-allow-origin").is_none() {
                f.fail("the MCP endpoint's 401 has no Access-Control-Allow-Origin")
                    .says(CORS_SAYS)
                    .fix("add CORS headers to every response of the MCP endpoint, 401s included");
            } else if !lists(expose, "www-authenticate", true) {
                f.fail("the MCP endpoint's 401 does not expose WWW-Authenticate (Access-Control-Expose-Headers)")
                    .says("MCP Inspector cannot read the challenge and never starts OAuth")
                    .fix("add Access-Control-Expose-Headers: WWW-Authenticate, Mcp-Session-Id to the MCP endpoint's responses, 401s included");
            } else if !lists(expose, "mcp-session-id", true) {
                f.warn("the MCP endpoint does not expose Mcp-Session-Id")
                    .says("browser clients cannot keep a Streamable HTTP session")
                    .fix("add Mcp-Session-Id to Access-Control-Expose-Headers");
            }
        }
        Ok(r) => f.ok(format!(
            "(the MCP endpoint answered {} with Origin set)",
            r.status
        )),
    }
    f.ok(format!(
        "preflights from {origin} allowed on {} endpoints; the 401 exposes WWW-Authenticate",
        targets.len()
    ));
    f.finish()
}

/// Check 6: RFC 7591 registration of a public and a `client_secret_post` client.
pub(super) async fn registration(ctx: &mut Ctx) -> CheckResult {
    let f = Findings::new(Check::Registration);
    if !ctx.opts.register {
        return f.skip("--no-register");
    }
    let Some(endpoint) = ctx.as_field("registration_endpoint") else {
        return f.skip("no registration_endpoint advertised");
    };
    let mut f = f;
    let mut registered = Vec::new();
    let body = |method: &str| {
        json!({
            "client_name": "mcpgate doctor (test client, never used)",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
        })
    };
    // The public client.
    match ctx.http.post_json(&endpoint, &body("none")).await {
        Err(e) => {
            f.fail(e);
        }
        Ok(r) if !(200..300).contains(&r.status) => {
            f.fail(format!("a public client (token_endpoint_auth_method none) was refused: {}{}", r.status, r.error_suffix()))
                .says("clients that register as public clients (MCP Inspector, Claude Code, mcp-remote) cannot connect")
                .fix(format!("accept token_endpoint_auth_method \"none\" with loopback redirect URIs such as {REDIRECT_URI} (RFC 8252)"));
        }
        Ok(r) => {
            let doc = r.object().unwrap_or_default();
            if r.status != 201 {
                f.warn(format!(
                    "registration answered {}, not 201 Created",
                    r.status
                ))
                .fix("answer a successful registration with 201 (RFC 7591 §3.2.1)");
            }
            match str_field(&doc, "client_id") {
                None => {
                    f.fail("the registration response has no client_id")
                        .says("clients cannot go on")
                        .fix("return client_id (RFC 7591 §3.2.1)");
                }
                Some(id) => {
                    registered.push(id.to_string());
                    ctx.public_client = Some(id.to_string());
                }
            }
            match str_field(&doc, "token_endpoint_auth_method") {
                Some("none") => {}
                None => {
                    f.warn("the response does not echo token_endpoint_auth_method")
                        .says("ChatGPT checks that the registration response echoes the method it asked for")
                        .fix("return every registered metadata value (RFC 7591 §3.2.1)");
                }
                Some(m) => {
                    f.fail(format!("asked for none, registered as {m:?}"))
                        .says("ChatGPT checks that the response echoes the method it asked for")
                        .fix("register the method the client asked for");
                }
            }
            if str_field(&doc, "client_secret").is_some_and(|s| !s.is_empty()) {
                f.fail("a client_secret was returned for a public (none) client")
                    .says("Claude Desktop fails when a secret is returned for a none registration")
                    .fix("return no client_secret for token_endpoint_auth_method none");
            }
        }
    }
    // The client_secret_post client (Claude's choice).
    match ctx
        .http
        .post_json(&endpoint, &body("client_secret_post"))
        .await
    {
        Err(e) => {
            f.fail(e);
        }
        Ok(r) if !(200..300).contains(&r.status) => {
            f.warn(format!("a client_secret_post registration was refused: {}{}", r.status, r.error_suffix()))
                .says("Claude registers with client_secret_post; a server that refuses it cannot be used from Claude")
                .fix("accept client_secret_post registrations (issue a client_secret)");
        }
        Ok(r) => {
            let doc = r.object().unwrap_or_default();
            if let Some(id) = str_field(&doc, "client_id") {
                registered.push(id.to_string());
            }
            match str_field(&doc, "token_endpoint_auth_method") {
                Some("client_secret_post") => {}
                other => {
                    f.fail(format!("asked for client_secret_post, the response says {other:?}"))
                        .says("ChatGPT checks the echo; Claude then authenticates with client_secret_post only and fails")
                        .fix("register and echo the method the client asked for");
                }
            }
            if str_field(&doc, "client_secret").is_none_or(|s| s.is_empty()) {
                f.fail("no client_secret for a client_secret_post client")
                    .says("Claude cannot authenticate at the token endpoint")
                    .fix("return a client_secret for confidential registrations");
            }
        }
    }
    let n = registered.len();
    f.ok(format!(
        "registered {n} test client{} ({}); they expire unused",
        if n == 1 { "" } else { "s" },
        registered.join(", ")
    ));
    let mut r = f.finish();
    if n > 0 && r.status != super::Status::Pass {
        r.detail.push_str(&format!(
            " (registered {n} test client{}; they expire unused)",
            if n == 1 { "" } else { "s" }
        ));
    }
    r
}

/// Check 7: The authorization endpoint shows a page (or redirects with 302/303)
/// for a valid request, and never redirects to an unregistered URI.
pub(super) async fn authorize(ctx: &Ctx) -> CheckResult {
    let f = Findings::new(Check::Authorize);
    if !ctx.opts.register {
        return f.skip("--no-register (no test client)");
    }
    let Some(client_id) = &ctx.public_client else {
        return f.skip("no test client was registered");
    };
    let Some(endpoint) = ctx.as_field("authorization_endpoint") else {
        return f.skip("no authorization_endpoint");
    };
    let Ok(url) = Url::parse(&endpoint) else {
        return f.skip("the authorization_endpoint is not a URL");
    };
    let mut f = f;
    let scope = ctx
        .challenge_scope
        .clone()
        .unwrap_or_else(|| ctx.scopes_supported.join(" "));
    let request = |redirect: &str| {
        let mut u = url.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect)
                .append_pair("state", "mcpgate-doctor")
                .append_pair("code_challenge", CODE_CHALLENGE)
                .append_pair("code_challenge_method", "S256")
                .append_pair("resource", &ctx.t.mcp_url);
            if !scope.is_empty() {
                q.append_pair("scope", &scope);
            }
        }
        u.to_string()
    };
    match ctx.http.get(&request(REDIRECT_URI)).await {
        Err(e) => {
            f.fail(e);
        }
        Ok(r) => match r.status {
            200 if r.content_type() == "text/html" => {
                f.ok("a valid request gets 200 HTML (a sign-in page)")
            }
            200 => {
                f.warn(format!(
                    "a valid request gets 200 {:?}, not an HTML page",
                    r.content_type()
                ));
            }
            302 | 303 => {
                let to = r.header("location").unwrap_or("");
                if to.starts_with(REDIRECT_URI) {
                    let q = Url::parse(to).ok();
                    let get = |k: &str| {
                        q.as_ref().and_then(|u| {
                            u.query_pairs()
                                .find(|(a, _)| a == k)
                                .map(|(_, v)| v.into_owned())
                        })
                    };
                    match get("error") {
                        Some(e) => {
                            let desc = get("error_description").unwrap_or_default();
                            let fix = match e.as_str() {
                                "invalid_target" => format!("accept the MCP URL {} as resource (RFC 8707)", ctx.t.mcp_url),
                                "invalid_scope" => format!("accept the scope clients take from the challenge or scopes_supported ({scope:?})"),
                                _ => "accept a standard request: response_type=code, PKCE S256, state, resource".to_string(),
                            };
                            f.fail(format!("a valid request was refused: {e} {desc}"))
                                .says("clients show the error and sign-in never starts")
                                .fix(fix);
                        }
                        None => {
                            f.warn("a code was issued without signing in");
                        }
                    }
                } else {
                    let shown = to.split('?').next().unwrap_or(to);
                    f.ok(format!("a valid request gets {} to {shown}", r.status));
                }
            }
            307 | 308 => {
                f.fail(format!(
                    "a valid request gets {} (redirect keeping the method)",
                    r.status
                ))
                .says("Claude refuses a 307 in the authorization flow (\"Method Not Allowed\")")
                .fix("redirect with 302 Found or 303 See Other");
            }
            301 => {
                f.warn("a valid request gets 301 (a permanent redirect)")
                    .fix("redirect with 302 Found or 303 See Other");
            }
            s => {
                f.fail(format!("a valid request gets {s}{}", r.error_suffix()))
                    .says("the browser shows an error instead of the sign-in page")
                    .fix("accept a standard request: response_type=code, PKCE S256, state, resource, a registered loopback redirect_uri");
            }
        },
    }
    match ctx.http.get(&request(WRONG_REDIRECT_URI)).await {
        Err(e) => {
            f.fail(e);
        }
        Ok(r)
            if r.is_redirect()
                && r.header("location")
                    .is_some_and(|l| l.starts_with(WRONG_REDIRECT_URI)) =>
        {
            f.fail(format!("an unregistered redirect_uri gets a redirect to it ({})", r.status))
                .says("an open redirector: anyone can send codes or users to a URL of their choice")
                .fix("compare redirect_uri exactly with the registered URIs and show an error page instead of redirecting (RFC 9700 §4.1, RFC 6749 §4.1.2.1)");
        }
        Ok(r) => f.ok(format!(
            "an unregistered redirect_uri gets {} (no redirect to it)",
            r.status
        )),
    }
    f.finish()
}

/// Check 8: `/.well-known/mcp/manifest.json` (only ChatGPT's older flow reads it).
pub(super) async fn manifest(ctx: &Ctx) -> CheckResult {
    let mut f = Findings::new(Check::Manifest);
    let mut urls = vec![format!("{}/.well-known/mcp/manifest.json", ctx.t.origin)];
    let at_base = format!("{}/.well-known/mcp/manifest.json", ctx.t.base);
    if !urls.contains(&at_base) {
        urls.push(at_base);
    }
    let mut problems = Vec::new();
    for u in &urls {
        match ctx.http.get_doc(u).await.and_then(|r| r.json_doc()) {
            Ok(_) => {
                f.ok(format!("{u}: 200 JSON"));
                return f.finish();
            }
            Err(e) => problems.push(format!("{u} {e}")),
        }
    }
    f.warn(problems.join("; "))
        .says("only ChatGPT's older connector flow reads it")
        .fix("optional; mcpgate serves it at /.well-known/mcp/manifest.json");
    f.finish()
}
