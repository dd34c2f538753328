//! The public keys of `private_key_jwt` clients (RFC 7523 §2.2): inline
//! `jwks`, or fetched from the client's `jwks_uri` (RFC 7591 §2) and kept
//! per URI.
//!
//! A fetched key set is kept for the lifetime its `Cache-Control` allows,
//! clamped ([`client_assertion::jwks_ttl`]). When an assertion names a
//! `kid` the set does not have (the client rotated its keys), the set is
//! fetched again, at most once every 30 seconds per URI
//! ([`client_assertion::may_refetch`]), so that made-up `kid`s cannot make
//! mcpgate hammer the client's host. The cache is per instance.
//!
//! Fetching goes through [`JwksFetcher`]; the production one
//! ([`HttpJwksFetcher`]) is a GET through `crate::outbound`: no redirects,
//! 5 s timeout, 64 KiB cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::oauth::client_assertion::{self, ClientKey};

use crate::outbound::{self, GuardedClient, Outbound, OutboundSettings};

/// Largest JWK Set body read from a `jwks_uri`.
pub const MAX_JWKS_BODY: usize = 64 * 1024;
/// Timeout of one `jwks_uri` fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Most `jwks_uri`s remembered at once.
const MAX_ENTRIES: usize = 10_000;

/// A fetched JWK Set: the JSON and the response's `Cache-Control`.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: serde_json::Value,
    pub cache_control: Option<String>,
}

/// Fetches a JWK Set. The error is a sentence for the client's error
/// description (it names no more than the URI's origin).
#[async_trait]
pub trait JwksFetcher: Send + Sync {
    async fn fetch(&self, uri: &str) -> Result<Fetched, String>;
}

/// The real fetch: `GET` with `Accept: application/json` through the
/// outbound policy for client-controlled URLs (the SSRF rule after DNS
/// resolution, the operator's `outbound_allow_networks` and
/// `outbound_ca_file`; see `crate::outbound`).
pub struct HttpJwksFetcher {
    /// Built once (root certificates, the operator's CA file, the
    /// resolver); an error here is reported on every fetch.
    client: Result<GuardedClient, String>,
}

impl HttpJwksFetcher {
    pub fn new(outbound: &OutboundSettings) -> Self {
        Self {
            client: Outbound::client_controlled(FETCH_TIMEOUT)
                .settings(outbound)
                .build_guarded(),
        }
    }
}

#[async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self, uri: &str) -> Result<Fetched, String> {
        let url = url::Url::parse(uri).map_err(|_| "the jwks_uri is not a URL".to_string())?;
        let origin = url.origin().ascii_serialization();
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let response = client
            .get(&url)
            .map_err(|why| format!("the client's jwks_uri: {why}"))?
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                tracing::info!(event = "oauth.jwks_fetch_failed", origin = ?origin, error = %e, "jwks_uri fetch failed");
                format!("the client's jwks_uri at {origin} could not be fetched")
            })?;
        if let Some(why) = outbound::refused_redirect(&response) {
            return Err(format!("the client's jwks_uri: {why}"));
        }
        if !response.status().is_success() {
            return Err(format!(
                "the client's jwks_uri at {origin} answered {}",
                response.status()
            ));
        }
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = outbound::read_capped(response, MAX_JWKS_BODY)
            .await
            .map_err(|e| match e {
                outbound::ReadError::TooLarge(n) => {
                    format!("the client's jwks_uri at {origin} is larger than {n} bytes")
                }
                outbound::ReadError::Http(_) => {
                    format!("the client's jwks_uri at {origin} could not be read")
                }
            })?;
        let body = serde_json::from_slice(&body)
            .map_err(|_| format!("the client's jwks_uri at {origin} is not JSON"))?;
        Ok(Fetched {
            body,
            cache_control,
        })
    }
}

struct Entry {
    keys: Option<Arc<Vec<ClientKey>>>,
    /// When the keys stop being used without a refetch.
    fresh_until: i64,
    /// When a fetch was last started (successful or not).
    last_attempt: i64,
}

/// Key sets per `jwks_uri`.
pub struct JwksCache {
    fetcher: Arc<dyn JwksFetcher>,
    entries: Mutex<HashMap<String, Entry>>,
}

/// Why no keys could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysUnavailable(pub String);

impl JwksCache {
    pub fn new(fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self {
            fetcher,
            entries: Mutex::default(),
        }
    }

    /// The keys at `uri`: the cached set while fresh, else a fetch (if the
    /// last attempt was long enough ago; otherwise the stale set, if any).
    pub async fn keys(&self, uri: &str, now: i64) -> Result<Arc<Vec<ClientKey>>, KeysUnavailable> {
        let stale = {
            let map = self.lock();
            match map.get(uri) {
                Some(e) if now < e.fresh_until => {
                    if let Some(k) = &e.keys {
                        return Ok(k.clone());
                    }
                    None
                }
                Some(e) => e.keys.clone(),
                None => None,
            }
        };
        match self.refetch(uri, now).await {
            Some(Ok(keys)) => Ok(keys),
            // The client's host is down: its last keys still serve.
            Some(Err(e)) => stale.ok_or(e),
            None => stale.ok_or_else(|| {
                KeysUnavailable(
                    "the client's jwks_uri was fetched moments ago without usable keys; try again in 30 seconds".into(),
                )
            }),
        }
    }

    /// Fetches the set again because a key was missing, unless a fetch of
    /// this URI was started less than 30 s ago (then `None`).
    pub async fn refetch(
        &self,
        uri: &str,
        now: i64,
    ) -> Option<Result<Arc<Vec<ClientKey>>, KeysUnavailable>> {
        {
            let mut map = self.lock();
            let last = map.get(uri).map(|e| e.last_attempt);
            if !client_assertion::may_refetch(last, now) {
                return None;
            }
            if map.len() >= MAX_ENTRIES && !map.contains_key(uri) {
                map.retain(|_, e| now < e.fresh_until);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            // Claim the attempt before fetching: concurrent requests for
            // the same URI do not all fetch.
            let e = map.entry(uri.to_string()).or_insert(Entry {
                keys: None,
                fresh_until: 0,
                last_attempt: now,
            });
            e.last_attempt = now;
        }
        let result = match self.fetcher.fetch(uri).await {
            Ok(f) => client_assertion::parse_jwks(&f.body)
                .map(|keys| {
                    (
                        Arc::new(keys),
                        client_assertion::jwks_ttl(f.cache_control.as_deref()),
                    )
                })
                .map_err(|e| KeysUnavailable(format!("the client's jwks_uri: {e}"))),
            Err(e) => Err(KeysUnavailable(e)),
        };
        let mut map = self.lock();
        let Some(e) = map.get_mut(uri) else {
            return Some(result.map(|(k, _)| k));
        };
        Some(match result {
            Ok((keys, ttl)) => {
                e.keys = Some(keys.clone());
                e.fresh_until = now + ttl;
                Ok(keys)
            }
            Err(err) => Err(err),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Serves a key set that the test can change, and counts fetches.
    struct FakeFetcher {
        kids: Mutex<Vec<&'static str>>,
        cache_control: Option<&'static str>,
        fetches: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }

    impl FakeFetcher {
        fn new(kids: &[&'static str], cache_control: Option<&'static str>) -> Arc<Self> {
            Arc::new(Self {
                kids: Mutex::new(kids.to_vec()),
                cache_control,
                fetches: AtomicUsize::new(0),
                down: Default::default(),
            })
        }
        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl JwksFetcher for FakeFetcher {
        async fn fetch(&self, _uri: &str) -> Result<Fetched, String> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err("down".into());
            }
            let keys: Vec<_> = self
                .kids
                .lock()
                .unwrap()
                .iter()
                .map(|kid| {
                    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
                })
                .collect();
            Ok(Fetched {
                body: json!({ "keys": keys }),
                cache_control: self.cache_control.map(str::to_string),
            })
        }
    }

    fn kids(keys: &[ClientKey]) -> Vec<String> {
        keys.iter().filter_map(|k| k.kid.clone()).collect()
    }

    const URI: &str = "https://client.example/jwks.json";

    #[tokio::test]
    async fn many_requests_fetch_once_until_the_keys_go_stale() {
        let f = FakeFetcher::new(&["a"], Some("max-age=600"));
        let cache = JwksCache::new(f.clone());
        for t in 0..100 {
            let keys = cache.keys(URI, NOW + t).await.unwrap();
            assert_eq!(kids(&keys), ["a"]);
        }
        assert_eq!(f.fetches(), 1);
        // Past max-age, the next use fetches again and sees new keys.
        *f.kids.lock().unwrap() = vec!["b"];
        let keys = cache.keys(URI, NOW + 600).await.unwrap();
        assert_eq!(kids(&keys), ["b"]);
        assert_eq!(f.fetches(), 2);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_every_thirty_seconds() {
        let f = FakeFetcher::new(&["a"], None);
        let cache = JwksCache::new(f.clone());
        cache.keys(URI, NOW).await.unwrap();
        // The client rotated to "b" right after: within 30 s of the first
        // fetch no refetch happens, however many unknown kids arrive.
        *f.kids.lock().unwrap() = vec!["b"];
        for t in 0..30 {
            assert!(cache.refetch(URI, NOW + t).await.is_none());
        }
        assert_eq!(f.fetches(), 1);
        let keys = cache.refetch(URI, NOW + 30).await.unwrap().unwrap();
        assert_eq!(kids(&keys), ["b"]);
        assert_eq!(f.fetches(), 2);
        // The refetched set is what later requests see, without fetching.
        assert_eq!(kids(&cache.keys(URI, NOW + 31).await.unwrap()), ["b"]);
        assert!(cache.refetch(URI, NOW + 59).await.is_none());
        assert_eq!(f.fetches(), 2);
    }

    #[tokio::test]
    async fn a_host_that_is_down_is_not_asked_again_within_thirty_seconds() {
        let f = FakeFetcher::new(&["a"], None);
        f.down.store(true, Ordering::SeqCst);
        let cache = JwksCache::new(f.clone());
        assert!(cache.keys(URI, NOW).await.is_err());
        assert!(cache.keys(URI, NOW + 10).await.is_err());
        assert_eq!(f.fetches(), 1);
        f.down.store(false, Ordering::SeqCst);
        assert_eq!(kids(&cache.keys(URI, NOW + 30).await.unwrap()), ["a"]);
        // Stale keys are served while the host is down again.
        f.down.store(true, Ordering::SeqCst);
        let later = NOW + 30 + client_assertion::JWKS_TTL_DEFAULT;
        assert_eq!(kids(&cache.keys(URI, later).await.unwrap()), ["a"]);
        assert_eq!(f.fetches(), 3);
        assert_eq!(kids(&cache.keys(URI, later + 1).await.unwrap()), ["a"]);
        assert_eq!(f.fetches(), 3);
    }

    #[tokio::test]
    async fn uris_are_cached_separately() {
        let f = FakeFetcher::new(&["a"], None);
        let cache = JwksCache::new(f.clone());
        cache.keys(URI, NOW).await.unwrap();
        cache.keys("https://other.example/jwks", NOW).await.unwrap();
        assert_eq!(f.fetches(), 2);
    }
}
