use serde::{Deserialize, Serialize};

use super::ParseError;

/// An OAuth client identifier (RFC 6749 §2.2): 1 to 255 visible ASCII
/// characters. mcpgate issues UUIDs, but any such string can be looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new("client_id is empty"));
        }
        if s.len() > 255 {
            return Err(ParseError::new("client_id is longer than 255 characters"));
        }
        if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ParseError::new(
                "client_id may contain only visible ASCII characters",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClientId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ClientId> for String {
    fn from(value: ClientId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_refuses_empty_or_control_characters() {
        assert!(ClientId::parse("bffb61f7-a897-40bb-8579-2b7436e27ac2").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("a\nb").is_err());
        assert!(ClientId::parse(&"x".repeat(256)).is_err());
    }
}
