//! Storage behind one trait.
//!
//! [`Store`] is everything mcpgate persists: users, clients, authorization
//! codes, consents, access and refresh tokens, login sessions and server
//! keys. It is implemented on SQLite ([`sqlite::SqliteStore`]); a PostgreSQL
//! implementation will follow and run the same contract test suite
//! (`tests/api/store_contract.rs`).
//!
//! The store holds no protocol rules. It offers the atomic steps the rules
//! need: redeeming a code and storing its tokens in one transaction
//! ([`Store::redeem_code`]), and rotating a refresh token only if it has not
//! been rotated yet ([`Store::rotate_refresh_token`]), so that two requests
//! racing on the same code or token cannot both win.

pub mod sqlite;

use async_trait::async_trait;
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{
    AccessToken, AuthCode, Client, Consent, LoginSession, RefreshToken, UnixTime, User,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (a username, a client id) already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(String),
    /// A stored row could not be read back into a record.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;

    // ---- users ----
    /// Fails with `Conflict` if the username is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// All users, ordered by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// Returns false if there is no such user. Also ends the user's login sessions.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool>;
    /// Removes the user and everything that belongs to them (sessions,
    /// consents, codes, tokens). Returns false if there is no such user.
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool>;

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
    /// Removes clients never used and issued before `issued_before`;
    /// returns how many.
    async fn delete_unused_clients(&self, issued_before: UnixTime) -> StoreResult<u64>;

    // ---- consents ----
    async fn consent(&self, user_id: &str, client_id: &ClientId) -> StoreResult<Option<Consent>>;
    /// Inserts or replaces the user's consent for the client.
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
    /// Number of unrevoked, unexpired access tokens of a client.
    async fn count_active_access_tokens(
        &self,
        client_id: &ClientId,
        now: UnixTime,
    ) -> StoreResult<u64>;

    // ---- maintenance ----
    /// Deletes codes, login sessions and tokens that expired before `before`.
    async fn purge_expired(&self, before: UnixTime) -> StoreResult<u64>;

    // ---- server keys ----
    /// The key stored under `name`; if there is none, stores `candidate`
    /// and returns it. Instances sharing a database agree on the key.
    async fn server_key(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
}
