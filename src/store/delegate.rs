//! The one `impl Store` of every backend.
//!
//! Each backend (`sqlite`, `postgres`) keeps its SQL in modules of the same
//! names and functions (`users`, `clients`, `tokens`, `identities`,
//! `cluster`, `maintenance`, `tasks`, `upstream_oauth`), each taking the backend's pool as its first
//! argument; the token endpoint's two writes (`redeem_code`,
//! `rotate_refresh_token`) take the store itself, so that SQLite can send
//! them to its group-commit writer. [`store_impl!`] writes the trait implementation that delegates
//! every method to them, once for both backends, so that a new `Store`
//! method is added here once and then as a function in each backend.
//! Names in the expansion (the record types, `StoreResult`, the modules)
//! resolve in the backend module that invokes the macro.

macro_rules! store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn migrate(&self) -> StoreResult<()> {
                maintenance::migrate(&self.pool).await
            }

            // ---- users ----
            async fn create_user(&self, user: &User) -> StoreResult<()> {
                users::create_user(&self.pool, user).await
            }
            async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
                users::user_by_id(&self.pool, id).await
            }
            async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
                users::user_by_username(&self.pool, username).await
            }
            async fn rename_user(
                &self,
                user_id: &str,
                username: &mcpgate_core::domain::Username,
            ) -> StoreResult<bool> {
                users::rename_user(&self.pool, user_id, username).await
            }
            async fn list_users(&self) -> StoreResult<Vec<User>> {
                users::list_users(&self.pool).await
            }
            async fn count_users(&self) -> StoreResult<u64> {
                users::count_users(&self.pool).await
            }
            async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool> {
                users::set_password(&self.pool, user_id, password_hash).await
            }
            async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
                users::delete_user(&self.pool, user_id).await
            }

            // ---- clients ----
            async fn create_client(&self, client: &Client) -> StoreResult<()> {
                clients::create_client(&self.pool, client).await
            }
            async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
                clients::client(&self.pool, id).await
            }
            async fn list_clients(&self) -> StoreResult<Vec<Client>> {
                clients::list_clients(&self.pool).await
            }
            async fn delete_client(&self, id: &ClientId) -> StoreResult<bool> {
                clients::delete_client(&self.pool, id).await
            }
            async fn touch_client(&self, id: &ClientId, now: UnixTime) -> StoreResult<()> {
                clients::touch_client(&self.pool, id, now).await
            }
            async fn delete_unused_clients(&self, issued_before: UnixTime) -> StoreResult<u64> {
                clients::delete_unused_clients(&self.pool, issued_before).await
            }

            async fn client_document(
                &self,
                id: &ClientId,
            ) -> StoreResult<Option<mcpgate_core::model::CachedDocument>> {
                clients::client_document(&self.pool, id).await
            }
            async fn save_client_document(
                &self,
                doc: &mcpgate_core::model::CachedDocument,
            ) -> StoreResult<()> {
                clients::save_client_document(&self.pool, doc).await
            }

            // ---- consents ----
            async fn consent(
                &self,
                user_id: &str,
                client_id: &ClientId,
                redirect_uri: &str,
            ) -> StoreResult<Option<Consent>> {
                clients::consent(&self.pool, user_id, client_id, redirect_uri).await
            }
            async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
                clients::save_consent(&self.pool, consent).await
            }

            // ---- login sessions ----
            async fn create_login_session(&self, session: &LoginSession) -> StoreResult<()> {
                users::create_login_session(&self.pool, session).await
            }
            async fn login_session(
                &self,
                session_hash: &str,
                now: UnixTime,
            ) -> StoreResult<Option<LoginSession>> {
                users::login_session(&self.pool, session_hash, now).await
            }
            async fn delete_login_session(&self, session_hash: &str) -> StoreResult<()> {
                users::delete_login_session(&self.pool, session_hash).await
            }

            // ---- authorization codes ----
            async fn create_code(&self, code: &AuthCode) -> StoreResult<()> {
                tokens::create_code(&self.pool, code).await
            }
            async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
                tokens::code(&self.pool, code_hash).await
            }
            async fn redeem_code(
                &self,
                code_hash: &str,
                now: UnixTime,
                access: &AccessToken,
                refresh: Option<&RefreshToken>,
            ) -> StoreResult<bool> {
                tokens::redeem_code(self, code_hash, now, access, refresh).await
            }
            async fn mark_code_used(&self, code_hash: &str, now: UnixTime) -> StoreResult<()> {
                tokens::mark_code_used(&self.pool, code_hash, now).await
            }

            // ---- tokens ----
            async fn access_token(&self, token_hash: &str) -> StoreResult<Option<AccessToken>> {
                tokens::access_token(&self.pool, token_hash).await
            }
            async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
                tokens::refresh_token(&self.pool, token_hash).await
            }
            async fn rotate_refresh_token(
                &self,
                old_hash: &str,
                now: UnixTime,
                access: &AccessToken,
                refresh: &RefreshToken,
            ) -> StoreResult<bool> {
                tokens::rotate_refresh_token(self, old_hash, now, access, refresh).await
            }
            async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
                tokens::revoke_grant(&self.pool, grant_id, now).await
            }
            async fn revoke_access_token(
                &self,
                token_hash: &str,
                now: UnixTime,
            ) -> StoreResult<bool> {
                tokens::revoke_access_token(&self.pool, token_hash, now).await
            }
            async fn create_access_token(&self, token: &AccessToken) -> StoreResult<()> {
                tokens::create_access_token(&self.pool, token).await
            }
            async fn active_access_tokens(
                &self,
                token_hashes: &[String],
                now: UnixTime,
            ) -> StoreResult<Vec<String>> {
                tokens::active_access_tokens(&self.pool, token_hashes, now).await
            }
            async fn count_active_access_tokens(
                &self,
                client_id: &ClientId,
                now: UnixTime,
            ) -> StoreResult<u64> {
                tokens::count_active_access_tokens(&self.pool, client_id, now).await
            }

            // ---- maintenance ----
            // ---- client assertions ----
            async fn use_assertion_jti(
                &self,
                client_id: &ClientId,
                jti_hash: &str,
                expires_at: UnixTime,
                now: UnixTime,
            ) -> StoreResult<bool> {
                maintenance::use_assertion_jti(&self.pool, client_id, jti_hash, expires_at, now)
                    .await
            }

            async fn purge_expired(&self, before: UnixTime) -> StoreResult<u64> {
                maintenance::purge_expired(&self.pool, before).await
            }

            // ---- server keys ----
            async fn server_key(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
                maintenance::server_key(&self.pool, name, candidate).await
            }

            // ---- federated sign-in ----
            async fn create_pending_login(&self, login: &PendingLogin) -> StoreResult<()> {
                identities::create_pending_login(&self.pool, login).await
            }
            async fn take_pending_login(
                &self,
                state_hash: &str,
                browser_hash: &str,
            ) -> StoreResult<Option<PendingLogin>> {
                identities::take_pending_login(&self.pool, state_hash, browser_hash).await
            }
            async fn identity(
                &self,
                provider: &str,
                subject: &str,
            ) -> StoreResult<Option<UserIdentity>> {
                identities::identity(&self.pool, provider, subject).await
            }
            async fn identities_of_user(&self, user_id: &str) -> StoreResult<Vec<UserIdentity>> {
                identities::identities_of_user(&self.pool, user_id).await
            }
            async fn link_identity(&self, identity: &UserIdentity) -> StoreResult<()> {
                identities::link_identity(&self.pool, identity).await
            }
            async fn unlink_identity(&self, provider: &str, subject: &str) -> StoreResult<bool> {
                identities::unlink_identity(&self.pool, provider, subject).await
            }
            async fn create_federated_user(
                &self,
                user: &User,
                id: &UserIdentity,
            ) -> StoreResult<()> {
                identities::create_federated_user(&self.pool, user, id).await
            }

            // ---- cluster ----
            async fn bind_mcp_session(
                &self,
                id: &str,
                user_id: &str,
                now: UnixTime,
            ) -> StoreResult<()> {
                cluster::bind_mcp_session(&self.pool, id, user_id, now).await
            }
            async fn save_mcp_session_state(
                &self,
                id: &str,
                state: &str,
                now: UnixTime,
            ) -> StoreResult<()> {
                cluster::save_mcp_session_state(&self.pool, id, state, now).await
            }
            async fn mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>> {
                cluster::mcp_session(&self.pool, id).await
            }
            async fn touch_mcp_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
                cluster::touch_mcp_session(&self.pool, id, now).await
            }
            async fn delete_mcp_session(&self, id: &str) -> StoreResult<()> {
                cluster::delete_mcp_session(&self.pool, id).await
            }
            async fn create_sse_session(&self, session: &SseSessionRecord) -> StoreResult<()> {
                cluster::create_sse_session(&self.pool, session).await
            }
            async fn sse_session(&self, id: &str) -> StoreResult<Option<SseSessionRecord>> {
                cluster::sse_session(&self.pool, id).await
            }
            async fn delete_sse_session(&self, id: &str) -> StoreResult<()> {
                cluster::delete_sse_session(&self.pool, id).await
            }
            async fn heartbeat_sse_sessions(
                &self,
                instance: &str,
                now: UnixTime,
            ) -> StoreResult<u64> {
                cluster::heartbeat_sse_sessions(&self.pool, instance, now).await
            }
            async fn push_sse_message(
                &self,
                id: &str,
                caller: &str,
                message: &str,
                now: UnixTime,
            ) -> StoreResult<Option<i64>> {
                cluster::push_sse_message(&self.pool, id, caller, message, now).await
            }
            async fn take_sse_messages(&self, id: &str) -> StoreResult<Vec<SseMessageRecord>> {
                cluster::take_sse_messages(&self.pool, id).await
            }
            async fn purge_cluster_sessions(
                &self,
                mcp: UnixTime,
                sse: UnixTime,
            ) -> StoreResult<u64> {
                cluster::purge_cluster_sessions(&self.pool, mcp, sse).await
            }

            // ---- tasks ----
            async fn create_task(&self, task: &$crate::store::TaskRecord) -> StoreResult<()> {
                tasks::create_task(&self.pool, task).await
            }
            async fn task(&self, task_id: &str) -> StoreResult<Option<$crate::store::TaskRecord>> {
                tasks::task(&self.pool, task_id).await
            }
            async fn update_task(
                &self,
                task_id: &str,
                update: &$crate::store::TaskUpdate,
                now_ms: i64,
            ) -> StoreResult<bool> {
                tasks::update_task(&self.pool, task_id, update, now_ms).await
            }
            async fn push_task_input(
                &self,
                task_id: &str,
                responses: &str,
                now: UnixTime,
            ) -> StoreResult<i64> {
                tasks::push_task_input(&self.pool, task_id, responses, now).await
            }
            async fn take_task_inputs(&self, task_id: &str) -> StoreResult<Vec<(i64, String)>> {
                tasks::take_task_inputs(&self.pool, task_id).await
            }
            async fn settle_task_input(&self, id: i64, outcome: &str) -> StoreResult<()> {
                tasks::settle_task_input(&self.pool, id, outcome).await
            }
            async fn take_task_input_outcome(&self, id: i64) -> StoreResult<Option<String>> {
                tasks::take_task_input_outcome(&self.pool, id).await
            }

            // ---- mail between instances ----
            async fn post_cluster_mail(&self, mail: &MailRecord) -> StoreResult<()> {
                mail::post_cluster_mail(&self.pool, mail).await
            }
            async fn take_cluster_mail(
                &self,
                recipient: &str,
                expired_before: UnixTime,
            ) -> StoreResult<Vec<MailRecord>> {
                mail::take_cluster_mail(&self.pool, recipient, expired_before).await
            }

            // ---- upstream OAuth ----
            async fn vault_keys(&self) -> StoreResult<Vec<(String, UnixTime)>> {
                upstream_oauth::vault_keys(&self.pool).await
            }
            async fn add_vault_key(&self, kid: &str, now: UnixTime) -> StoreResult<()> {
                upstream_oauth::add_vault_key(&self.pool, kid, now).await
            }
            async fn upstream_token(
                &self,
                user_id: &str,
                upstream: &str,
            ) -> StoreResult<Option<$crate::store::UpstreamTokenRecord>> {
                upstream_oauth::upstream_token(&self.pool, user_id, upstream).await
            }
            async fn upstream_tokens_of_user(
                &self,
                user_id: &str,
            ) -> StoreResult<Vec<$crate::store::UpstreamTokenRecord>> {
                upstream_oauth::upstream_tokens_of_user(&self.pool, user_id).await
            }
            async fn all_upstream_tokens(
                &self,
            ) -> StoreResult<Vec<$crate::store::UpstreamTokenRecord>> {
                upstream_oauth::all_upstream_tokens(&self.pool).await
            }
            async fn put_upstream_token(
                &self,
                token: &$crate::store::UpstreamTokenRecord,
                expected_version: Option<i64>,
            ) -> StoreResult<bool> {
                upstream_oauth::put_upstream_token(&self.pool, token, expected_version).await
            }
            async fn lease_upstream_refresh(
                &self,
                user_id: &str,
                upstream: &str,
                version: i64,
                now: UnixTime,
                until: UnixTime,
            ) -> StoreResult<bool> {
                upstream_oauth::lease_upstream_refresh(
                    &self.pool, user_id, upstream, version, now, until,
                )
                .await
            }
            async fn touch_upstream_token(
                &self,
                user_id: &str,
                upstream: &str,
                now: UnixTime,
            ) -> StoreResult<()> {
                upstream_oauth::touch_upstream_token(&self.pool, user_id, upstream, now).await
            }
            async fn delete_upstream_token(
                &self,
                user_id: &str,
                upstream: &str,
            ) -> StoreResult<bool> {
                upstream_oauth::delete_upstream_token(&self.pool, user_id, upstream).await
            }
            async fn upstream_client(
                &self,
                issuer: &str,
                redirect_uri: &str,
            ) -> StoreResult<Option<$crate::store::UpstreamClientRecord>> {
                upstream_oauth::upstream_client(&self.pool, issuer, redirect_uri).await
            }
            async fn create_upstream_client(
                &self,
                client: &$crate::store::UpstreamClientRecord,
            ) -> StoreResult<()> {
                upstream_oauth::create_upstream_client(&self.pool, client).await
            }
            async fn delete_upstream_client(
                &self,
                issuer: &str,
                redirect_uri: &str,
            ) -> StoreResult<bool> {
                upstream_oauth::delete_upstream_client(&self.pool, issuer, redirect_uri).await
            }
            async fn create_upstream_connect(
                &self,
                connect: &$crate::store::UpstreamConnectRecord,
            ) -> StoreResult<()> {
                upstream_oauth::create_upstream_connect(&self.pool, connect).await
            }
            async fn take_upstream_connect(
                &self,
                key_hash: &str,
                kind: &str,
            ) -> StoreResult<Option<$crate::store::UpstreamConnectRecord>> {
                upstream_oauth::take_upstream_connect(&self.pool, key_hash, kind).await
            }
        }
    };
}

pub(crate) use store_impl;
