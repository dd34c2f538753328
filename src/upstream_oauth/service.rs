//! The connect flow (issue #19): a one-time link for the user's assistant,
//! the authorization request at the upstream, the callback, and the
//! disconnect.
//!
//! 1. [`UpstreamOAuth::connect_link`]: the `<prefix>_connect` tool makes a
//!    random ticket (its hash stored, kind `link`, [`LINK_TTL`]) bound to
//!    the calling user: `<public_url>/connect/<upstream>?ticket=…`.
//! 2. [`UpstreamOAuth::begin`]: the browser opens it signed in as that
//!    user; the ticket is taken (once), the upstream's authorization server
//!    discovered ([`super::discovery`]), mcpgate's client there resolved
//!    ([`super::client`]), a `state` stored (kind `state`, bound to the
//!    browser's session cookie by hash) and the browser sent to the
//!    authorization endpoint with PKCE S256 (the verifier derived from the
//!    state under the server key) and `resource` = the upstream's URL.
//! 3. [`UpstreamOAuth::finish`]: the callback takes the state (once, same
//!    browser, in time), exchanges the code, seals the tokens in the vault,
//!    and tells the user's sessions that the tool list changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use mcpgate_core::crypto::{hash_secret, random_b64};
use mcpgate_core::secret::Secret;
use mcpgate_core::upstream_oauth::client_key::{ClientAuthMethod, ClientSigningKey};
use mcpgate_core::upstream_oauth::connect::{
    AuthorizationRequest, ConnectError, LINK_TTL, STATE_TTL, verifier,
};
use mcpgate_core::upstream_oauth::tokens::TokenSet;
use serde::{Deserialize, Serialize};

use super::client::UpstreamClient;
use super::discovery::{Discovered, discover};
use super::vault::Vault;
use crate::clock::Clock;
use crate::gateway::config::UpstreamConfig;
use crate::gateway::listen::{Change, Event, ListenHub, Source};
use crate::mcp::client_link::ClientLink;
use crate::outbound::{Outbound, OutboundSettings, Redirects, read_capped};
use crate::store::{Store, UpstreamConnectRecord};

/// Largest token or registration response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// What the callback needs back from the request it answers.
#[derive(Serialize, Deserialize)]
struct StateDetails {
    token_endpoint: String,
    client_id: String,
    /// The client's `token_endpoint_auth_method` and the server's issuer
    /// (the assertion's audience); absent in states written before
    /// `private_key_jwt` (then: a secret if configured, else `none`).
    #[serde(default)]
    auth_method: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    scope: Option<String>,
    resource: String,
    /// The upstream's URL when the request was sent: the callback refuses
    /// to exchange the code if a reload changed it meanwhile.
    #[serde(default)]
    url: Option<String>,
}

/// A user id and an upstream name.
pub(super) type UserUpstream = (String, String);

/// A session waiting for a connection: told `tools/list_changed`, and
/// `notifications/elicitation/complete` for its elicitation (MCP
/// 2025-11-25, URL mode) when it was sent one.
pub(super) struct Waiting {
    link: ClientLink,
    elicitation_id: Option<String>,
}

/// The notification that ends a URL-mode elicitation (MCP 2025-11-25,
/// `notifications/elicitation/complete`); rmcp has no type for it.
pub const ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";

pub struct UpstreamOAuth {
    pub vault: Vault,
    pub store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    server_key: Secret<Vec<u8>>,
    /// mcpgate's client signing key (from the server key; `private_key_jwt`).
    pub(super) signing: ClientSigningKey,
    /// The public URL (no trailing slash).
    pub(super) public_url: String,
    pub(super) http: reqwest::Client,
    /// The `auth = "oauth"` upstreams in force, by name; a reload swaps
    /// the map (`super::upstreams`), readers clone the `Arc`.
    pub(super) upstreams: RwLock<Arc<HashMap<String, UpstreamConfig>>>,
    pub(super) discovered: Mutex<HashMap<String, Discovered>>,
    /// Sessions that asked to connect, told when the connection is made;
    /// with the id of the URL-mode elicitation each was sent, if any.
    pub(super) waiting: Mutex<HashMap<UserUpstream, Vec<Waiting>>>,
    pub(super) flights: Mutex<HashMap<UserUpstream, Arc<tokio::sync::Mutex<()>>>>,
    listen: Mutex<Option<Arc<ListenHub>>>,
    /// Where connections made and ended are announced (`super::news`).
    pub(super) bus: OnceLock<Arc<dyn crate::cluster::Bus>>,
    /// The scope an upstream asked for in its last `403 insufficient_scope`
    /// to a user's request (`super::step_up`), until the gateway takes it.
    pub(super) step_ups: Mutex<super::step_up::StepUps>,
}

impl UpstreamOAuth {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        server_key: &[u8],
        public_url: &str,
        upstreams: &[UpstreamConfig],
        outbound: &OutboundSettings,
    ) -> Result<Self, String> {
        let http = Outbound::request_response(Redirects::Never, std::time::Duration::from_secs(15))
            .settings(outbound)
            .build()?;
        Ok(Self {
            vault: Vault::new(store.clone(), server_key),
            store,
            clock,
            server_key: Secret::new(server_key.to_vec()),
            signing: ClientSigningKey::derive(server_key),
            public_url: public_url.trim_end_matches('/').to_string(),
            http,
            upstreams: RwLock::new(Arc::new(super::upstreams::by_name(upstreams))),
            discovered: Mutex::default(),
            waiting: Mutex::default(),
            flights: Mutex::default(),
            listen: Mutex::default(),
            bus: OnceLock::new(),
            step_ups: Mutex::default(),
        })
    }

    /// The listen streams told when a user connects (`subscriptions/listen`).
    pub fn set_listen(&self, hub: Arc<ListenHub>) {
        if let Ok(mut l) = self.listen.lock() {
            *l = Some(hub);
        }
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/upstream/callback", self.public_url)
    }

    pub fn client_document_url(&self) -> String {
        format!("{}/oauth/client.json", self.public_url)
    }

    pub fn client_jwt_document_url(&self) -> String {
        format!("{}/oauth/client-jwt.json", self.public_url)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/oauth/jwks.json", self.public_url)
    }

    pub fn connections_url(&self) -> String {
        format!("{}/connections", self.public_url)
    }

    /// A one-time link for `user_id` to connect `upstream`; `link` (the
    /// asking session) is told when the connection is made, with
    /// `elicitation_id` (the URL-mode elicitation it is sent in) completed.
    /// `scope`: the scope to ask the upstream for, when a step-up needs a
    /// larger one than the configured or advertised scope.
    pub async fn connect_link(
        &self,
        user_id: &str,
        upstream: &str,
        link: Option<ClientLink>,
        elicitation_id: Option<String>,
        scope: Option<String>,
    ) -> Result<String, ConnectError> {
        if self.upstream(upstream).is_none() {
            return Err(ConnectError::UnknownUpstream);
        }
        let ticket = random_b64::<32>();
        let now = self.clock.now();
        self.store
            .create_upstream_connect(&UpstreamConnectRecord {
                key_hash: hash_secret(&ticket),
                kind: "link".into(),
                user_id: user_id.into(),
                upstream: upstream.into(),
                browser_hash: None,
                details: scope,
                created_at: now,
                expires_at: now + LINK_TTL,
            })
            .await
            .map_err(|e| ConnectError::Store(e.to_string()))?;
        if let Some(link) = link
            && let Ok(mut w) = self.waiting.lock()
        {
            w.entry((user_id.to_string(), upstream.to_string()))
                .or_default()
                .push(Waiting {
                    link,
                    elicitation_id,
                });
        }
        Ok(format!(
            "{}/connect/{upstream}?ticket={ticket}",
            self.public_url
        ))
    }

    /// The upstream's authorization server (discovered once per process).
    pub(super) async fn discovered(
        &self,
        cfg: &UpstreamConfig,
    ) -> Result<Discovered, ConnectError> {
        if let Some(d) = self
            .discovered
            .lock()
            .ok()
            .and_then(|m| m.get(&cfg.name).cloned())
        {
            return Ok(d);
        }
        let url = cfg.url.as_deref().ok_or(ConnectError::UnknownUpstream)?;
        let d = discover(&self.http, url)
            .await
            .map_err(ConnectError::Upstream)?;
        if let Ok(mut m) = self.discovered.lock() {
            m.insert(cfg.name.clone(), d.clone());
        }
        Ok(d)
    }

    /// Opens a connect link (`ticket` of `upstream`) for the signed-in
    /// `user_id` in the browser with session cookie `browser`: the location
    /// of the authorization request at the upstream. `scope`: a larger
    /// scope asked for by a step-up (else the configured or advertised one).
    pub async fn begin(
        &self,
        user_id: &str,
        upstream: &str,
        ticket: Option<&str>,
        browser: &str,
    ) -> Result<String, ConnectError> {
        let now = self.clock.now();
        // Without a ticket, the signed-in user connects from their own
        // connections page (the form's CSRF check is the caller's).
        let scope_override = match ticket {
            Some(ticket) => {
                let link = self
                    .store
                    .take_upstream_connect(&hash_secret(ticket), "link")
                    .await
                    .map_err(|e| ConnectError::Store(e.to_string()))?
                    .filter(|l| l.expires_at > now && l.upstream == upstream)
                    .ok_or(ConnectError::LinkInvalid)?;
                if link.user_id != user_id {
                    return Err(ConnectError::WrongUser);
                }
                link.details
            }
            None => None,
        };
        // A link made before a reload removed its upstream: said so.
        let cfg = self.upstream(upstream).ok_or(if ticket.is_some() {
            ConnectError::Withdrawn
        } else {
            ConnectError::UnknownUpstream
        })?;
        let cfg = &cfg;
        let found = self.discovered(cfg).await?;
        let client = self.client_for(cfg, &found).await?;
        let scope = scope_override.or_else(|| {
            let list = if cfg.oauth_scopes.is_empty() {
                &found.resource_scopes
            } else {
                &cfg.oauth_scopes
            };
            (!list.is_empty()).then(|| list.join(" "))
        });
        let state = random_b64::<32>();
        let details = StateDetails {
            token_endpoint: found.server.token_endpoint.clone(),
            client_id: client.client_id.clone(),
            auth_method: Some(client.auth.as_str().to_string()),
            issuer: Some(found.server.issuer.clone()),
            scope: scope.clone(),
            resource: found.resource.clone(),
            url: cfg.url.clone(),
        };
        self.store
            .create_upstream_connect(&UpstreamConnectRecord {
                key_hash: hash_secret(&state),
                kind: "state".into(),
                user_id: user_id.into(),
                upstream: upstream.into(),
                browser_hash: Some(hash_secret(browser)),
                details: serde_json::to_string(&details).ok(),
                created_at: now,
                expires_at: now + STATE_TTL,
            })
            .await
            .map_err(|e| ConnectError::Store(e.to_string()))?;
        let verifier = verifier(self.server_key.expose(), &state);
        let redirect_uri = self.redirect_uri();
        Ok(AuthorizationRequest {
            authorization_endpoint: &found.server.authorization_endpoint,
            client_id: &client.client_id,
            redirect_uri: &redirect_uri,
            scope: scope.as_deref(),
            state: &state,
            verifier: &verifier,
            resource: &found.resource,
        }
        .url()?
        .into())
    }

    /// The callback: `params` are its query parameters, `browser` the
    /// session cookie. Returns the upstream's name.
    pub async fn finish(
        &self,
        params: &HashMap<String, String>,
        browser: Option<&str>,
    ) -> Result<String, (Option<String>, ConnectError)> {
        let state = params
            .get("state")
            .ok_or((None, ConnectError::StateInvalid))?;
        let now = self.clock.now();
        let pending = self
            .store
            .take_upstream_connect(&hash_secret(state), "state")
            .await
            .map_err(|e| (None, ConnectError::Store(e.to_string())))?
            .ok_or((None, ConnectError::StateInvalid))?;
        let name = Some(pending.upstream.clone());
        let same_browser = browser
            .is_some_and(|b| pending.browser_hash.as_deref() == Some(hash_secret(b).as_str()));
        if pending.expires_at <= now || !same_browser {
            return Err((name, ConnectError::StateInvalid));
        }
        if let Some(error) = params.get("error") {
            return Err((name, ConnectError::Denied(error.clone())));
        }
        let code = params
            .get("code")
            .ok_or((name.clone(), ConnectError::Denied("no code".into())))?;
        let details: StateDetails = pending
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .ok_or((name.clone(), ConnectError::StateInvalid))?;
        // Removed, or its URL changed, by a reload since the request was
        // sent: the code is not exchanged (its token would be for a
        // server that is no longer this upstream).
        let cfg = self
            .upstream(&pending.upstream)
            .filter(|c| details.url.is_some() && c.url == details.url)
            .ok_or((name.clone(), ConnectError::Withdrawn))?;
        let cfg = &cfg;
        let url = cfg.url.clone().unwrap_or_default();
        let verifier = verifier(self.server_key.expose(), state);
        let form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("redirect_uri", self.redirect_uri()),
            ("code_verifier", verifier),
            ("resource", details.resource.clone()),
        ];
        let client = UpstreamClient {
            client_id: details.client_id.clone(),
            auth: details
                .auth_method
                .as_deref()
                .and_then(ClientAuthMethod::parse)
                .unwrap_or(if self.client_secret(cfg).is_some() {
                    ClientAuthMethod::ClientSecretBasic
                } else {
                    ClientAuthMethod::None
                }),
        };
        let tokens = self
            .token_request(
                cfg,
                &details.token_endpoint,
                &client,
                details.issuer.as_deref().unwrap_or_default(),
                form,
                details.scope.as_deref(),
            )
            .await
            .map_err(|e| (name.clone(), ConnectError::Upstream(e)))?;
        self.vault
            .connect(
                &pending.user_id,
                &pending.upstream,
                &url,
                &tokens,
                None,
                now,
            )
            .await
            .map_err(|e| (name.clone(), ConnectError::Store(e.to_string())))?;
        tracing::info!(event = "upstream_oauth.connected", upstream = %pending.upstream, user = %pending.user_id, "upstream account connected");
        self.announce(&pending.user_id, &pending.upstream, true)
            .await;
        Ok(pending.upstream)
    }

    /// Completes the URL-mode elicitation each of the user's sessions that
    /// asked to connect was sent, and tells the user's listen streams that
    /// the upstream's tools changed; with `tell_waiting`, also tells the
    /// waiting sessions (the gateway, which knows all of the user's
    /// sessions, tells them all instead: `Gateway::connection_news`). Only
    /// `user_id`'s sessions are waiting under `(user_id, upstream)`.
    pub async fn tell_connected(&self, user_id: &str, upstream: &str, tell_waiting: bool) {
        let waiting = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&(user_id.to_string(), upstream.to_string())))
            .unwrap_or_default();
        for w in waiting {
            if let Some(id) = w.elicitation_id {
                let complete = rmcp::model::CustomNotification::new(
                    ELICITATION_COMPLETE,
                    Some(serde_json::json!({ "elicitationId": id })),
                );
                let _ = w
                    .link
                    .notify(rmcp::model::ServerNotification::CustomNotification(
                        complete,
                    ))
                    .await;
            }
            if tell_waiting {
                let _ = w.link.notify_tool_list_changed().await;
            }
        }
        let hub = self.listen.lock().ok().and_then(|l| l.clone());
        if let Some(hub) = hub {
            hub.publish(
                &Source {
                    upstream: upstream.to_string(),
                    owner: Some(user_id.to_string()),
                },
                Event::ListChanged(Change::Tools),
            );
        }
    }

    /// A token request at `endpoint` of the authorization server `issuer`
    /// as `client` (authenticated by its method, [`Self::authenticate`]);
    /// the response read into a token set.
    pub(super) async fn token_request(
        &self,
        cfg: &UpstreamConfig,
        endpoint: &str,
        client: &UpstreamClient,
        issuer: &str,
        mut form: Vec<(&'static str, String)>,
        requested_scope: Option<&str>,
    ) -> Result<TokenSet, String> {
        let req = self
            .http
            .post(endpoint)
            .header(reqwest::header::ACCEPT, "application/json");
        let req = self.authenticate(cfg, req, &mut form, client, issuer)?;
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let response = req
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("token endpoint: {}", crate::outbound::error_chain(&e)))?;
        let status = response.status();
        let bytes = read_capped(response, MAX_RESPONSE)
            .await
            .map_err(|_| "token endpoint: the response could not be read".to_string())?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(format!("token endpoint answered {error}"));
        }
        TokenSet::from_response(&bytes, self.clock.now(), requested_scope)
            .map_err(|e| format!("token endpoint: {e}"))
    }

    pub(super) fn client_secret(&self, cfg: &UpstreamConfig) -> Option<Secret<String>> {
        cfg.oauth_client_secret_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    }
}
