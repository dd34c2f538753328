//! HTML responses and browser cookies.
//!
//! Every page carries `X-Frame-Options: DENY`, a CSP with
//! `frame-ancestors 'none'` (clickjacking on the consent page),
//! `Referrer-Policy: no-referrer` (the URL holds the authorization request)
//! and `Cache-Control: no-store`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

pub fn page(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A redirect with `Location` (302 after GET, 303 after a form POST; never
/// 307, which some clients refuse and which would re-post credentials).
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The browser-session cookie: `__Host-` prefixed and `Secure` when the
/// public URL is https; always `HttpOnly`, `SameSite=Lax`, `Path=/`.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    name: &'static str,
    secure: bool,
}

impl SessionCookie {
    pub fn new(https: bool) -> Self {
        Self {
            name: if https {
                "__Host-mcpgate_session"
            } else {
                "mcpgate_session"
            },
            secure: https,
        }
    }

    pub fn read(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == self.name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 128
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    pub fn set(&self, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.name
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` that removes the cookie (sign-out).
    pub fn expire(&self) -> HeaderValue {
        self.set("", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_use_the_host_prefix_and_secure() {
        let c = SessionCookie::new(true);
        let v = c.set("abc", 60);
        assert_eq!(
            v.to_str().unwrap(),
            "__Host-mcpgate_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-mcpgate_session=abc"),
        );
        assert_eq!(c.read(&h).as_deref(), Some("abc"));
        assert_eq!(
            c.expire().to_str().unwrap(),
            "__Host-mcpgate_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
        );
        let plain = SessionCookie::new(false);
        assert!(!plain.set("x", 1).to_str().unwrap().contains("Secure"));
        assert_eq!(plain.read(&h), None);
    }
}
