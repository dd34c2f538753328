//! The label values of the metrics: every one is from a fixed set (an enum
//! printed as a static string) or an interned name from a bounded catalog
//! ([`Names`]), so that no label set is built from client input and no
//! request allocates for its labels.

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// A name from a bounded catalog (a route template, a tool, an upstream),
/// shared rather than copied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(pub Arc<str>);

impl Name {
    pub fn new(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

/// An interner of names with a cap: a name already seen is returned
/// without allocating; past `cap` names, new ones get `fallback`. This
/// is what keeps the `tool` and `route` labels bounded whatever clients send.
pub struct Names {
    set: RwLock<HashSet<Arc<str>>>,
    cap: usize,
    fallback: Name,
}

impl Names {
    pub fn new(cap: usize, fallback: &str) -> Self {
        Self {
            set: RwLock::default(),
            cap,
            fallback: Name::new(fallback),
        }
    }

    /// The interned `name` if it is already known, else `None`.
    pub fn get(&self, name: &str) -> Option<Name> {
        self.set
            .read()
            .ok()
            .and_then(|s| s.get(name).cloned())
            .map(Name)
    }

    /// `name` interned (added if there is room), or the fallback.
    /// Only call it with names from a known catalog.
    pub fn intern(&self, name: &str) -> Name {
        if let Some(n) = self.get(name) {
            return n;
        }
        let Ok(mut set) = self.set.write() else {
            return self.fallback.clone();
        };
        if let Some(n) = set.get(name) {
            return Name(n.clone());
        }
        if set.len() >= self.cap {
            return self.fallback.clone();
        }
        let n: Arc<str> = Arc::from(name);
        set.insert(n.clone());
        Name(n)
    }

    /// The name used for anything not in the catalog.
    pub fn fallback(&self) -> Name {
        self.fallback.clone()
    }

    pub fn len(&self) -> usize {
        self.set.read().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Declares a label enum printed as fixed strings.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum!(
    /// An HTTP request method.
    HttpMethod {
        Get => "GET", Post => "POST", Delete => "DELETE", Options => "OPTIONS",
        Head => "HEAD", Put => "PUT", Patch => "PATCH", Other => "other",
    }
);

impl HttpMethod {
    pub fn of(m: &http::Method) -> Self {
        match *m {
            http::Method::GET => Self::Get,
            http::Method::POST => Self::Post,
            http::Method::DELETE => Self::Delete,
            http::Method::OPTIONS => Self::Options,
            http::Method::HEAD => Self::Head,
            http::Method::PUT => Self::Put,
            http::Method::PATCH => Self::Patch,
            _ => Self::Other,
        }
    }
}

/// An HTTP status code (a bounded set: at most 500 values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

label_enum!(
    /// The MCP methods counted (the spec's names).
    McpMethod {
        ToolsCall => "tools/call", ToolsList => "tools/list",
    }
);

label_enum!(
    /// How an MCP request ended: a result, a tool result with `isError`,
    /// a JSON-RPC error, or a tool nobody serves.
    McpOutcome {
        Ok => "ok", ToolError => "tool_error", Error => "error", UnknownTool => "unknown_tool",
    }
);

label_enum!(
    /// The grant type of a token request.
    GrantType {
        AuthorizationCode => "authorization_code", RefreshToken => "refresh_token",
        ClientCredentials => "client_credentials", Other => "other",
    }
);

impl GrantType {
    pub fn of(grant_type: Option<&str>) -> Self {
        match grant_type {
            Some("authorization_code") => Self::AuthorizationCode,
            Some("refresh_token") => Self::RefreshToken,
            Some("client_credentials") => Self::ClientCredentials,
            _ => Self::Other,
        }
    }
}

label_enum!(
    /// An open event stream's kind.
    StreamKind {
        StreamableGet => "streamable_http_get", StreamablePost => "streamable_http_post",
        LegacySse => "legacy_sse",
    }
);

label_enum!(
    /// An upstream connection's state (`gateway::upstream::State`).
    UpstreamState {
        Idle => "idle", Starting => "starting", Running => "running",
        Restarting => "restarting", Stopped => "stopped",
    }
);

impl UpstreamState {
    pub const ALL: [Self; 5] = [
        Self::Idle,
        Self::Starting,
        Self::Running,
        Self::Restarting,
        Self::Stopped,
    ];
}

impl From<crate::gateway::upstream::State> for UpstreamState {
    fn from(s: crate::gateway::upstream::State) -> Self {
        use crate::gateway::upstream::State;
        match s {
            State::Idle => Self::Idle,
            State::Starting => Self::Starting,
            State::Running => Self::Running,
            State::Restarting => Self::Restarting,
            State::Stopped => Self::Stopped,
        }
    }
}

label_enum!(
    /// How an upstream call ended.
    CallOutcome { Ok => "ok", Error => "error" }
);

label_enum!(
    /// How a sign-in through an identity provider ended.
    SigninOutcome { Ok => "ok", Error => "error" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_bounded_and_returns_the_fallback_past_the_cap() {
        let names = Names::new(3, "other");
        assert_eq!(&*names.intern("a").0, "a");
        assert_eq!(&*names.intern("b").0, "b");
        assert_eq!(&*names.intern("c").0, "c");
        assert_eq!(&*names.intern("d").0, "other");
        assert_eq!(&*names.intern("a").0, "a");
        assert_eq!(names.len(), 3);
        assert!(names.get("d").is_none());
    }

    #[test]
    fn grant_types_outside_the_known_ones_are_other() {
        assert_eq!(
            GrantType::of(Some("refresh_token")),
            GrantType::RefreshToken
        );
        assert_eq!(
            GrantType::of(Some("x".repeat(500).as_str())),
            GrantType::Other
        );
        assert_eq!(GrantType::of(None), GrantType::Other);
    }
}
