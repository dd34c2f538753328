use url::Url;

use super::{ClientId, ParseError};

/// A `client_id` that is the URL of the client's metadata document
/// (draft-ietf-oauth-client-id-metadata-document §3): `https`, a path
/// other than `/`, no fragment, no username or password, no `.` or `..`
/// path segments. A query is allowed (the draft discourages it).
///
/// [`MetadataDocumentUrl::recognise`] sorts client ids: an https URL with a
/// path is a document URL (valid or not); anything else is an ordinary
/// client id. The URL is kept exactly as the client sent it, and must be in
/// the form a URL parser writes it (lower-case scheme and host, no default
/// port): the document's `client_id` is compared with it byte for byte
/// (§4.1), and two spellings of one URL must not be two clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetadataDocumentUrl {
    url: Url,
}

impl MetadataDocumentUrl {
    /// `None` for an ordinary client id; `Some(Err)` for an https URL with
    /// a path that breaks one of the draft's rules.
    pub fn recognise(client_id: &ClientId) -> Option<Result<Self, ParseError>> {
        let raw = client_id.as_str();
        let scheme_ok = raw
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        if !scheme_ok {
            return None;
        }
        let after_scheme = &raw[8..];
        let path_start = after_scheme.find(['/', '?', '#'])?;
        let rest = &after_scheme[path_start..];
        // "https://host/" and "https://host?x": no path, an ordinary id.
        if !rest.starts_with('/') || rest.starts_with("/?") || rest.starts_with("/#") || rest == "/"
        {
            return None;
        }
        Some(Self::parse(raw))
    }

    /// Parses a document URL, applying every rule.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| {
            ParseError::new(format!(
                "client_id {raw:?} is not a valid metadata document URL: {why}"
            ))
        };
        if raw.contains('#') {
            return Err(bad("it has a fragment"));
        }
        let path_and_more = raw
            .get(8..)
            .and_then(|r| r.find('/').map(|i| &r[i..]))
            .unwrap_or("");
        let path = path_and_more.split('?').next().unwrap_or("");
        let dot = path.split('/').any(|seg| {
            let seg = seg.to_ascii_lowercase().replace("%2e", ".");
            seg == "." || seg == ".."
        });
        if dot {
            return Err(bad("it has a \".\" or \"..\" path segment"));
        }
        let url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "https" {
            return Err(bad("it is not https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it has a username or password"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err(bad("it has no path"));
        }
        if url.as_str() != raw {
            return Err(bad(&format!(
                "it is not written in canonical form (that is {:?})",
                url.as_str()
            )));
        }
        Ok(Self { url })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host, lower-case (what the consent page shows and
    /// `trusted_client_hosts` lists).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

impl std::fmt::Display for MetadataDocumentUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognise(s: &str) -> Option<Result<MetadataDocumentUrl, ParseError>> {
        MetadataDocumentUrl::recognise(&ClientId::parse(s).unwrap())
    }

    #[test]
    fn https_urls_with_a_path_are_document_urls() {
        for ok in [
            "https://claude.ai/oauth/claude-code-client-metadata",
            "https://chatgpt.com/oauth/abc/client.json",
            "https://127.0.0.1:8443/client.json",
            "https://vscode.dev/oauth/client-metadata.json?v=2",
        ] {
            let u = recognise(ok).unwrap().unwrap();
            assert_eq!(u.as_str(), ok);
        }
        assert_eq!(
            recognise("https://chatgpt.com/oauth/x.json")
                .unwrap()
                .unwrap()
                .host(),
            "chatgpt.com"
        );
    }

    #[test]
    fn other_ids_are_ordinary() {
        for ordinary in [
            "bffb61f7-a897-40bb-8579-2b7436e27ac2",
            "http://example.com/client.json",
            "https://example.com",
            "https://example.com/",
            "https://example.com?x=1",
            "urn:example:client",
            "https:/x",
        ] {
            assert!(recognise(ordinary).is_none(), "{ordinary}");
        }
    }

    #[test]
    fn document_urls_that_break_the_rules_are_refused() {
        for (bad, why) in [
            ("https://example.com/client.json#x", "fragment"),
            ("https://user:pw@example.com/client.json", "username"),
            ("https://user@example.com/client.json", "username"),
            ("https://example.com/a/../client.json", "segment"),
            ("https://example.com/./client.json", "segment"),
            ("https://example.com/a/%2E%2E/client.json", "segment"),
            ("https://EXAMPLE.com/client.json", "canonical"),
            ("https://example.com:443/client.json", "canonical"),
            ("HTTPS://example.com/client.json", "canonical"),
        ] {
            let e = recognise(bad).unwrap().unwrap_err();
            assert!(e.0.contains(why), "{bad}: {e}");
        }
    }
}
