//! Storage behind one trait.
//!
//! [`Store`] is everything mcpgate persists: users, clients, authorization
//! codes, consents, access and refresh tokens, login sessions and server
//! keys. It is implemented on SQLite ([`sqlite::SqliteStore`]) and on
//! PostgreSQL ([`postgres::PgStore`], which several instances can share);
//! both run the same contract test suite (`tests/api/store_contract.rs`).
//! Both keep their SQL in modules with the same functions, and [`delegate`]
//! writes the one trait implementation that calls them for either backend.
//!
//! The store holds no protocol rules. It offers the atomic steps the rules
//! need: redeeming a code and storing its tokens in one transaction
//! ([`Store::redeem_code`]), and rotating a refresh token only if it has not
//! been rotated yet ([`Store::rotate_refresh_token`]), so that two requests
//! racing on the same code or token cannot both win.

pub mod account;
pub mod admin;
pub mod audit;
pub mod cluster;
mod delegate;
pub mod postgres;
pub mod sqlite;
pub mod tasks;
pub mod upstream_oauth;
pub mod usernames;

use async_trait::async_trait;
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{
    AccessToken, AuthCode, CachedDocument, Client, Consent, LoginSession, RefreshToken, UnixTime,
    User,
};

pub use account::UserGrant;
pub use admin::GrantSummary;
pub use audit::{AuditOrder, AuditQuery, AuditRecord};
pub use cluster::{MailRecord, McpSessionRecord, SseMessageRecord, SseSessionRecord};
pub use mcpgate_core::federation::{PendingLogin, UserIdentity};
pub use tasks::{TaskRecord, TaskUpdate};
pub use upstream_oauth::{UpstreamClientRecord, UpstreamConnectRecord, UpstreamTokenRecord};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique value (a username, a client id) already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached now (connection refused or lost, the
    /// server shutting down or starting up, no free connection in time):
    /// worth retrying shortly; answered with 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back into a record.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Stored usernames that become the same once normalised
    /// ([`usernames`]); found by [`Store::migrate`], which then changes
    /// nothing.
    #[error("{0}")]
    UsernameCollisions(usernames::Collisions),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations, then brings stored usernames to their
    /// normalised form; fails with `UsernameCollisions` (after the schema
    /// migrations, rewriting no name) if some would collide ([`usernames`]).
    async fn migrate(&self) -> StoreResult<()>;

    // ---- users ----
    /// Fails with `Conflict` if the username is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// `username` is normalised (`Username::normalized`: NFKC, then
    /// lowercase) before the lookup, so any case or width finds the user.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Returns false if there is no such user; fails with `Conflict` if the
    /// name is taken.
    async fn rename_user(
        &self,
        user_id: &str,
        username: &mcpgate_core::domain::Username,
    ) -> StoreResult<bool>;
    /// All users, ordered by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// Returns false if there is no such user. Also ends the user's login sessions.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool>;
    /// Removes the user and everything that belongs to them (sessions,
    /// consents, codes, tokens). Returns false if there is no such user.
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool>;

    // ---- groups ----
    /// Adds the user to the group (creating the group) with this source;
    /// false if that membership existed.
    async fn add_group_member(
        &self,
        user_id: &str,
        group: &str,
        source: &mcpgate_core::model::GroupSource,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Removes one membership (of this source); false if there was none.
    /// The group itself stays.
    async fn remove_group_member(
        &self,
        user_id: &str,
        group: &str,
        source: &mcpgate_core::model::GroupSource,
    ) -> StoreResult<bool>;
    /// The user's memberships, ordered by group then source.
    async fn groups_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<mcpgate_core::model::GroupMembership>>;
    /// Every group with its number of members, ordered by name.
    async fn list_groups(&self) -> StoreResult<Vec<mcpgate_core::model::GroupSummary>>;
    /// Makes `groups` the user's memberships of `source` (an identity
    /// provider at sign-in), in one transaction; other sources stay.
    async fn replace_source_groups(
        &self,
        user_id: &str,
        source: &mcpgate_core::model::GroupSource,
        groups: &[String],
        now: UnixTime,
    ) -> StoreResult<()>;

    // ---- clients ----
    /// Fails with `Conflict` if the client id exists.
    async fn create_client(&self, client: &Client) -> StoreResult<()>;
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>>;
    /// All clients, ordered by issue time.
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Removes the client and its codes, tokens and consents. Returns false
    /// if there is no such client.
    async fn delete_client(&self, id: &ClientId) -> StoreResult<bool>;
    /// Records that the client was used now.
    async fn touch_client(&self, id: &ClientId, now: UnixTime) -> StoreResult<()>;
    /// Removes clients never used and issued before `issued_before`
    /// (pre-registered clients are kept);
    /// returns how many.
    async fn delete_unused_clients(&self, issued_before: UnixTime) -> StoreResult<u64>;

    /// A client identified by its metadata document, with its cache times
    /// (`None` if unknown, or if the id belongs to a client of another kind).
    async fn client_document(&self, id: &ClientId) -> StoreResult<Option<CachedDocument>>;
    /// Stores a freshly fetched metadata document: creates the client
    /// (kind `metadata_document`) or replaces its metadata and cache times,
    /// keeping `issued_at` and `last_used_at`. A client of another kind with
    /// the same id is left alone (`Conflict`).
    async fn save_client_document(&self, doc: &CachedDocument) -> StoreResult<()>;

    // ---- consents ----
    /// The user's consent to the client for one redirect URI (its
    /// [`consent_key`](mcpgate_core::domain::RedirectUri::consent_key)).
    async fn consent(
        &self,
        user_id: &str,
        client_id: &ClientId,
        redirect_uri: &str,
    ) -> StoreResult<Option<Consent>>;
    /// Inserts or replaces the user's consent for the client and redirect URI.
    async fn save_consent(&self, consent: &Consent) -> StoreResult<()>;

    // ---- login sessions ----
    async fn create_login_session(&self, session: &LoginSession) -> StoreResult<()>;
    /// The session, if it exists and has not expired at `now`.
    async fn login_session(
        &self,
        session_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<LoginSession>>;
    async fn delete_login_session(&self, session_hash: &str) -> StoreResult<()>;

    // ---- authorization codes ----
    async fn create_code(&self, code: &AuthCode) -> StoreResult<()>;
    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>>;
    /// In one transaction: marks the code used if it is unused, and stores
    /// the tokens issued for it. Returns false, storing nothing, if the code
    /// was already used (another request won the race).
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: UnixTime,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool>;
    /// Marks the code used without issuing tokens (after a failed check).
    async fn mark_code_used(&self, code_hash: &str, now: UnixTime) -> StoreResult<()>;

    // ---- tokens ----
    async fn access_token(&self, token_hash: &str) -> StoreResult<Option<AccessToken>>;
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// In one transaction: if the refresh token `old_hash` is neither rotated
    /// nor revoked, marks it rotated at `now` with `refresh` as its
    /// successor, and stores `access` and `refresh`. Returns false, storing
    /// nothing, otherwise.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        now: UnixTime,
        access: &AccessToken,
        refresh: &RefreshToken,
    ) -> StoreResult<bool>;
    /// Revokes every access and refresh token of the grant (and marks its
    /// code used); returns how many tokens were revoked.
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64>;
    /// Revokes one access token; returns false if it was unknown or already revoked.
    async fn revoke_access_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<bool>;
    /// Stores an access token issued without a code or refresh token (the
    /// client credentials grant: a service token, `user_id` `None`).
    async fn create_access_token(&self, token: &AccessToken) -> StoreResult<()>;
    /// Of `token_hashes`, those that are no longer active: no such access
    /// token (never issued, or deleted with its user or client), revoked,
    /// or expired at `now` (in any order). The stream watcher asks about
    /// the tokens of open streams (`mcp::streams`); the answer is nearly
    /// always empty, which is why it names the dead ones.
    async fn dead_access_tokens(
        &self,
        token_hashes: &[String],
        now: UnixTime,
    ) -> StoreResult<Vec<String>>;
    /// A number that moves whenever an access token row is changed or
    /// deleted, by any process and any path (revocation, the cascade from a
    /// removed user or client, the purge); issuing one does not move it. The
    /// stream watcher asks [`Self::dead_access_tokens`] about the tokens it
    /// already checked only when this moved (`mcp::streams::watcher`).
    async fn access_token_changes(&self) -> StoreResult<i64>;
    /// The user's grants that still hold a live token, newest use first
    /// ([`account`]; the account page).
    async fn grants_of_user(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<UserGrant>>;
    /// Deletes the user's consents to the client (every redirect URI), so
    /// that its next authorization request asks the user again; returns
    /// how many there were.
    async fn forget_consents(&self, user_id: &str, client_id: &str) -> StoreResult<u64>;
    /// Number of unrevoked, unexpired access tokens of a client.
    async fn count_active_access_tokens(
        &self,
        client_id: &ClientId,
        now: UnixTime,
    ) -> StoreResult<u64>;

    // ---- client assertions (private_key_jwt) ----
    /// Records that the client used an assertion with this `jti` (its
    /// SHA-256 hex), remembered until `expires_at`. Returns true if this is
    /// the first use: no row exists, or the one that does expired before
    /// `now`. Atomic: of two concurrent uses (on any instances sharing the
    /// database) exactly one gets true (RFC 7523 §3 item 7).
    async fn use_assertion_jti(
        &self,
        client_id: &ClientId,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool>;

    // ---- maintenance ----
    /// Deletes codes, login sessions, tokens, assertion `jti`s and tasks
    /// that expired before `before`, and queued task answers created
    /// before it.
    async fn purge_expired(&self, before: UnixTime) -> StoreResult<u64>;

    // ---- audit log (`crate::audit`, append-only) ----
    /// Appends the records in one transaction (their `id`s are ignored:
    /// the store numbers them in order). On SQLite the batch goes through
    /// the group-commit writer.
    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()>;
    /// The records matching every filter of `query`, in its order, at most
    /// its limit (capped at `audit::MAX_SEARCH_LIMIT`).
    async fn search_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
    /// Deletes the records written before `before_ms` (Unix milliseconds);
    /// returns how many.
    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64>;

    // ---- server keys ----
    /// The key stored under `name`; if there is none, stores `candidate`
    /// and returns it. Instances sharing a database agree on the key.
    async fn server_key(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;

    // ---- federated sign-in (`crate::federation`) ----
    /// Stores a sign-in that went to an identity provider.
    async fn create_pending_login(&self, login: &PendingLogin) -> StoreResult<()>;
    /// Atomically removes and returns the pending sign-in with this state
    /// hash, if it was started by the browser with this binding hash;
    /// `None`, changing nothing, otherwise. Expiry is the caller's check.
    async fn take_pending_login(
        &self,
        state_hash: &str,
        browser_hash: &str,
    ) -> StoreResult<Option<PendingLogin>>;
    async fn identity(&self, provider_id: &str, subject: &str)
    -> StoreResult<Option<UserIdentity>>;
    /// The user's linked identities, ordered by provider and subject.
    async fn identities_of_user(&self, user_id: &str) -> StoreResult<Vec<UserIdentity>>;
    /// Fails with `Conflict` if the identity is already linked (to anyone).
    async fn link_identity(&self, identity: &UserIdentity) -> StoreResult<()>;
    /// Returns false if the identity was not linked.
    async fn unlink_identity(&self, provider_id: &str, subject: &str) -> StoreResult<bool>;
    /// In one transaction: creates the user and links the identity to it.
    /// Fails with `Conflict`, storing nothing, if the username is taken or
    /// the identity is already linked.
    async fn create_federated_user(&self, user: &User, identity: &UserIdentity) -> StoreResult<()>;

    // ---- cluster: state the instances share (`crate::cluster`) ----
    /// Records the owner of a Streamable HTTP session; a session keeps its
    /// first owner.
    async fn bind_mcp_session(
        &self,
        session_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Stores (or replaces) a Streamable HTTP session's rmcp state.
    async fn save_mcp_session_state(
        &self,
        session_id: &str,
        state: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
    async fn mcp_session(&self, session_id: &str) -> StoreResult<Option<McpSessionRecord>>;
    /// Records a request for the session at `now`.
    async fn touch_mcp_session(&self, session_id: &str, now: UnixTime) -> StoreResult<()>;
    async fn delete_mcp_session(&self, session_id: &str) -> StoreResult<()>;
    /// Fails with `Conflict` if the session id exists.
    async fn create_sse_session(&self, session: &SseSessionRecord) -> StoreResult<()>;
    async fn sse_session(&self, session_id: &str) -> StoreResult<Option<SseSessionRecord>>;
    /// Removes the session and its queued messages.
    async fn delete_sse_session(&self, session_id: &str) -> StoreResult<()>;
    /// Marks every SSE session held by `instance_id` as seen at `now`;
    /// returns how many.
    async fn heartbeat_sse_sessions(&self, instance_id: &str, now: UnixTime) -> StoreResult<u64>;
    /// Queues a message for the session; returns its id, or `None` (storing
    /// nothing) if the session does not exist.
    async fn push_sse_message(
        &self,
        session_id: &str,
        caller: &str,
        message: &str,
        now: UnixTime,
    ) -> StoreResult<Option<i64>>;
    /// Removes and returns the session's queued messages, oldest first.
    async fn take_sse_messages(&self, session_id: &str) -> StoreResult<Vec<SseMessageRecord>>;
    /// Deletes Streamable HTTP sessions last seen before `mcp_seen_before`
    /// and SSE sessions (with their messages) last seen before
    /// `sse_seen_before`; returns how many sessions.
    async fn purge_cluster_sessions(
        &self,
        mcp_seen_before: UnixTime,
        sse_seen_before: UnixTime,
    ) -> StoreResult<u64>;

    // ---- tasks (SEP-2663, `crate::tasks`) ----
    /// Stores a new task; fails with `Conflict` if the id exists.
    async fn create_task(&self, task: &TaskRecord) -> StoreResult<()>;
    /// The task with this id, whoever owns it and even if expired (the
    /// caller checks both).
    async fn task(&self, task_id: &str) -> StoreResult<Option<TaskRecord>>;
    /// Sets the task's status and payload at `now_ms` (Unix milliseconds)
    /// if its current status is not terminal; returns whether it changed.
    /// Atomic: of a result and a cancellation racing, exactly one wins.
    async fn update_task(
        &self,
        task_id: &str,
        update: &TaskUpdate,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Queues answers (`tasks/update`'s `inputResponses`, JSON) for the
    /// instance running the task; returns their id.
    async fn push_task_input(
        &self,
        task_id: &str,
        responses: &str,
        now: UnixTime,
    ) -> StoreResult<i64>;
    /// The queued answers of the task not taken yet, oldest first, now
    /// taken (each is handed out once).
    async fn take_task_inputs(&self, task_id: &str) -> StoreResult<Vec<(i64, String)>>;
    /// Records what became of queued answers (`""`: accepted; else the
    /// error, JSON).
    async fn settle_task_input(&self, id: i64, outcome: &str) -> StoreResult<()>;
    /// The outcome of queued answers once settled, removing them; `None`
    /// while they are not.
    async fn take_task_input_outcome(&self, id: i64) -> StoreResult<Option<String>>;

    // ---- mail between instances ----
    /// Leaves a message for `mail.recipient`. Fails with `Conflict` if the
    /// id exists.
    async fn post_cluster_mail(&self, mail: &MailRecord) -> StoreResult<()>;
    /// Removes and returns the messages for `recipient`, oldest first; also
    /// deletes anybody's messages created before `expired_before`.
    async fn take_cluster_mail(
        &self,
        recipient: &str,
        expired_before: UnixTime,
    ) -> StoreResult<Vec<MailRecord>>;

    // ---- upstream OAuth (`crate::upstream_oauth`) ----
    /// The vault's key ids with their creation times, newest first.
    async fn vault_keys(&self) -> StoreResult<Vec<(String, UnixTime)>>;
    /// Adds a vault key id; fails with `Conflict` if it exists.
    async fn add_vault_key(&self, kid: &str, now: UnixTime) -> StoreResult<()>;
    async fn upstream_token(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> StoreResult<Option<UpstreamTokenRecord>>;
    /// The user's upstream tokens, ordered by upstream.
    async fn upstream_tokens_of_user(&self, user_id: &str)
    -> StoreResult<Vec<UpstreamTokenRecord>>;
    /// Every user's upstream tokens (the vault key rotation).
    async fn all_upstream_tokens(&self) -> StoreResult<Vec<UpstreamTokenRecord>>;
    /// With `expected_version` `None`: stores the row, replacing any row of
    /// the user and upstream (a new connection). With `Some(v)`: replaces
    /// the sealed tokens, expiry, scope, account, key id and version only if
    /// the stored row still has version `v` (of two writers that read the
    /// same row, exactly one wins), keeping `created_at` and `last_used_at`.
    /// Either way the refresh lease is released. Returns whether it wrote.
    async fn put_upstream_token(
        &self,
        token: &UpstreamTokenRecord,
        expected_version: Option<i64>,
    ) -> StoreResult<bool>;
    /// Takes the lease on refreshing the row until `until`, if the row still
    /// has `version` and no other lease is held at `now`. Atomic: of
    /// concurrent callers on any instances, exactly one gets true.
    async fn lease_upstream_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        version: i64,
        now: UnixTime,
        until: UnixTime,
    ) -> StoreResult<bool>;
    /// Records a use of the user's connection at `now`.
    async fn touch_upstream_token(
        &self,
        user_id: &str,
        upstream: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Returns false if there was no such row.
    async fn delete_upstream_token(&self, user_id: &str, upstream: &str) -> StoreResult<bool>;
    async fn upstream_client(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> StoreResult<Option<UpstreamClientRecord>>;
    /// Fails with `Conflict` if a client for the issuer and redirect URI exists.
    async fn create_upstream_client(&self, client: &UpstreamClientRecord) -> StoreResult<()>;
    /// Returns false if there was none.
    async fn delete_upstream_client(&self, issuer: &str, redirect_uri: &str) -> StoreResult<bool>;
    /// Fails with `Conflict` if the key hash exists.
    async fn create_upstream_connect(&self, connect: &UpstreamConnectRecord) -> StoreResult<()>;
    /// Atomically removes and returns the connect flow with this key hash
    /// and kind; `None` otherwise. Expiry and the browser binding are the
    /// caller's checks.
    async fn take_upstream_connect(
        &self,
        key_hash: &str,
        kind: &str,
    ) -> StoreResult<Option<UpstreamConnectRecord>>;

    // ---- admin console (`crate::admin`, [`admin`]) ----
    /// Gives or takes the admin role; false if there is no such user.
    async fn set_user_admin(&self, user_id: &str, admin: bool) -> StoreResult<bool>;
    /// The ids of the users with the admin role, ordered by id.
    async fn admin_user_ids(&self) -> StoreResult<Vec<String>>;
    /// `Some(now)` disables the user, in one transaction: marks the account,
    /// ends its login sessions, marks its unused codes used and revokes
    /// every access and refresh token issued to it. `None` enables it again
    /// (nothing revoked comes back). False if there is no such user.
    async fn set_user_disabled(&self, user_id: &str, at: Option<UnixTime>) -> StoreResult<bool>;
    /// The ids of the disabled users, ordered by id.
    async fn disabled_user_ids(&self) -> StoreResult<Vec<String>>;
    /// The grants live at `now` (one of their tokens neither revoked nor
    /// expired), of this user and/or this client when given, newest use
    /// first.
    async fn live_grants(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<Vec<GrantSummary>>;
}
