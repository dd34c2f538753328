//! The `requestState` of a multi-round-trip request (MCP 2026-07-28,
//! SEP-2322 "InputRequiredResult"), as mcpgate issues it.
//!
//! When an upstream asks for input (sampling, elicitation, roots) during a
//! call of a 2026-07-28 client, mcpgate answers the client with an
//! `InputRequiredResult` and keeps the upstream call waiting. The
//! `requestState` it hands out names that waiting call; the client echoes
//! it in its retry. SEP-2322 has the client treat the value as opaque and
//! the server treat the echoed value as untrusted ("servers MUST verify
//! integrity"), so the state is:
//!
//! - **signed**: HMAC-SHA256 under a key derived from the server key
//!   ([`StateKey::derive`]); a changed byte fails;
//! - **bound** to the caller (owner and client) and to the original request
//!   (method, name or URI, arguments): the [`Binding`] is MAC'd as
//!   associated data, never written into the token, so another user's
//!   state, or the state of another request, fails exactly like a tampered
//!   one (and the token reveals nobody's identity);
//! - **short-lived**: it carries its expiry, checked after the MAC;
//! - **single-use**: it names one round of one pending call; the gateway
//!   takes that round when the retry arrives, so a replay finds nothing
//!   (enforced where the pending calls are kept, `mcpgate::gateway::input`).
//!
//! Wire form: `mrs1.` + base64url(claims JSON) + `.` + base64url(tag), where
//! `tag = HMAC(key, "mcpgate request state v1\0" || SHA-256(binding) || claims)`.
//! Every failure is the one error the revision gives an invalid
//! `requestState` (`-32602`, the conformance `tampered-state` scenario);
//! [`StateError`] tells the log why.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::model::UnixTime;

const PREFIX: &str = "mrs1.";
const KEY_LABEL: &[u8] = b"mcpgate request state key v1";
const MAC_DOMAIN: &[u8] = b"mcpgate request state v1\0";
/// Longest token accepted (a real one is about 200 characters).
pub const MAX_STATE_LEN: usize = 2048;

/// The key that signs request states, derived from the server key (every
/// instance sharing a database derives the same one).
#[derive(Clone)]
pub struct StateKey([u8; 32]);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey([REDACTED])")
    }
}

impl StateKey {
    pub fn derive(server_key: &[u8]) -> Self {
        Self(hmac_sha256(server_key, KEY_LABEL))
    }
}

/// What a state is bound to: who asked, and what.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The caller's owner (`Caller::owner`: user id or `client:<id>`).
    pub owner: &'a str,
    /// The OAuth client the token was issued to.
    pub client_id: &'a str,
    /// `tools/call`, `prompts/get` or `resources/read`.
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI.
    pub name: &'a str,
    /// The request's arguments, if any (compared canonically: key order
    /// does not matter).
    pub arguments: Option<&'a Value>,
}

impl Binding<'_> {
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [self.owner, self.client_id, self.method, self.name] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let args = match self.arguments {
            Some(v) => canonical(v),
            None => String::from("null"),
        };
        h.update((args.len() as u64).to_be_bytes());
        h.update(args.as_bytes());
        h.finalize().into()
    }
}

/// JSON text with object keys sorted at every level.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), sorted(x));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // With serde_json's `preserve_order`, the map keeps insertion order,
    // which `sorted` made sorted; without it, maps are sorted anyway.
    sorted(v).to_string()
}

/// What a state says (signed, not secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    /// The pending call's id (random, 128 bits).
    #[serde(rename = "c")]
    pub call: String,
    /// Which round of that call this state answers (1 for the first
    /// `InputRequiredResult`).
    #[serde(rename = "r")]
    pub round: u32,
    /// The instance that holds the pending call.
    #[serde(rename = "i")]
    pub instance: String,
    /// Unix time after which the state is refused.
    #[serde(rename = "e")]
    pub expires_at: UnixTime,
}

/// Why a state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the requestState is malformed")]
    Malformed,
    /// A changed token, another user's, or another request's.
    #[error(
        "the requestState fails its integrity check (changed, or issued for another user or request)"
    )]
    Integrity,
    #[error("the requestState has expired")]
    Expired,
}

impl StateError {
    /// A stable name for logs.
    pub fn event(&self) -> &'static str {
        match self {
            Self::Malformed => "request_state_malformed",
            Self::Integrity => "request_state_integrity",
            Self::Expired => "request_state_expired",
        }
    }
}

fn tag(key: &StateKey, binding: &Binding<'_>, claims: &[u8]) -> [u8; 32] {
    let mut msg = Vec::with_capacity(MAC_DOMAIN.len() + 32 + claims.len());
    msg.extend_from_slice(MAC_DOMAIN);
    msg.extend_from_slice(&binding.digest());
    msg.extend_from_slice(claims);
    hmac_sha256(&key.0, &msg)
}

/// Signs `claims` for `binding`.
pub fn seal(key: &StateKey, claims: &StateClaims, binding: &Binding<'_>) -> String {
    // Serializing a struct of strings and integers cannot fail.
    let body = serde_json::to_vec(claims).unwrap_or_default();
    let t = tag(key, binding, &body);
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&body),
        URL_SAFE_NO_PAD.encode(t)
    )
}

/// Verifies a presented state for `binding` at `now`: the MAC first, then
/// the expiry. Does not know whether the round was used already (the
/// pending calls do).
pub fn open(
    key: &StateKey,
    token: &str,
    binding: &Binding<'_>,
    now: UnixTime,
) -> Result<StateClaims, StateError> {
    if token.len() > MAX_STATE_LEN {
        return Err(StateError::Malformed);
    }
    let rest = token.strip_prefix(PREFIX).ok_or(StateError::Malformed)?;
    let (body, mac) = rest.split_once('.').ok_or(StateError::Malformed)?;
    // Anything appended or changed fails here or at the MAC.
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| StateError::Malformed)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| StateError::Integrity)?;
    if !constant_time_eq(&tag(key, binding, &body), &mac) {
        return Err(StateError::Integrity);
    }
    let claims: StateClaims = serde_json::from_slice(&body).map_err(|_| StateError::Malformed)?;
    if now >= claims.expires_at {
        return Err(StateError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> StateKey {
        StateKey::derive(b"0123456789abcdef0123456789abcdef")
    }

    fn claims() -> StateClaims {
        StateClaims {
            call: "call-1".into(),
            round: 1,
            instance: "i1".into(),
            expires_at: 1_000,
        }
    }

    fn binding(args: &Value) -> Binding<'_> {
        Binding {
            owner: "alice-id",
            client_id: "client-a",
            method: "tools/call",
            name: "ask",
            arguments: Some(args),
        }
    }

    #[test]
    fn a_sealed_state_opens_for_the_same_caller_and_request_before_expiry() {
        let args = json!({"a": 1, "b": [1, {"y": 2, "x": 1}]});
        let token = seal(&key(), &claims(), &binding(&args));
        assert!(token.starts_with("mrs1."));
        assert_eq!(open(&key(), &token, &binding(&args), 999), Ok(claims()));
    }

    #[test]
    fn argument_key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"y":2,"x":1}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":{"x":1,"y":2},"a":1}"#).unwrap();
        let token = seal(&key(), &claims(), &binding(&a));
        assert!(open(&key(), &token, &binding(&b), 0).is_ok());
    }

    #[test]
    fn any_change_to_the_token_fails() {
        let args = json!({});
        let token = seal(&key(), &claims(), &binding(&args));
        let appended = format!("{token}-TAMPERED");
        assert!(open(&key(), &appended, &binding(&args), 0).is_err());
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != token {
                assert!(
                    open(&key(), &changed, &binding(&args), 0).is_err(),
                    "byte {i} changed and still accepted"
                );
            }
        }
    }

    #[test]
    fn forged_claims_with_a_copied_tag_fail_the_integrity_check() {
        let args = json!({});
        let token = seal(&key(), &claims(), &binding(&args));
        let mac = token.rsplit('.').next().unwrap();
        let mut other = claims();
        other.round = 2;
        other.expires_at = i64::MAX;
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let forged = format!("mrs1.{body}.{mac}");
        assert_eq!(
            open(&key(), &forged, &binding(&args), 0),
            Err(StateError::Integrity)
        );
    }

    #[test]
    fn another_users_or_clients_state_fails() {
        let args = json!({});
        let token = seal(&key(), &claims(), &binding(&args));
        let bob = Binding {
            owner: "bob-id",
            ..binding(&args)
        };
        assert_eq!(open(&key(), &token, &bob, 0), Err(StateError::Integrity));
        let other_client = Binding {
            client_id: "client-b",
            ..binding(&args)
        };
        assert_eq!(
            open(&key(), &token, &other_client, 0),
            Err(StateError::Integrity)
        );
    }

    #[test]
    fn a_state_is_bound_to_the_method_name_and_arguments() {
        let args = json!({"x": 1});
        let token = seal(&key(), &claims(), &binding(&args));
        let other_args = json!({"x": 2});
        for b in [
            Binding {
                method: "prompts/get",
                ..binding(&args)
            },
            Binding {
                name: "other",
                ..binding(&args)
            },
            binding(&other_args),
            Binding {
                arguments: None,
                ..binding(&args)
            },
        ] {
            assert_eq!(open(&key(), &token, &b, 0), Err(StateError::Integrity));
        }
    }

    #[test]
    fn parts_of_the_binding_cannot_be_shifted_into_each_other() {
        let a = Binding {
            owner: "ab",
            client_id: "c",
            method: "m",
            name: "n",
            arguments: None,
        };
        let b = Binding {
            owner: "a",
            client_id: "bc",
            ..a
        };
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn an_expired_state_is_refused() {
        let args = json!({});
        let token = seal(&key(), &claims(), &binding(&args));
        assert_eq!(
            open(&key(), &token, &binding(&args), 1_000),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn another_server_keys_state_fails() {
        let args = json!({});
        let token = seal(&key(), &claims(), &binding(&args));
        let other = StateKey::derive(b"another server key, 32 bytes....");
        assert_eq!(
            open(&other, &token, &binding(&args), 0),
            Err(StateError::Integrity)
        );
    }

    #[test]
    fn garbage_is_malformed_and_never_panics() {
        let args = json!({});
        for t in ["", "mrs1.", "mrs1..", "mrs1.!!.!!", "rs1.a.b", "mrs1.e30"] {
            assert!(open(&key(), t, &binding(&args), 0).is_err(), "{t}");
        }
        let huge = format!("mrs1.{}", "A".repeat(MAX_STATE_LEN));
        assert_eq!(
            open(&key(), &huge, &binding(&args), 0),
            Err(StateError::Malformed)
        );
    }

    #[test]
    fn the_key_debug_output_is_redacted() {
        assert_eq!(format!("{:?}", key()), "StateKey([REDACTED])");
    }
}
