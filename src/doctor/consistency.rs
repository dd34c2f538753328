//! Checks 9 and 10: every advertised URL agrees, and the transport.

use url::Url;

use super::http::{is_loopback, same_origin, str_field};
use super::{Check, CheckResult, Ctx, Findings};

/// Check 9: Issuer, resource, `authorization_servers` and the challenge URL agree.
pub(super) fn consistency(ctx: &Ctx) -> CheckResult {
    let mut f = Findings::new(Check::Consistency);
    let t = &ctx.t;
    let says = "clients compare these URLs character for character and stop at the first mismatch";
    let one_url = format!(
        "derive every URL from one public URL, no trailing slash (mcpgate: public_url = \"{}\")",
        t.base
    );
    // Every advertised URL, once: (what, value).
    let mut urls: Vec<(String, String)> = Vec::new();
    let mut add = |what: String, value: &str| {
        if !urls.iter().any(|(_, v)| v == value) {
            urls.push((what, value.to_string()));
        }
    };
    if let Some(c) = &ctx.challenge_url {
        add("the challenge's resource_metadata".into(), c);
    }
    for (_, r) in &ctx.resources {
        add("resource".into(), r);
    }
    for s in &ctx.authorization_servers {
        add("authorization_servers entry".into(), s);
    }
    for d in &ctx.as_docs {
        let issuer = str_field(&d.doc, "issuer").unwrap_or("");
        if issuer != d.server {
            f.fail(format!(
                "authorization_servers lists {:?} but its metadata says issuer {issuer:?}",
                d.server
            ))
            .says(says)
            .fix(one_url.clone());
        } else {
            add("issuer".into(), issuer);
        }
    }
    if urls.is_empty() && !f.has_failures() {
        return f.skip("no URLs were discovered");
    }
    let https = t.base_url.scheme() == "https";
    for (what, u) in &urls {
        if what == "resource" && *u != t.mcp_url {
            f.fail(format!("resource {u:?} is not the MCP URL {:?}", t.mcp_url))
                .says(says)
                .fix(one_url.clone());
        } else if u.ends_with('/') {
            f.fail(format!("{what} {u:?} ends with a slash"))
                .says(says)
                .fix(one_url.clone());
        }
        // The authorization server may live elsewhere; the rest may not.
        if what == "the challenge's resource_metadata"
            && let Ok(p) = Url::parse(u)
            && !same_origin(&p, &t.base_url)
        {
            f.fail(format!(
                "{what} {u} is not on the public origin {}",
                t.origin
            ))
            .says(says)
            .fix(one_url.clone());
        }
        if https && u.starts_with("http://") {
            f.fail(format!("{what} {u:?} is http under an https public URL"))
                .says(says)
                .fix("advertise https URLs only (behind a TLS proxy: set the public URL to https)");
        }
    }
    f.ok(format!(
        "issuer {:?}, resource {:?}, challenge {:?} agree",
        ctx.authorization_servers
            .first()
            .map_or("?", String::as_str),
        t.mcp_url,
        ctx.challenge_url.as_deref().unwrap_or("none")
    ));
    f.finish()
}

/// Check 10: https, unless the server is on loopback.
pub(super) fn transport(ctx: &Ctx) -> CheckResult {
    let mut f = Findings::new(Check::Transport);
    let u = &ctx.t.base_url;
    if u.scheme() == "https" {
        f.ok("https");
    } else if is_loopback(u) {
        f.ok("plain http on a loopback address (fine for local use; clients need https anywhere else)");
    } else {
        f.warn(format!("plain http on {}, not a loopback address", u.host_str().unwrap_or("?")))
            .says("ChatGPT and Claude refuse OAuth servers without https")
            .fix("serve the public URL over https (e.g. behind a TLS-terminating proxy; mcpgate: public_url = \"https://…\")");
    }
    f.finish()
}
