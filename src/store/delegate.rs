//! The one `impl Store` of every backend.
//!
//! Each backend (`sqlite`, `postgres`) keeps its SQL in modules of the same
//! names and functions (`users`, `groups`, `clients`, `tokens`, `identities`,
//! `cluster`, `maintenance`, `tasks`, `audit`, `upstream_oauth`, `account`, `admin`), each taking the backend's pool as its first
//! argument; the token endpoint's two writes (`redeem_code`,
//! `rotate_refresh_token`) and `append_audit` take the store itself, so that SQLite can send
//! them to its group-commit writer. [`store_impl!`] writes the trait implementation that delegates
//! every method to them, once for both backends, so that a new `Store`
//! method is added here once and then as a function in each backend.
//! Names in the expansion (the record types, `StoreResult`, the modules)
//! resolve in the backend module that invokes the macro (which imports
//! [`timed!`] too). Most calls are timed under their method's name
//! ([`timed!`]: `telemetry::metrics::timed_store`, the
//! `mcpgate_store_operation_duration_seconds` histogram) when metrics are on.

/// `timed_store` of the call under the method's name, awaited.
macro_rules! timed {
    ($name:ident, $call:expr) => {
        $crate::telemetry::metrics::timed_store(stringify!($name), $call).await
    };
}
pub(crate) use timed;

macro_rules! store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn migrate(&self) -> StoreResult<()> {
                timed!(migrate, maintenance::migrate(&self.pool))
            }

            // ---- users ----
            async fn create_user(&self, user: &User) -> StoreResult<()> {
                timed!(create_user, users::create_user(&self.pool, user))
            }
            async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
                timed!(user_by_id, users::user_by_id(&self.pool, id))
            }
            async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
                timed!(
                    user_by_username,
                    users::user_by_username(&self.pool, username)
                )
            }
            async fn rename_user(
                &self,
                user_id: &str,
                username: &mcpgate_core::domain::Username,
            ) -> StoreResult<bool> {
                timed!(
                    rename_user,
                    users::rename_user(&self.pool, user_id, username)
                )
            }
            async fn list_users(&self) -> StoreResult<Vec<User>> {
                timed!(list_users, users::list_users(&self.pool))
            }
            async fn count_users(&self) -> StoreResult<u64> {
                timed!(count_users, users::count_users(&self.pool))
            }
            async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool> {
                timed!(
                    set_password,
                    users::set_password(&self.pool, user_id, password_hash)
                )
            }
            async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
                timed!(delete_user, users::delete_user(&self.pool, user_id))
            }

            // ---- groups ----
            async fn add_group_member(
                &self,
                user_id: &str,
                group: &str,
                source: &mcpgate_core::model::GroupSource,
                now: UnixTime,
            ) -> StoreResult<bool> {
                groups::add_group_member(&self.pool, user_id, group, source, now).await
            }
            async fn remove_group_member(
                &self,
                user_id: &str,
                group: &str,
                source: &mcpgate_core::model::GroupSource,
            ) -> StoreResult<bool> {
                groups::remove_group_member(&self.pool, user_id, group, source).await
            }
            async fn groups_of_user(
                &self,
                user_id: &str,
            ) -> StoreResult<Vec<mcpgate_core::model::GroupMembership>> {
                groups::groups_of_user(&self.pool, user_id).await
            }
            async fn list_groups(&self) -> StoreResult<Vec<mcpgate_core::model::GroupSummary>> {
                groups::list_groups(&self.pool).await
            }
            async fn replace_source_groups(
                &self,
                user_id: &str,
                source: &mcpgate_core::model::GroupSource,
                groups: &[String],
                now: UnixTime,
            ) -> StoreResult<()> {
                groups::replace_source_groups(&self.pool, user_id, source, groups, now).await
            }

            // ---- clients ----
            async fn create_client(&self, client: &Client) -> StoreResult<()> {
                timed!(create_client, clients::create_client(&self.pool, client))
            }
            async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
                timed!(client, clients::client(&self.pool, id))
            }
            async fn list_clients(&self) -> StoreResult<Vec<Client>> {
                timed!(list_clients, clients::list_clients(&self.pool))
            }
            async fn delete_client(&self, id: &ClientId) -> StoreResult<bool> {
                timed!(delete_client, clients::delete_client(&self.pool, id))
            }
            async fn touch_client(&self, id: &ClientId, now: UnixTime) -> StoreResult<()> {
                timed!(touch_client, clients::touch_client(&self.pool, id, now))
            }
            async fn delete_unused_clients(&self, issued_before: UnixTime) -> StoreResult<u64> {
                timed!(
                    delete_unused_clients,
                    clients::delete_unused_clients(&self.pool, issued_before)
                )
            }

            async fn client_document(
                &self,
                id: &ClientId,
            ) -> StoreResult<Option<mcpgate_core::model::CachedDocument>> {
                timed!(client_document, clients::client_document(&self.pool, id))
            }
            async fn save_client_document(
                &self,
                doc: &mcpgate_core::model::CachedDocument,
            ) -> StoreResult<()> {
                timed!(
                    save_client_document,
                    clients::save_client_document(&self.pool, doc)
                )
            }

            // ---- consents ----
            async fn consent(
                &self,
                user_id: &str,
                client_id: &ClientId,
                redirect_uri: &str,
            ) -> StoreResult<Option<Consent>> {
                timed!(
                    consent,
                    clients::consent(&self.pool, user_id, client_id, redirect_uri)
                )
            }
            async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
                timed!(save_consent, clients::save_consent(&self.pool, consent))
            }

            // ---- login sessions ----
            async fn create_login_session(&self, session: &LoginSession) -> StoreResult<()> {
                timed!(
                    create_login_session,
                    users::create_login_session(&self.pool, session)
                )
            }
            async fn login_session(
                &self,
                session_hash: &str,
                now: UnixTime,
            ) -> StoreResult<Option<LoginSession>> {
                timed!(
                    login_session,
                    users::login_session(&self.pool, session_hash, now)
                )
            }
            async fn delete_login_session(&self, session_hash: &str) -> StoreResult<()> {
                timed!(
                    delete_login_session,
                    users::delete_login_session(&self.pool, session_hash)
                )
            }

            // ---- authorization codes ----
            async fn create_code(&self, code: &AuthCode) -> StoreResult<()> {
                timed!(create_code, tokens::create_code(&self.pool, code))
            }
            async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
                timed!(code, tokens::code(&self.pool, code_hash))
            }
            async fn redeem_code(
                &self,
                code_hash: &str,
                now: UnixTime,
                access: &AccessToken,
                refresh: Option<&RefreshToken>,
            ) -> StoreResult<bool> {
                timed!(
                    redeem_code,
                    tokens::redeem_code(self, code_hash, now, access, refresh)
                )
            }
            async fn mark_code_used(&self, code_hash: &str, now: UnixTime) -> StoreResult<()> {
                timed!(
                    mark_code_used,
                    tokens::mark_code_used(&self.pool, code_hash, now)
                )
            }

            // ---- tokens ----
            async fn access_token(&self, token_hash: &str) -> StoreResult<Option<AccessToken>> {
                timed!(access_token, tokens::access_token(&self.pool, token_hash))
            }
            async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
                timed!(refresh_token, tokens::refresh_token(&self.pool, token_hash))
            }
            async fn rotate_refresh_token(
                &self,
                old_hash: &str,
                now: UnixTime,
                access: &AccessToken,
                refresh: &RefreshToken,
            ) -> StoreResult<bool> {
                timed!(
                    rotate_refresh_token,
                    tokens::rotate_refresh_token(self, old_hash, now, access, refresh)
                )
            }
            async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
                timed!(
                    revoke_grant,
                    tokens::revoke_grant(&self.pool, grant_id, now)
                )
            }
            async fn grants_of_user(
                &self,
                user_id: &str,
                now: UnixTime,
            ) -> StoreResult<Vec<$crate::store::UserGrant>> {
                timed!(
                    grants_of_user,
                    account::grants_of_user(&self.pool, user_id, now)
                )
            }
            async fn forget_consents(&self, user_id: &str, client_id: &str) -> StoreResult<u64> {
                timed!(
                    forget_consents,
                    account::forget_consents(&self.pool, user_id, client_id)
                )
            }
            async fn revoke_access_token(
                &self,
                token_hash: &str,
                now: UnixTime,
            ) -> StoreResult<bool> {
                timed!(
                    revoke_access_token,
                    tokens::revoke_access_token(&self.pool, token_hash, now)
                )
            }
            async fn create_access_token(&self, token: &AccessToken) -> StoreResult<()> {
                timed!(
                    create_access_token,
                    tokens::create_access_token(&self.pool, token)
                )
            }
            async fn dead_access_tokens(
                &self,
                token_hashes: &[String],
                now: UnixTime,
            ) -> StoreResult<Vec<String>> {
                timed!(
                    dead_access_tokens,
                    tokens::dead_access_tokens(&self.pool, token_hashes, now)
                )
            }
            async fn access_token_changes(&self) -> StoreResult<i64> {
                timed!(
                    access_token_changes,
                    tokens::access_token_changes(&self.pool)
                )
            }
            async fn count_active_access_tokens(
                &self,
                client_id: &ClientId,
                now: UnixTime,
            ) -> StoreResult<u64> {
                timed!(
                    count_active_access_tokens,
                    tokens::count_active_access_tokens(&self.pool, client_id, now)
                )
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
                timed!(
                    use_assertion_jti,
                    maintenance::use_assertion_jti(
                        &self.pool, client_id, jti_hash, expires_at, now,
                    )
                )
            }

            async fn purge_expired(&self, before: UnixTime) -> StoreResult<u64> {
                timed!(
                    purge_expired,
                    maintenance::purge_expired(&self.pool, before)
                )
            }

            // ---- server keys ----
            async fn server_key(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
                timed!(
                    server_key,
                    maintenance::server_key(&self.pool, name, candidate)
                )
            }

            // ---- federated sign-in ----
            async fn create_pending_login(&self, login: &PendingLogin) -> StoreResult<()> {
                timed!(
                    create_pending_login,
                    identities::create_pending_login(&self.pool, login)
                )
            }
            async fn take_pending_login(
                &self,
                state_hash: &str,
                browser_hash: &str,
            ) -> StoreResult<Option<PendingLogin>> {
                timed!(
                    take_pending_login,
                    identities::take_pending_login(&self.pool, state_hash, browser_hash)
                )
            }
            async fn identity(
                &self,
                provider: &str,
                subject: &str,
            ) -> StoreResult<Option<UserIdentity>> {
                timed!(
                    identity,
                    identities::identity(&self.pool, provider, subject)
                )
            }
            async fn identities_of_user(&self, user_id: &str) -> StoreResult<Vec<UserIdentity>> {
                timed!(
                    identities_of_user,
                    identities::identities_of_user(&self.pool, user_id)
                )
            }
            async fn link_identity(&self, identity: &UserIdentity) -> StoreResult<()> {
                timed!(
                    link_identity,
                    identities::link_identity(&self.pool, identity)
                )
            }
            async fn unlink_identity(&self, provider: &str, subject: &str) -> StoreResult<bool> {
                timed!(
                    unlink_identity,
                    identities::unlink_identity(&self.pool, provider, subject)
                )
            }
            async fn create_federated_user(
                &self,
                user: &User,
                id: &UserIdentity,
            ) -> StoreResult<()> {
                timed!(
                    create_federated_user,
                    identities::create_federated_user(&self.pool, user, id)
                )
            }

            // ---- cluster ----
            async fn bind_mcp_session(
                &self,
                id: &str,
                user_id: &str,
                now: UnixTime,
            ) -> StoreResult<()> {
                timed!(
                    bind_mcp_session,
                    cluster::bind_mcp_session(&self.pool, id, user_id, now)
                )
            }
            async fn save_mcp_session_state(
                &self,
                id: &str,
                state: &str,
                now: UnixTime,
            ) -> StoreResult<()> {
                timed!(
                    save_mcp_session_state,
                    cluster::save_mcp_session_state(&self.pool, id, state, now)
                )
            }
            async fn mcp_session(&self, id: &str) -> StoreResult<Option<McpSessionRecord>> {
                timed!(mcp_session, cluster::mcp_session(&self.pool, id))
            }
            async fn touch_mcp_session(&self, id: &str, now: UnixTime) -> StoreResult<()> {
                timed!(
                    touch_mcp_session,
                    cluster::touch_mcp_session(&self.pool, id, now)
                )
            }
            async fn delete_mcp_session(&self, id: &str) -> StoreResult<()> {
                timed!(
                    delete_mcp_session,
                    cluster::delete_mcp_session(&self.pool, id)
                )
            }
            async fn create_sse_session(&self, session: &SseSessionRecord) -> StoreResult<()> {
                timed!(
                    create_sse_session,
                    cluster::create_sse_session(&self.pool, session)
                )
            }
            async fn sse_session(&self, id: &str) -> StoreResult<Option<SseSessionRecord>> {
                timed!(sse_session, cluster::sse_session(&self.pool, id))
            }
            async fn delete_sse_session(&self, id: &str) -> StoreResult<()> {
                timed!(
                    delete_sse_session,
                    cluster::delete_sse_session(&self.pool, id)
                )
            }
            async fn heartbeat_sse_sessions(
                &self,
                instance: &str,
                now: UnixTime,
            ) -> StoreResult<u64> {
                timed!(
                    heartbeat_sse_sessions,
                    cluster::heartbeat_sse_sessions(&self.pool, instance, now)
                )
            }
            async fn push_sse_message(
                &self,
                id: &str,
                caller: &str,
                message: &str,
                now: UnixTime,
            ) -> StoreResult<Option<i64>> {
                timed!(
                    push_sse_message,
                    cluster::push_sse_message(&self.pool, id, caller, message, now)
                )
            }
            async fn take_sse_messages(&self, id: &str) -> StoreResult<Vec<SseMessageRecord>> {
                timed!(
                    take_sse_messages,
                    cluster::take_sse_messages(&self.pool, id)
                )
            }
            async fn purge_cluster_sessions(
                &self,
                mcp: UnixTime,
                sse: UnixTime,
            ) -> StoreResult<u64> {
                timed!(
                    purge_cluster_sessions,
                    cluster::purge_cluster_sessions(&self.pool, mcp, sse)
                )
            }

            // ---- tasks ----
            async fn create_task(&self, task: &$crate::store::TaskRecord) -> StoreResult<()> {
                timed!(create_task, tasks::create_task(&self.pool, task))
            }
            async fn task(&self, task_id: &str) -> StoreResult<Option<$crate::store::TaskRecord>> {
                timed!(task, tasks::task(&self.pool, task_id))
            }
            async fn update_task(
                &self,
                task_id: &str,
                update: &$crate::store::TaskUpdate,
                now_ms: i64,
            ) -> StoreResult<bool> {
                timed!(
                    update_task,
                    tasks::update_task(&self.pool, task_id, update, now_ms)
                )
            }
            async fn push_task_input(
                &self,
                task_id: &str,
                responses: &str,
                now: UnixTime,
            ) -> StoreResult<i64> {
                timed!(
                    push_task_input,
                    tasks::push_task_input(&self.pool, task_id, responses, now)
                )
            }
            async fn take_task_inputs(&self, task_id: &str) -> StoreResult<Vec<(i64, String)>> {
                timed!(
                    take_task_inputs,
                    tasks::take_task_inputs(&self.pool, task_id)
                )
            }
            async fn settle_task_input(&self, id: i64, outcome: &str) -> StoreResult<()> {
                timed!(
                    settle_task_input,
                    tasks::settle_task_input(&self.pool, id, outcome)
                )
            }
            async fn take_task_input_outcome(&self, id: i64) -> StoreResult<Option<String>> {
                timed!(
                    take_task_input_outcome,
                    tasks::take_task_input_outcome(&self.pool, id)
                )
            }

            // ---- audit log ----
            async fn append_audit(
                &self,
                records: &[$crate::store::AuditRecord],
            ) -> StoreResult<()> {
                audit::append_audit(self, records).await
            }
            async fn search_audit(
                &self,
                query: &$crate::store::AuditQuery,
            ) -> StoreResult<Vec<$crate::store::AuditRecord>> {
                audit::search_audit(&self.pool, query).await
            }
            async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64> {
                audit::prune_audit(&self.pool, before_ms).await
            }

            // ---- mail between instances ----
            async fn post_cluster_mail(&self, mail: &MailRecord) -> StoreResult<()> {
                timed!(post_cluster_mail, mail::post_cluster_mail(&self.pool, mail))
            }
            async fn take_cluster_mail(
                &self,
                recipient: &str,
                expired_before: UnixTime,
            ) -> StoreResult<Vec<MailRecord>> {
                timed!(
                    take_cluster_mail,
                    mail::take_cluster_mail(&self.pool, recipient, expired_before)
                )
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

            // ---- admin console ----
            async fn set_user_admin(&self, user_id: &str, admin: bool) -> StoreResult<bool> {
                timed!(
                    set_user_admin,
                    admin::set_user_admin(&self.pool, user_id, admin)
                )
            }
            async fn admin_user_ids(&self) -> StoreResult<Vec<String>> {
                timed!(admin_user_ids, admin::admin_user_ids(&self.pool))
            }
            async fn set_user_disabled(
                &self,
                user_id: &str,
                at: Option<UnixTime>,
            ) -> StoreResult<bool> {
                timed!(
                    set_user_disabled,
                    admin::set_user_disabled(&self.pool, user_id, at)
                )
            }
            async fn disabled_user_ids(&self) -> StoreResult<Vec<String>> {
                timed!(disabled_user_ids, admin::disabled_user_ids(&self.pool))
            }
            async fn live_grants(
                &self,
                user_id: Option<&str>,
                client_id: Option<&str>,
                now: UnixTime,
            ) -> StoreResult<Vec<$crate::store::GrantSummary>> {
                timed!(
                    live_grants,
                    admin::live_grants(&self.pool, user_id, client_id, now)
                )
            }
        }
    };
}

pub(crate) use store_impl;
