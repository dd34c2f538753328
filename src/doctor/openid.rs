//! Check 4: `/.well-known/openid-configuration`, which some clients
//! (ChatGPT) read before or instead of RFC 8414 metadata.

use serde_json::{Map, Value};
use url::Url;

use super::http::{list_field, str_field, well_known};
use super::{Check, CheckResult, Ctx, Findings};

/// Check 4: `/.well-known/openid-configuration`: absent is fine, but a 200 must
/// be a complete document.
pub(super) async fn openid_configuration(ctx: &Ctx) -> CheckResult {
    let mut f = Findings::new(Check::OpenIdConfiguration);
    // (URL, the issuer it must carry): ChatGPT asks the MCP origin
    // directly; other clients use the locations of each issuer.
    let mut urls: Vec<(String, String)> = vec![(
        format!("{}/.well-known/openid-configuration", ctx.t.origin),
        ctx.t.origin.clone(),
    )];
    let issuers: Vec<String> = if ctx.authorization_servers.is_empty() {
        vec![ctx.t.origin.clone()]
    } else {
        ctx.authorization_servers.clone()
    };
    for i in issuers {
        if let Ok(u) = Url::parse(&i) {
            for w in locations(&u) {
                match urls.iter_mut().find(|(x, _)| *x == w) {
                    Some(entry) => entry.1 = i.clone(),
                    None => urls.push((w, i.clone())),
                }
            }
        }
    }
    let fix = "answer 404 there (an OAuth-only server is not an OpenID provider), or serve a complete document: issuer, authorization_endpoint, token_endpoint, jwks_uri, response_types_supported, subject_types_supported, id_token_signing_alg_values_supported";
    let says = "a partial or invalid document breaks ChatGPT's discovery";
    for (url, issuer) in urls {
        let r = match ctx.http.get_doc(&url).await {
            Ok(r) => r,
            Err(e) => {
                f.warn(e);
                continue;
            }
        };
        if r.status >= 500 {
            f.warn(format!("{url} answers {}", r.status))
                .says(says)
                .fix(fix);
            continue;
        }
        if r.status != 200 {
            f.ok(format!(
                "{url}: {} (fine: not an OpenID provider)",
                r.status
            ));
            continue;
        }
        let Some(doc) = r.object() else {
            f.fail(format!(
                "{url} answers 200 with a body that is not JSON (content type {:?})",
                r.content_type()
            ))
            .says(says)
            .fix(fix);
            continue;
        };
        let missing: Vec<&str> = [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ]
        .into_iter()
        .filter(|k| doc.get(*k).is_none_or(Value::is_null))
        .collect();
        if !missing.is_empty() {
            f.fail(format!("{url} is partial: no {}", missing.join(", ")))
                .says(says)
                .fix(fix);
        }
        if let Some(i) = str_field(&doc, "issuer")
            && i != issuer
        {
            f.fail(format!("{url}: issuer {i:?} is not {issuer:?}"))
                .says("clients discard the document (OpenID Discovery §4.3) and ChatGPT's discovery fails")
                .fix(format!("set issuer to exactly {issuer:?}, or answer 404"));
        }
        if !list_field(&doc, "code_challenge_methods_supported")
            .iter()
            .any(|m| m == "S256")
        {
            f.warn(format!("{url} lacks code_challenge_methods_supported S256"))
                .says("MCP clients that read this document refuse to continue without PKCE S256")
                .fix("add \"code_challenge_methods_supported\": [\"S256\"]");
        }
        f.ok(format!("{url}: a complete OpenID configuration"));
    }
    f.finish()
}

/// The first OpenID configuration found for an issuer.
pub(super) async fn fallback(ctx: &Ctx, issuer: &Url) -> Option<(String, Map<String, Value>)> {
    for u in locations(issuer) {
        if let Ok(d) = ctx.http.get_doc(&u).await.and_then(|r| r.json_doc()) {
            return Some((u, d));
        }
    }
    None
}

/// MCP 2025-11-25 "AS metadata discovery": the OpenID locations for an issuer.
pub(super) fn locations(issuer: &Url) -> Vec<String> {
    let mut v = vec![well_known(issuer, "openid-configuration")];
    let path = issuer.path().trim_end_matches('/');
    if !path.is_empty() {
        v.push(format!(
            "{}{path}/.well-known/openid-configuration",
            issuer.origin().ascii_serialization()
        ));
    }
    v
}
