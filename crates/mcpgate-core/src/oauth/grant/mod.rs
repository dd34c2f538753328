//! The token grants, one per file: each takes the stored record, the
//! request and the current time, and decides. The caller does the I/O.
//!
//! - [`authorization_code`]: RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2,
//!   RFC 9700 §4.2.4 (code replay).
//! - [`refresh_token`]: RFC 6749 §6, RFC 9700 §4.14.2 (rotation and reuse
//!   detection), with a grace window for lost responses.
//! - [`client_credentials`]: RFC 6749 §4.4 for pre-registered machine
//!   clients (MCP SEP-1046), RFC 8707 §2.2.
pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use super::{OAuthError, policy::Policy};
use crate::domain::ResourceUri;

/// RFC 8707 §2.2: a `resource` in the token request must name the resource
/// the grant is bound to.
fn check_resource(
    requested: Option<&str>,
    bound: &ResourceUri,
    policy: &Policy,
) -> Result<(), OAuthError> {
    match requested {
        None => Ok(()),
        Some(r) if policy.resource_named(r).is_some_and(|ours| ours == bound) => Ok(()),
        Some(r) => Err(OAuthError::invalid_target(format!(
            "resource {r} is not the resource this grant is for ({bound})"
        ))),
    }
}
