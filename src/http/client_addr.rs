//! [`ClientAddr`]: the client's address for per-address rate limits (sign-in,
//! registration). The TCP peer, or, when the peer is one of the
//! `trusted_proxies`, the client its `X-Forwarded-For` names (the rule:
//! `mcpgate_core::client_address`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or((
                StatusCode::INTERNAL_SERVER_ERROR,
                "the connection's address is unknown",
            ))?;
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(Self(app.auth.trusted_proxies.client_ip(peer, forwarded)))
    }
}
