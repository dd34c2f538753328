//! The contract every [`Store`] implementation must meet.
//!
//! Each contract is written once, as an async function taking the store
//! (`Arc<dyn Store>`; or the [`TestDb`], to reopen it), and instantiated for
//! every backend by [`store_contract_tests!`], which generates one test per
//! contract. Every test gets its own fresh, migrated database. A new backend
//! is one more line, as `store_contract_tests!(postgres, make_postgres_store);`.
//!
//! SQLite-only behaviour (URL forms, pragmas, corrupt rows) is tested at the
//! end of the file.

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;
// The contracts of the state several instances share.
use crate::audit_store::*;
use crate::cluster_store::*;
use crate::store_contract_account::*;
use crate::task_store::*;
use crate::upstream_token_store::*;
use mcpgate::store::postgres::PgStore;
use mcpgate::store::sqlite::SqliteStore;
use mcpgate::store::{Store, StoreError};
use mcpgate_core::domain::{ClientId, CodeChallenge, RedirectUri, ResourceUri, Scope, Username};
use mcpgate_core::model::{
    AccessToken, AuthCode, Client, ClientMetadata, Consent, GrantType, LoginSession, RefreshToken,
    TokenEndpointAuthMethod, UnixTime, User,
};

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// One test's own database. Dropping it (after the stores opened on it)
/// throws the database away.
pub struct TestDb {
    open: Box<dyn Fn() -> BoxFuture<'static, Arc<dyn Store>> + Send + Sync>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl TestDb {
    /// Opens a store on this database: a second call is a restart.
    pub async fn open(&self) -> Arc<dyn Store> {
        (self.open)().await
    }
}

/// A fresh SQLite database in a new temporary directory.
async fn make_sqlite_store() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
    TestDb {
        open: Box::new(move || {
            let url = url.clone();
            Box::pin(async move {
                let store = SqliteStore::connect(&url).await.expect("connect");
                store.migrate().await.expect("migrate");
                Arc::new(store) as Arc<dyn Store>
            })
        }),
        _guard: Box::new(dir),
    }
}

/// A fresh PostgreSQL database (`crate::pg_support`), dropped with the
/// [`TestDb`].
async fn make_postgres_store() -> TestDb {
    let pg = crate::pg_support::PgTestDb::create().await;
    let url = pg.url().to_string();
    TestDb {
        open: Box::new(move || {
            let url = url.clone();
            Box::pin(async move {
                let store = PgStore::connect(&url).await.expect("connect");
                store.migrate().await.expect("migrate");
                Arc::new(store) as Arc<dyn Store>
            })
        }),
        _guard: Box::new(pg),
    }
}

/// Generates, in a module named `$backend`, one test per contract function,
/// each on a fresh database made by `$make` (an `async fn() -> TestDb`).
macro_rules! store_contract_tests {
    ($backend:ident, $make:path) => {
        mod $backend {
            use super::*;

            store_contract_tests!(@store $make;
                a_user_reads_back_equal_by_id_and_by_username,
                unknown_users_read_as_none,
                creating_a_user_with_a_taken_username_is_a_conflict,
                usernames_differing_only_in_case_or_width_are_one_user,
                renaming_a_user_keeps_it_and_a_taken_name_is_a_conflict,
                users_are_listed_by_username_and_counted,
                setting_a_password_ends_that_users_login_sessions_only,
                deleting_a_user_removes_everything_of_theirs_and_nothing_else,
                a_client_reads_back_equal_with_all_its_metadata,
                creating_a_client_with_an_existing_id_is_a_conflict,
                clients_are_listed_by_issue_time,
                deleting_a_client_removes_everything_of_its_and_nothing_else,
                touching_a_client_records_its_last_use,
                only_never_used_clients_issued_before_the_cutoff_are_deleted,
                a_consent_is_found_only_for_its_own_user_and_client,
                saving_a_consent_again_replaces_it,
                consents_are_kept_per_redirect_uri,
                a_metadata_document_is_cached_with_its_times_and_replaced_on_refetch,
                a_metadata_document_never_replaces_a_client_of_another_kind,
                a_login_session_reads_back_until_it_expires,
                a_deleted_login_session_is_gone,
                a_code_reads_back_equal_with_and_without_a_pkce_challenge,
                redeeming_a_code_marks_it_used_and_stores_its_tokens,
                redeeming_a_code_twice_stores_tokens_only_once,
                redeeming_an_unknown_code_stores_nothing,
                a_code_marked_used_can_no_longer_be_redeemed,
                a_redeem_that_fails_to_store_its_tokens_leaves_the_code_unused,
                rotating_a_refresh_token_links_its_successor_and_stores_the_new_tokens,
                a_rotated_revoked_or_unknown_refresh_token_cannot_be_rotated,
                a_rotation_that_fails_to_store_its_tokens_leaves_the_token_unrotated,
                revoking_a_grant_revokes_its_tokens_and_code_and_no_other_grant,
                revoking_an_access_token_succeeds_once,
                only_unrevoked_unexpired_tokens_of_the_client_count_as_active,
                of_many_tokens_the_absent_revoked_and_expired_ones_are_dead,
                the_access_token_counter_moves_with_every_change_and_removal_and_not_with_issuing,
                purging_removes_exactly_what_expired_before_the_cutoff,
                the_first_server_key_stored_under_a_name_wins,
                migrating_again_is_harmless,
                a_shared_mcp_session_keeps_its_first_owner_and_its_state_in_either_order,
                sse_messages_queue_in_order_for_an_existing_session_only,
                the_sse_heartbeat_and_purge_touch_only_their_sessions,
                cluster_mail_is_taken_once_by_its_recipient_only,
                expired_cluster_mail_is_deleted_by_any_take,
                a_pending_login_is_taken_once_and_only_with_its_browser_hash,
                expired_pending_logins_are_purged,
                identities_are_linked_listed_and_unlinked,
                a_federated_user_and_its_identity_are_stored_together_or_not_at_all,
                identities_go_with_their_user,
                an_assertion_jti_is_used_once_per_client_until_it_expires,
                expired_assertion_jtis_are_purged,
                a_service_token_has_no_user_and_goes_with_its_client_only,
                a_task_reads_back_whole_and_its_id_is_unique,
                a_task_changes_until_it_is_terminal_and_then_never,
                a_cancelled_task_keeps_its_status_against_a_late_result,
                expired_tasks_are_purged,
                queued_task_input_is_taken_once_and_its_outcome_read_once,
                group_memberships_are_added_once_per_source_and_removed,
                provider_groups_are_replaced_and_local_ones_kept,
                memberships_go_with_their_user,
                audit_records_read_back_whole_in_append_order,
                audit_search_applies_every_filter_and_cursor,
                pruning_audit_deletes_only_records_before_the_cutoff,
                vault_key_ids_are_listed_newest_first_and_unique,
                upstream_tokens_are_kept_per_user_and_upstream,
                an_upstream_token_is_replaced_only_from_the_version_read,
                one_refresh_lease_at_a_time_until_it_ends_or_the_row_changes,
                an_upstream_client_is_registered_once_per_issuer_and_redirect,
                a_connect_flow_is_taken_once_and_only_as_its_kind,
                expired_connect_flows_are_purged,
                a_users_grants_are_listed_per_grant_and_only_while_live,
                forgetting_consents_deletes_only_that_users_consents_to_that_client,
                the_first_user_is_admin_and_the_role_can_be_given_and_taken,
                a_first_user_made_by_an_identity_provider_is_admin,
                live_grants_are_listed_per_user_and_client_until_revoked_or_expired,
                disabling_a_user_ends_everything_of_theirs_at_once_and_nothing_else,
            );

            store_contract_tests!(@concurrent $make;
                concurrent_redeems_of_one_code_let_exactly_one_win,
                concurrent_rotations_of_one_refresh_token_let_exactly_one_win,
                concurrent_first_requests_for_a_server_key_agree_on_one_key,
                concurrent_takes_of_one_pending_login_let_exactly_one_win,
                concurrent_uses_of_one_assertion_jti_let_exactly_one_win,
                concurrent_audit_batches_all_land,
                concurrent_refresh_leases_let_exactly_one_win,
                concurrent_takes_of_one_connect_flow_let_exactly_one_win,
            );

            store_contract_tests!(@db $make;
                a_reopened_store_keeps_users_clients_and_tokens,
            );
        }
    };
    (@store $make:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let db = $make().await;
            super::$name(db.open().await).await;
        }
    )*};
    (@concurrent $make:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let db = $make().await;
            super::$name(db.open().await).await;
        }
    )*};
    (@db $make:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let db = $make().await;
            super::$name(&db).await;
        }
    )*};
}

// The admin console: in its own file.
use crate::store_contract_admin::{
    a_first_user_made_by_an_identity_provider_is_admin,
    disabling_a_user_ends_everything_of_theirs_at_once_and_nothing_else,
    live_grants_are_listed_per_user_and_client_until_revoked_or_expired,
    the_first_user_is_admin_and_the_role_can_be_given_and_taken,
};

// Groups: in their own file.
use crate::store_contract_groups::{
    group_memberships_are_added_once_per_source_and_removed, memberships_go_with_their_user,
    provider_groups_are_replaced_and_local_ones_kept,
};

store_contract_tests!(sqlite, make_sqlite_store);
store_contract_tests!(postgres, make_postgres_store);

// ---------------------------------------------------------------------------
// Fixtures (some shared with `store_race`)
// ---------------------------------------------------------------------------

pub(crate) const NOW: UnixTime = 1_700_000_000;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(crate) fn cid(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

pub(crate) fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

pub(crate) fn user(id: &str, username: &str) -> User {
    User {
        id: id.into(),
        username: Username::parse(username).unwrap(),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${id}")),
        created_at: NOW - 10 * DAY,
    }
}

/// A confidential client with every metadata field set.
pub(crate) fn client(id: &str) -> Client {
    Client {
        client_id: cid(id),
        secret_hash: Some(format!("{id:0>64}")),
        metadata: ClientMetadata {
            redirect_uris: vec![
                RedirectUri::parse("https://app.example/cb?tenant=1").unwrap(),
                RedirectUri::parse("http://127.0.0.1:8080/callback").unwrap(),
            ],
            token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            response_types: vec!["code".into()],
            client_name: Some("Ünïcode \"app\" ✓".into()),
            client_uri: Some("https://app.example/".into()),
            logo_uri: Some("https://app.example/logo.png".into()),
            tos_uri: Some("https://app.example/tos".into()),
            policy_uri: Some("https://app.example/privacy".into()),
            scope: Some(scope("mcp offline_access")),
            contacts: vec!["ops@app.example".into(), "sec@app.example".into()],
            software_id: Some("4NRB1-0XZABZI9E6-5SM3R".into()),
            software_version: Some("2.1".into()),
            application_type: Some("web".into()),
            jwks_uri: None,
            jwks: None,
        },
        issued_at: NOW - DAY,
        last_used_at: Some(NOW - HOUR),
        kind: mcpgate_core::model::ClientKind::Dynamic,
    }
}

/// A public client with only the required metadata, never used.
fn public_client(id: &str, issued_at: UnixTime) -> Client {
    Client {
        client_id: cid(id),
        secret_hash: None,
        metadata: ClientMetadata {
            redirect_uris: vec![
                RedirectUri::parse("https://claude.ai/api/mcp/auth_callback").unwrap(),
            ],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            grant_types: vec![GrantType::AuthorizationCode],
            response_types: vec!["code".into()],
            client_name: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            scope: None,
            contacts: vec![],
            software_id: None,
            software_version: None,
            application_type: None,
            jwks_uri: None,
            jwks: None,
        },
        issued_at,
        last_used_at: None,
        kind: mcpgate_core::model::ClientKind::Dynamic,
    }
}

pub(crate) fn code(hash: &str, grant: &str, client_id: &str, user_id: &str) -> AuthCode {
    AuthCode {
        code_hash: hash.into(),
        grant_id: grant.into(),
        client_id: cid(client_id),
        user_id: user_id.into(),
        redirect_uri: RedirectUri::parse("https://app.example/cb?tenant=1").unwrap(),
        redirect_uri_explicit: true,
        scope: scope("mcp offline_access"),
        resource: ResourceUri::parse("https://gw.example/v1/ai/mcp").unwrap(),
        code_challenge: Some(CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap()),
        created_at: NOW - 30,
        expires_at: NOW + 30,
        used_at: None,
    }
}

pub(crate) fn access(hash: &str, grant: &str, client_id: &str, user_id: &str) -> AccessToken {
    AccessToken {
        token_hash: hash.into(),
        grant_id: grant.into(),
        client_id: cid(client_id),
        user_id: Some(user_id.into()),
        scope: scope("mcp offline_access"),
        resource: ResourceUri::parse("https://gw.example/v1/ai/mcp").unwrap(),
        created_at: NOW,
        expires_at: NOW + HOUR,
        revoked_at: None,
    }
}

pub(crate) fn refresh(hash: &str, grant: &str, client_id: &str, user_id: &str) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        grant_id: grant.into(),
        client_id: cid(client_id),
        user_id: user_id.into(),
        scope: scope("mcp offline_access"),
        resource: ResourceUri::parse("https://gw.example/v1/ai/mcp").unwrap(),
        created_at: NOW,
        expires_at: NOW + 30 * DAY,
        rotated_at: None,
        successor_hash: None,
        revoked_at: None,
    }
}

fn session(hash: &str, user_id: &str) -> LoginSession {
    LoginSession {
        session_hash: hash.into(),
        user_id: user_id.into(),
        created_at: NOW,
        expires_at: NOW + HOUR,
    }
}

/// The redirect URI (consent key) of the consents made by [`consent`].
const CB: &str = "https://app.example/cb";

pub(crate) fn consent(user_id: &str, client_id: &str, s: &str) -> Consent {
    Consent {
        user_id: user_id.into(),
        client_id: cid(client_id),
        redirect_uri: CB.into(),
        scope: scope(s),
        granted_at: NOW,
    }
}

/// Users `u1` (alice) and `u2` (bob), clients `c1` and `c2`.
pub(crate) async fn seed(store: &dyn Store) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();
    store.create_client(&client("c2")).await.unwrap();
}

/// Issues tokens the only way a store accepts them: a code of the grant,
/// redeemed. The code's hash is `code-<access hash>`.
pub(crate) async fn issue(
    store: &dyn Store,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> AuthCode {
    let c = code(
        &format!("code-{}", access.token_hash),
        &access.grant_id,
        access.client_id.as_str(),
        access.user_id.as_deref().expect("a user token"),
    );
    store.create_code(&c).await.unwrap();
    assert!(
        store
            .redeem_code(&c.code_hash, NOW, access, refresh)
            .await
            .unwrap()
    );
    AuthCode {
        used_at: Some(NOW),
        ..c
    }
}

/// Everything one user holds at one client: a session, a consent, a code
/// and a grant with an access and a refresh token. Hashes end in `suffix`.
async fn give_everything(store: &dyn Store, user_id: &str, client_id: &str, suffix: &str) {
    store
        .create_login_session(&session(&format!("s-{suffix}"), user_id))
        .await
        .unwrap();
    store
        .save_consent(&consent(user_id, client_id, "mcp"))
        .await
        .unwrap();
    store
        .create_code(&code(
            &format!("k-{suffix}"),
            &format!("gk-{suffix}"),
            client_id,
            user_id,
        ))
        .await
        .unwrap();
    let grant = format!("g-{suffix}");
    issue(
        store,
        &access(&format!("a-{suffix}"), &grant, client_id, user_id),
        Some(&refresh(&format!("r-{suffix}"), &grant, client_id, user_id)),
    )
    .await;
}

/// Whether everything [`give_everything`] stored under `suffix` that
/// belongs to both the user and the client (all but the login session) is
/// there (`true`) or gone (`false`); panics if only part of it is.
async fn holds_everything(store: &dyn Store, user_id: &str, client_id: &str, suffix: &str) -> bool {
    let found = [
        store
            .consent(user_id, &cid(client_id), CB)
            .await
            .unwrap()
            .is_some(),
        store.code(&format!("k-{suffix}")).await.unwrap().is_some(),
        store
            .code(&format!("code-a-{suffix}"))
            .await
            .unwrap()
            .is_some(),
        store
            .access_token(&format!("a-{suffix}"))
            .await
            .unwrap()
            .is_some(),
        store
            .refresh_token(&format!("r-{suffix}"))
            .await
            .unwrap()
            .is_some(),
    ];
    assert!(
        found.iter().all(|f| *f) || found.iter().all(|f| !*f),
        "partly removed ({suffix}): {found:?}"
    );
    found[0]
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

async fn usernames_differing_only_in_case_or_width_are_one_user(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "Carol")).await.unwrap();
    for (id, other) in [
        ("u2", "carol"),
        ("u3", "CAROL"),
        ("u4", "\u{ff23}\u{ff21}\u{ff32}\u{ff2f}\u{ff2c}"),
    ] {
        assert!(
            matches!(
                store.create_user(&user(id, other)).await,
                Err(StoreError::Conflict(_))
            ),
            "{other}"
        );
        // Any form finds the one user.
        let found = store.user_by_username(other).await.unwrap().unwrap();
        assert_eq!(found.id, "u1");
        assert_eq!(found.username, "carol");
    }
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn renaming_a_user_keeps_it_and_a_taken_name_is_a_conflict(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    let new = Username::parse("Alice.Smith").unwrap();
    assert!(store.rename_user("u1", &new).await.unwrap());
    assert_eq!(
        store.user_by_username("alice.smith").await.unwrap(),
        Some(user("u1", "alice.smith"))
    );
    assert_eq!(store.user_by_username("alice").await.unwrap(), None);
    let taken = Username::parse("BOB").unwrap();
    assert!(matches!(
        store.rename_user("u1", &taken).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(!store.rename_user("nobody", &new).await.unwrap());
}

async fn a_user_reads_back_equal_by_id_and_by_username(store: Arc<dyn Store>) {
    let alice = user("u1", "alice");
    let idp_only = User {
        password_hash: None,
        ..user("u2", "Bob@Example.org")
    };
    store.create_user(&alice).await.unwrap();
    store.create_user(&idp_only).await.unwrap();
    for u in [&alice, &idp_only] {
        assert_eq!(store.user_by_id(&u.id).await.unwrap().as_ref(), Some(u));
        assert_eq!(
            store.user_by_username(&u.username).await.unwrap().as_ref(),
            Some(u)
        );
    }
}

async fn unknown_users_read_as_none(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    assert_eq!(store.user_by_id("u9").await.unwrap(), None);
    assert_eq!(store.user_by_id("alice").await.unwrap(), None);
    assert_eq!(store.user_by_username("mallory").await.unwrap(), None);
    assert_eq!(store.user_by_username("u1").await.unwrap(), None);
}

async fn creating_a_user_with_a_taken_username_is_a_conflict(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    let err = store.create_user(&user("u2", "alice")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store.create_user(&user("u1", "alice2")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_eq!(
        store.user_by_id("u1").await.unwrap(),
        Some(user("u1", "alice"))
    );
}

async fn users_are_listed_by_username_and_counted(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert_eq!(store.list_users().await.unwrap(), vec![]);
    for (id, name) in [("u1", "carol"), ("u2", "alice"), ("u3", "bob")] {
        store.create_user(&user(id, name)).await.unwrap();
    }
    assert_eq!(store.count_users().await.unwrap(), 3);
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![user("u2", "alice"), user("u3", "bob"), user("u1", "carol")]
    );
}

async fn setting_a_password_ends_that_users_login_sessions_only(store: Arc<dyn Store>) {
    seed(&*store).await;
    for (s, u) in [("s1", "u1"), ("s2", "u1"), ("s3", "u2")] {
        store.create_login_session(&session(s, u)).await.unwrap();
    }
    assert!(store.set_password("u1", "$argon2id$new").await.unwrap());
    assert_eq!(
        store.user_by_id("u1").await.unwrap(),
        Some(User {
            password_hash: Some("$argon2id$new".into()),
            ..user("u1", "alice")
        })
    );
    assert_eq!(store.login_session("s1", NOW).await.unwrap(), None);
    assert_eq!(store.login_session("s2", NOW).await.unwrap(), None);
    assert_eq!(
        store.login_session("s3", NOW).await.unwrap(),
        Some(session("s3", "u2"))
    );
    assert_eq!(
        store.user_by_id("u2").await.unwrap(),
        Some(user("u2", "bob"))
    );

    assert!(!store.set_password("u9", "$argon2id$x").await.unwrap());
}

async fn deleting_a_user_removes_everything_of_theirs_and_nothing_else(store: Arc<dyn Store>) {
    seed(&*store).await;
    give_everything(&*store, "u1", "c1", "alice").await;
    give_everything(&*store, "u2", "c1", "bob").await;
    assert!(holds_everything(&*store, "u1", "c1", "alice").await);

    assert!(store.delete_user("u1").await.unwrap());
    assert_eq!(store.user_by_id("u1").await.unwrap(), None);
    assert_eq!(store.user_by_username("alice").await.unwrap(), None);
    assert!(!holds_everything(&*store, "u1", "c1", "alice").await);
    assert_eq!(store.login_session("s-alice", NOW).await.unwrap(), None);
    assert!(store.login_session("s-bob", NOW).await.unwrap().is_some());
    assert!(holds_everything(&*store, "u2", "c1", "bob").await);
    assert!(store.client(&cid("c1")).await.unwrap().is_some());
    assert_eq!(store.count_users().await.unwrap(), 1);

    assert!(!store.delete_user("u1").await.unwrap());
    // The username is free again.
    store.create_user(&user("u3", "alice")).await.unwrap();
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

async fn a_client_reads_back_equal_with_all_its_metadata(store: Arc<dyn Store>) {
    let full = client("bffb61f7-a897-40bb-8579-2b7436e27ac2");
    let minimal = public_client("public~client!", NOW);
    store.create_client(&full).await.unwrap();
    store.create_client(&minimal).await.unwrap();
    assert_eq!(store.client(&full.client_id).await.unwrap(), Some(full));
    assert_eq!(
        store.client(&minimal.client_id).await.unwrap(),
        Some(minimal)
    );
    assert_eq!(store.client(&cid("nobody")).await.unwrap(), None);
}

async fn creating_a_client_with_an_existing_id_is_a_conflict(store: Arc<dyn Store>) {
    store.create_client(&client("c1")).await.unwrap();
    let err = store
        .create_client(&public_client("c1", NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.client(&cid("c1")).await.unwrap(), Some(client("c1")));
}

async fn clients_are_listed_by_issue_time(store: Arc<dyn Store>) {
    assert_eq!(store.list_clients().await.unwrap(), vec![]);
    let b = public_client("b", NOW - 5);
    let a = public_client("a", NOW);
    let c = client("c");
    for cl in [&a, &b, &c] {
        store.create_client(cl).await.unwrap();
    }
    assert_eq!(store.list_clients().await.unwrap(), vec![c, b, a]);
}

async fn deleting_a_client_removes_everything_of_its_and_nothing_else(store: Arc<dyn Store>) {
    seed(&*store).await;
    give_everything(&*store, "u1", "c1", "one").await;
    give_everything(&*store, "u1", "c2", "two").await;

    assert!(store.delete_client(&cid("c1")).await.unwrap());
    assert_eq!(store.client(&cid("c1")).await.unwrap(), None);
    assert!(!holds_everything(&*store, "u1", "c1", "one").await);
    assert!(holds_everything(&*store, "u1", "c2", "two").await);
    // Login sessions belong to the user alone.
    assert!(store.login_session("s-one", NOW).await.unwrap().is_some());
    assert_eq!(
        store.user_by_id("u1").await.unwrap(),
        Some(user("u1", "alice"))
    );
    assert_eq!(store.list_clients().await.unwrap(), vec![client("c2")]);

    assert!(!store.delete_client(&cid("c1")).await.unwrap());
}

async fn touching_a_client_records_its_last_use(store: Arc<dyn Store>) {
    let fresh = public_client("fresh", NOW - 2 * DAY);
    store.create_client(&fresh).await.unwrap();
    store.create_client(&client("other")).await.unwrap();
    store.touch_client(&cid("fresh"), NOW + 5).await.unwrap();
    assert_eq!(
        store.client(&cid("fresh")).await.unwrap(),
        Some(Client {
            last_used_at: Some(NOW + 5),
            kind: mcpgate_core::model::ClientKind::Dynamic,
            ..fresh
        })
    );
    assert_eq!(
        store.client(&cid("other")).await.unwrap(),
        Some(client("other"))
    );
    // A used client is not an unused one.
    assert_eq!(store.delete_unused_clients(NOW).await.unwrap(), 0);
    // Touching an unknown client is not an error.
    store.touch_client(&cid("nobody"), NOW).await.unwrap();
}

async fn only_never_used_clients_issued_before_the_cutoff_are_deleted(store: Arc<dyn Store>) {
    let old_unused = public_client("old-unused", NOW - 2 * DAY);
    let old_used = Client {
        last_used_at: Some(NOW - DAY),
        kind: mcpgate_core::model::ClientKind::Dynamic,
        ..public_client("old-used", NOW - 2 * DAY)
    };
    let at_cutoff = public_client("at-cutoff", NOW - DAY);
    let new_unused = public_client("new-unused", NOW);
    for c in [&old_unused, &old_used, &at_cutoff, &new_unused] {
        store.create_client(c).await.unwrap();
    }
    assert_eq!(store.delete_unused_clients(NOW - DAY).await.unwrap(), 1);
    assert_eq!(store.client(&old_unused.client_id).await.unwrap(), None);
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![old_used, at_cutoff, new_unused]
    );
    assert_eq!(store.delete_unused_clients(NOW - DAY).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------
// Consents
// ---------------------------------------------------------------------------

async fn a_consent_is_found_only_for_its_own_user_and_client(store: Arc<dyn Store>) {
    seed(&*store).await;
    let given = consent("u1", "c1", "offline_access mcp");
    store.save_consent(&given).await.unwrap();
    assert_eq!(
        store.consent("u1", &cid("c1"), CB).await.unwrap(),
        Some(given)
    );
    assert_eq!(store.consent("u1", &cid("c2"), CB).await.unwrap(), None);
    assert_eq!(store.consent("u2", &cid("c1"), CB).await.unwrap(), None);
    assert_eq!(store.consent("u2", &cid("c2"), CB).await.unwrap(), None);
}

async fn consents_are_kept_per_redirect_uri(store: Arc<dyn Store>) {
    seed(&*store).await;
    let here = consent("u1", "c1", "mcp");
    let there = Consent {
        redirect_uri: "http://localhost/callback".into(),
        scope: scope("mcp offline_access"),
        ..consent("u1", "c1", "mcp")
    };
    store.save_consent(&here).await.unwrap();
    store.save_consent(&there).await.unwrap();
    assert_eq!(
        store.consent("u1", &cid("c1"), CB).await.unwrap(),
        Some(here)
    );
    assert_eq!(
        store
            .consent("u1", &cid("c1"), "http://localhost/callback")
            .await
            .unwrap(),
        Some(there)
    );
    assert_eq!(store.consent("u1", &cid("c1"), "").await.unwrap(), None);
}

fn document_client(id: &str, name: &str) -> Client {
    Client {
        client_id: cid(id),
        secret_hash: None,
        kind: mcpgate_core::model::ClientKind::MetadataDocument,
        metadata: mcpgate_core::model::ClientMetadata {
            client_name: Some(name.into()),
            token_endpoint_auth_method: mcpgate_core::model::TokenEndpointAuthMethod::PrivateKeyJwt,
            jwks_uri: Some("https://docs.example/jwks.json".into()),
            ..client("x").metadata
        },
        ..client("x")
    }
}

async fn a_metadata_document_is_cached_with_its_times_and_replaced_on_refetch(
    store: Arc<dyn Store>,
) {
    let url = "https://docs.example/client.json";
    assert_eq!(store.client_document(&cid(url)).await.unwrap(), None);
    let first = mcpgate_core::model::CachedDocument {
        client: Client {
            issued_at: NOW,
            ..document_client(url, "First")
        },
        fetched_at: NOW,
        fresh_until: NOW + HOUR,
    };
    store.save_client_document(&first).await.unwrap();
    assert_eq!(
        store.client_document(&cid(url)).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.client(&cid(url)).await.unwrap(),
        Some(first.client.clone())
    );
    store.touch_client(&cid(url), NOW + 5).await.unwrap();
    let second = mcpgate_core::model::CachedDocument {
        client: Client {
            issued_at: NOW + 100,
            ..document_client(url, "Second")
        },
        fetched_at: NOW + 100,
        fresh_until: NOW + 100 + DAY,
    };
    store.save_client_document(&second).await.unwrap();
    let read = store.client_document(&cid(url)).await.unwrap().unwrap();
    assert_eq!(read.client.metadata, second.client.metadata);
    assert_eq!(
        (read.fetched_at, read.fresh_until),
        (NOW + 100, NOW + 100 + DAY)
    );
    assert_eq!(read.client.issued_at, NOW, "first seen stays");
    assert_eq!(read.client.last_used_at, Some(NOW + 5), "last use stays");
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

async fn a_metadata_document_never_replaces_a_client_of_another_kind(store: Arc<dyn Store>) {
    seed(&*store).await;
    let doc = mcpgate_core::model::CachedDocument {
        client: document_client("c1", "Impostor"),
        fetched_at: NOW,
        fresh_until: NOW + HOUR,
    };
    assert!(matches!(
        store.save_client_document(&doc).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.client(&cid("c1")).await.unwrap(), Some(client("c1")));
    assert_eq!(store.client_document(&cid("c1")).await.unwrap(), None);
}

async fn saving_a_consent_again_replaces_it(store: Arc<dyn Store>) {
    seed(&*store).await;
    store
        .save_consent(&consent("u1", "c1", "mcp"))
        .await
        .unwrap();
    store
        .save_consent(&consent("u2", "c1", "mcp"))
        .await
        .unwrap();
    let wider = Consent {
        granted_at: NOW + 60,
        ..consent("u1", "c1", "mcp offline_access admin")
    };
    store.save_consent(&wider).await.unwrap();
    assert_eq!(
        store.consent("u1", &cid("c1"), CB).await.unwrap(),
        Some(wider)
    );
    assert_eq!(
        store.consent("u2", &cid("c1"), CB).await.unwrap(),
        Some(consent("u2", "c1", "mcp"))
    );
}

// ---------------------------------------------------------------------------
// Login sessions
// ---------------------------------------------------------------------------

async fn a_login_session_reads_back_until_it_expires(store: Arc<dyn Store>) {
    seed(&*store).await;
    let s = session("s1", "u1");
    store.create_login_session(&s).await.unwrap();
    assert_eq!(
        store.login_session("s1", NOW).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.login_session("s1", s.expires_at - 1).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(store.login_session("s1", s.expires_at).await.unwrap(), None);
    assert_eq!(
        store.login_session("s1", s.expires_at + DAY).await.unwrap(),
        None
    );
    assert_eq!(store.login_session("s2", NOW).await.unwrap(), None);
}

async fn a_deleted_login_session_is_gone(store: Arc<dyn Store>) {
    seed(&*store).await;
    store
        .create_login_session(&session("s1", "u1"))
        .await
        .unwrap();
    store
        .create_login_session(&session("s2", "u1"))
        .await
        .unwrap();
    store.delete_login_session("s1").await.unwrap();
    assert_eq!(store.login_session("s1", NOW).await.unwrap(), None);
    assert_eq!(
        store.login_session("s2", NOW).await.unwrap(),
        Some(session("s2", "u1"))
    );
    // Deleting an unknown session is not an error.
    store.delete_login_session("s1").await.unwrap();
}

// ---------------------------------------------------------------------------
// Authorization codes
// ---------------------------------------------------------------------------

async fn a_code_reads_back_equal_with_and_without_a_pkce_challenge(store: Arc<dyn Store>) {
    seed(&*store).await;
    let with_pkce = code("k1", "g1", "c1", "u1");
    let without_pkce = AuthCode {
        redirect_uri: RedirectUri::parse("http://localhost:49152/callback").unwrap(),
        redirect_uri_explicit: false,
        scope: scope("mcp"),
        code_challenge: None,
        used_at: Some(NOW - 1),
        ..code("k2", "g2", "c2", "u2")
    };
    store.create_code(&with_pkce).await.unwrap();
    store.create_code(&without_pkce).await.unwrap();
    assert_eq!(store.code("k1").await.unwrap(), Some(with_pkce));
    assert_eq!(store.code("k2").await.unwrap(), Some(without_pkce));
    assert_eq!(store.code("k3").await.unwrap(), None);
}

async fn redeeming_a_code_marks_it_used_and_stores_its_tokens(store: Arc<dyn Store>) {
    seed(&*store).await;
    let k = code("k1", "g1", "c1", "u1");
    store.create_code(&k).await.unwrap();
    let a = access("a1", "g1", "c1", "u1");
    let r = refresh("r1", "g1", "c1", "u1");
    assert!(
        store
            .redeem_code("k1", NOW + 3, &a, Some(&r))
            .await
            .unwrap()
    );
    assert_eq!(
        store.code("k1").await.unwrap(),
        Some(AuthCode {
            used_at: Some(NOW + 3),
            ..k
        })
    );
    assert_eq!(store.access_token("a1").await.unwrap(), Some(a));
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(r));

    // Without a refresh token.
    store
        .create_code(&code("k2", "g2", "c1", "u1"))
        .await
        .unwrap();
    let a2 = access("a2", "g2", "c1", "u1");
    assert!(store.redeem_code("k2", NOW, &a2, None).await.unwrap());
    assert_eq!(store.access_token("a2").await.unwrap(), Some(a2));
}

async fn redeeming_a_code_twice_stores_tokens_only_once(store: Arc<dyn Store>) {
    seed(&*store).await;
    store
        .create_code(&code("k1", "g1", "c1", "u1"))
        .await
        .unwrap();
    let first = access("a1", "g1", "c1", "u1");
    let second = access("a2", "g1", "c1", "u1");
    assert!(
        store
            .redeem_code("k1", NOW, &first, Some(&refresh("r1", "g1", "c1", "u1")))
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeem_code(
                "k1",
                NOW + 1,
                &second,
                Some(&refresh("r2", "g1", "c1", "u1"))
            )
            .await
            .unwrap()
    );
    assert_eq!(store.code("k1").await.unwrap().unwrap().used_at, Some(NOW));
    assert_eq!(store.access_token("a1").await.unwrap(), Some(first));
    assert_eq!(store.access_token("a2").await.unwrap(), None);
    assert_eq!(store.refresh_token("r2").await.unwrap(), None);
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW)
            .await
            .unwrap(),
        1
    );
}

async fn redeeming_an_unknown_code_stores_nothing(store: Arc<dyn Store>) {
    seed(&*store).await;
    let a = access("a1", "g1", "c1", "u1");
    let r = refresh("r1", "g1", "c1", "u1");
    assert!(
        !store
            .redeem_code("k-unknown", NOW, &a, Some(&r))
            .await
            .unwrap()
    );
    assert_eq!(store.access_token("a1").await.unwrap(), None);
    assert_eq!(store.refresh_token("r1").await.unwrap(), None);
}

async fn a_code_marked_used_can_no_longer_be_redeemed(store: Arc<dyn Store>) {
    seed(&*store).await;
    store
        .create_code(&code("k1", "g1", "c1", "u1"))
        .await
        .unwrap();
    store
        .create_code(&code("k2", "g2", "c1", "u1"))
        .await
        .unwrap();
    store.mark_code_used("k1", NOW + 7).await.unwrap();
    // Marking again keeps the first time.
    store.mark_code_used("k1", NOW + 9).await.unwrap();
    assert_eq!(
        store.code("k1").await.unwrap().unwrap().used_at,
        Some(NOW + 7)
    );
    assert_eq!(store.code("k2").await.unwrap().unwrap().used_at, None);
    let a = access("a1", "g1", "c1", "u1");
    assert!(!store.redeem_code("k1", NOW + 10, &a, None).await.unwrap());
    assert_eq!(store.access_token("a1").await.unwrap(), None);
    // Marking an unknown code is not an error.
    store.mark_code_used("k9", NOW).await.unwrap();
}

async fn a_redeem_that_fails_to_store_its_tokens_leaves_the_code_unused(store: Arc<dyn Store>) {
    seed(&*store).await;
    issue(&*store, &access("a1", "g1", "c1", "u1"), None).await;
    store
        .create_code(&code("k2", "g2", "c1", "u1"))
        .await
        .unwrap();
    // The access token's hash is taken: storing it fails after the code
    // was claimed.
    let taken = access("a1", "g2", "c1", "u1");
    let r = refresh("r2", "g2", "c1", "u1");
    assert!(
        store
            .redeem_code("k2", NOW, &taken, Some(&r))
            .await
            .is_err()
    );
    assert_eq!(store.code("k2").await.unwrap().unwrap().used_at, None);
    assert_eq!(store.refresh_token("r2").await.unwrap(), None);
    assert_eq!(
        store.access_token("a1").await.unwrap(),
        Some(access("a1", "g1", "c1", "u1"))
    );

    // The same with the refresh token failing, after the access token was stored.
    issue(
        &*store,
        &access("a3", "g3", "c1", "u1"),
        Some(&refresh("r3", "g3", "c1", "u1")),
    )
    .await;
    let a4 = access("a4", "g2", "c1", "u1");
    let taken = refresh("r3", "g2", "c1", "u1");
    assert!(
        store
            .redeem_code("k2", NOW, &a4, Some(&taken))
            .await
            .is_err()
    );
    assert_eq!(store.code("k2").await.unwrap().unwrap().used_at, None);
    assert_eq!(store.access_token("a4").await.unwrap(), None);

    // And the code can still be redeemed properly.
    assert!(store.redeem_code("k2", NOW, &a4, Some(&r)).await.unwrap());
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

async fn rotating_a_refresh_token_links_its_successor_and_stores_the_new_tokens(
    store: Arc<dyn Store>,
) {
    seed(&*store).await;
    let r1 = refresh("r1", "g1", "c1", "u1");
    issue(&*store, &access("a1", "g1", "c1", "u1"), Some(&r1)).await;
    let a2 = AccessToken {
        created_at: NOW + 10,
        expires_at: NOW + 10 + HOUR,
        scope: scope("mcp"),
        ..access("a2", "g1", "c1", "u1")
    };
    let r2 = RefreshToken {
        created_at: NOW + 10,
        ..refresh("r2", "g1", "c1", "u1")
    };
    assert!(
        store
            .rotate_refresh_token("r1", NOW + 10, &a2, &r2)
            .await
            .unwrap()
    );
    assert_eq!(
        store.refresh_token("r1").await.unwrap(),
        Some(RefreshToken {
            rotated_at: Some(NOW + 10),
            successor_hash: Some("r2".into()),
            ..r1
        })
    );
    assert_eq!(store.access_token("a2").await.unwrap(), Some(a2));
    assert_eq!(store.refresh_token("r2").await.unwrap(), Some(r2));
    // The first access token is untouched.
    assert_eq!(
        store.access_token("a1").await.unwrap(),
        Some(access("a1", "g1", "c1", "u1"))
    );
}

async fn a_rotation_that_fails_to_store_its_tokens_leaves_the_token_unrotated(
    store: Arc<dyn Store>,
) {
    seed(&*store).await;
    let r1 = refresh("r1", "g1", "c1", "u1");
    issue(&*store, &access("a1", "g1", "c1", "u1"), Some(&r1)).await;
    issue(
        &*store,
        &access("a9", "g9", "c1", "u1"),
        Some(&refresh("r9", "g9", "c1", "u1")),
    )
    .await;

    // The new access token's hash is taken: a conflict, and the claim is undone.
    let err = store
        .rotate_refresh_token(
            "r1",
            NOW + 1,
            &access("a9", "g1", "c1", "u1"),
            &refresh("r2", "g1", "c1", "u1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mcpgate::store::StoreError::Conflict(_)),
        "{err:?}"
    );
    // The new refresh token's hash is taken, after the access token was stored.
    let err = store
        .rotate_refresh_token(
            "r1",
            NOW + 2,
            &access("a2", "g1", "c1", "u1"),
            &refresh("r9", "g1", "c1", "u1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mcpgate::store::StoreError::Conflict(_)),
        "{err:?}"
    );
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(r1.clone()));
    assert_eq!(store.access_token("a2").await.unwrap(), None);
    assert_eq!(store.refresh_token("r2").await.unwrap(), None);

    // And it can still be rotated properly.
    assert!(
        store
            .rotate_refresh_token(
                "r1",
                NOW + 3,
                &access("a2", "g1", "c1", "u1"),
                &refresh("r2", "g1", "c1", "u1"),
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .successor_hash,
        Some("r2".into())
    );
}

async fn a_rotated_revoked_or_unknown_refresh_token_cannot_be_rotated(store: Arc<dyn Store>) {
    seed(&*store).await;
    issue(
        &*store,
        &access("a1", "g1", "c1", "u1"),
        Some(&refresh("r1", "g1", "c1", "u1")),
    )
    .await;
    let (a2, r2) = (
        access("a2", "g1", "c1", "u1"),
        refresh("r2", "g1", "c1", "u1"),
    );
    assert!(
        store
            .rotate_refresh_token("r1", NOW, &a2, &r2)
            .await
            .unwrap()
    );

    // Rotated: a replay.
    let (a3, r3) = (
        access("a3", "g1", "c1", "u1"),
        refresh("r3", "g1", "c1", "u1"),
    );
    assert!(
        !store
            .rotate_refresh_token("r1", NOW + 1, &a3, &r3)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .successor_hash,
        Some("r2".into())
    );

    // Revoked.
    assert_eq!(store.revoke_grant("g1", NOW + 2).await.unwrap(), 4);
    assert!(
        !store
            .rotate_refresh_token("r2", NOW + 3, &a3, &r3)
            .await
            .unwrap()
    );
    assert_eq!(
        store.refresh_token("r2").await.unwrap().unwrap().rotated_at,
        None
    );

    // Unknown.
    assert!(
        !store
            .rotate_refresh_token("r9", NOW + 3, &a3, &r3)
            .await
            .unwrap()
    );

    assert_eq!(store.access_token("a3").await.unwrap(), None);
    assert_eq!(store.refresh_token("r3").await.unwrap(), None);
}

async fn revoking_a_grant_revokes_its_tokens_and_code_and_no_other_grant(store: Arc<dyn Store>) {
    seed(&*store).await;
    let k1 = issue(
        &*store,
        &access("a1", "g1", "c1", "u1"),
        Some(&refresh("r1", "g1", "c1", "u1")),
    )
    .await;
    let (a2, r2) = (
        access("a2", "g1", "c1", "u1"),
        refresh("r2", "g1", "c1", "u1"),
    );
    assert!(
        store
            .rotate_refresh_token("r1", NOW + 1, &a2, &r2)
            .await
            .unwrap()
    );
    // a1 was already revoked on its own: it is not counted again.
    assert!(store.revoke_access_token("a1", NOW + 2).await.unwrap());
    // An unredeemed code of the grant (a replayed code's grant, say).
    store
        .create_code(&code("k-g1", "g1", "c1", "u1"))
        .await
        .unwrap();
    // Another grant of the same user and client.
    let other = issue(
        &*store,
        &access("a9", "g9", "c1", "u1"),
        Some(&refresh("r9", "g9", "c1", "u1")),
    )
    .await;

    // a2, r1 (rotated but not revoked), r2.
    assert_eq!(store.revoke_grant("g1", NOW + 5).await.unwrap(), 3);

    assert_eq!(
        store.access_token("a1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 2)
    );
    assert_eq!(
        store.access_token("a2").await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
    for r in ["r1", "r2"] {
        assert_eq!(
            store.refresh_token(r).await.unwrap().unwrap().revoked_at,
            Some(NOW + 5)
        );
    }
    assert_eq!(store.code(&k1.code_hash).await.unwrap(), Some(k1));
    assert_eq!(
        store.code("k-g1").await.unwrap().unwrap().used_at,
        Some(NOW + 5)
    );

    assert_eq!(
        store.access_token("a9").await.unwrap(),
        Some(access("a9", "g9", "c1", "u1"))
    );
    assert_eq!(
        store.refresh_token("r9").await.unwrap(),
        Some(refresh("r9", "g9", "c1", "u1"))
    );
    assert_eq!(store.code(&other.code_hash).await.unwrap(), Some(other));

    // Revoking again revokes nothing; an unknown grant neither.
    assert_eq!(store.revoke_grant("g1", NOW + 6).await.unwrap(), 0);
    assert_eq!(store.revoke_grant("g-unknown", NOW + 6).await.unwrap(), 0);
    assert_eq!(
        store.access_token("a2").await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
}

async fn revoking_an_access_token_succeeds_once(store: Arc<dyn Store>) {
    seed(&*store).await;
    issue(&*store, &access("a1", "g1", "c1", "u1"), None).await;
    issue(&*store, &access("a2", "g1", "c1", "u1"), None).await;
    assert!(store.revoke_access_token("a1", NOW + 1).await.unwrap());
    assert!(!store.revoke_access_token("a1", NOW + 2).await.unwrap());
    assert!(
        !store
            .revoke_access_token("a-unknown", NOW + 2)
            .await
            .unwrap()
    );
    assert_eq!(
        store.access_token("a1").await.unwrap(),
        Some(AccessToken {
            revoked_at: Some(NOW + 1),
            ..access("a1", "g1", "c1", "u1")
        })
    );
    assert_eq!(
        store.access_token("a2").await.unwrap(),
        Some(access("a2", "g1", "c1", "u1"))
    );
}

async fn only_unrevoked_unexpired_tokens_of_the_client_count_as_active(store: Arc<dyn Store>) {
    seed(&*store).await;
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW)
            .await
            .unwrap(),
        0
    );
    issue(&*store, &access("a1", "g1", "c1", "u1"), None).await;
    issue(&*store, &access("a2", "g2", "c1", "u2"), None).await;
    let short = AccessToken {
        expires_at: NOW + 60,
        ..access("a3", "g3", "c1", "u1")
    };
    issue(&*store, &short, None).await;
    issue(&*store, &access("a4", "g4", "c1", "u1"), None).await;
    store.revoke_access_token("a4", NOW).await.unwrap();
    issue(&*store, &access("a5", "g5", "c2", "u1"), None).await;

    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW + 59)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW + 60)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW + HOUR)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c2"), NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c3"), NOW)
            .await
            .unwrap(),
        0
    );
}

/// What the stream watcher relies on (`mcp::streams::watcher`): whatever
/// kills an access token moves the counter, whatever only issues does not.
async fn the_access_token_counter_moves_with_every_change_and_removal_and_not_with_issuing(
    store: Arc<dyn Store>,
) {
    seed(&*store).await;
    let mut last = store.access_token_changes().await.unwrap();
    let moved = |what: &'static str| {
        let store = store.clone();
        async move {
            let n = store.access_token_changes().await.unwrap();
            (n, what)
        }
    };
    let mut expect = |(n, what): (i64, &str), moves: bool| {
        if moves {
            assert!(n > last, "{what} moves the counter ({last} -> {n})");
        } else {
            assert_eq!(n, last, "{what} leaves the counter");
        }
        last = n;
    };

    issue(
        &*store,
        &access("a1", "g1", "c1", "u1"),
        Some(&refresh("r1", "g1", "c1", "u1")),
    )
    .await;
    expect(moved("issuing").await, false);
    let a2 = access("a2", "g1", "c1", "u1");
    let r2 = refresh("r2", "g1", "c1", "u1");
    assert!(
        store
            .rotate_refresh_token("r1", NOW + 10, &a2, &r2)
            .await
            .unwrap()
    );
    expect(moved("a rotation").await, false);
    assert!(store.revoke_access_token("a1", NOW).await.unwrap());
    expect(moved("revoking an access token").await, true);
    assert!(store.revoke_grant("g1", NOW).await.unwrap() > 0);
    expect(moved("revoking a grant").await, true);

    issue(&*store, &access("a3", "g3", "c2", "u1"), None).await;
    expect(moved("issuing").await, false);
    assert!(store.delete_client(&cid("c2")).await.unwrap());
    expect(moved("removing the client (a cascade)").await, true);

    issue(&*store, &access("a4", "g4", "c1", "u2"), None).await;
    assert!(store.delete_user("u2").await.unwrap());
    expect(moved("removing the user (a cascade)").await, true);

    issue(&*store, &access("a5", "g5", "c1", "u1"), None).await;
    assert!(store.set_user_disabled("u1", Some(NOW)).await.unwrap());
    expect(moved("disabling the user").await, true);
    assert_eq!(
        store
            .dead_access_tokens(&["a5".to_string()], NOW)
            .await
            .unwrap(),
        ["a5"],
        "the disabled user's token is dead"
    );

    let short = AccessToken {
        expires_at: NOW + 60,
        ..access("a6", "g6", "c1", "u1")
    };
    issue(&*store, &short, None).await;
    expect(moved("issuing").await, false);
    assert!(store.purge_expired(NOW + 61).await.unwrap() > 0);
    expect(moved("purging expired tokens").await, true);
}

async fn of_many_tokens_the_absent_revoked_and_expired_ones_are_dead(store: Arc<dyn Store>) {
    seed(&*store).await;
    let none: Vec<String> = Vec::new();
    assert!(
        store
            .dead_access_tokens(&none, NOW)
            .await
            .unwrap()
            .is_empty()
    );
    issue(&*store, &access("a1", "g1", "c1", "u1"), None).await;
    let short = AccessToken {
        expires_at: NOW + 60,
        ..access("a2", "g2", "c2", "u2")
    };
    issue(&*store, &short, None).await;
    issue(&*store, &access("a3", "g3", "c1", "u1"), None).await;
    store.revoke_access_token("a3", NOW).await.unwrap();
    issue(&*store, &access("a4", "g4", "c2", "u1"), None).await;
    store.revoke_grant("g4", NOW).await.unwrap();
    issue(&*store, &access("a5", "g5", "c2", "u2"), None).await;
    store.delete_user("u2").await.unwrap();

    let dead = |hashes: Vec<String>, now| {
        let store = store.clone();
        async move {
            let mut d = store.dead_access_tokens(&hashes, now).await.unwrap();
            d.sort();
            d
        }
    };
    // The asked ones that are not dead, sorted.
    let active = |hashes: Vec<String>, now| {
        let dead = dead(hashes.clone(), now);
        async move {
            let dead = dead.await;
            let mut a: Vec<String> = hashes.into_iter().filter(|h| !dead.contains(h)).collect();
            a.sort();
            a
        }
    };
    let asked: Vec<String> = ["a1", "a2", "a3", "a4", "a5", "unknown"]
        .map(String::from)
        .to_vec();
    // u2's tokens went with u2; a3 and a4's grant were revoked.
    assert_eq!(
        dead(asked.clone(), NOW).await,
        ["a2", "a3", "a4", "a5", "unknown"]
    );
    assert_eq!(active(asked.clone(), NOW).await, ["a1"]);
    issue(&*store, &access("a6", "g6", "c2", "u1"), None).await;
    let short = AccessToken {
        expires_at: NOW + 60,
        ..access("a7", "g7", "c1", "u1")
    };
    issue(&*store, &short, None).await;
    let asked: Vec<String> = ["a1", "a6", "a7"].map(String::from).to_vec();
    assert_eq!(active(asked.clone(), NOW + 59).await, ["a1", "a6", "a7"]);
    assert_eq!(active(asked.clone(), NOW + 60).await, ["a1", "a6"]);
    store.delete_client(&cid("c2")).await.unwrap();
    assert_eq!(active(asked, NOW).await, ["a1", "a7"]);
    // More hashes than one query of a backend binds.
    let mut many: Vec<String> = (0..1200).map(|i| format!("x{i}")).collect();
    many.push("a7".into());
    many.insert(0, "a1".into());
    assert_eq!(active(many.clone(), NOW).await, ["a1", "a7"]);
    assert_eq!(dead(many, NOW).await.len(), 1200);
}

// ---------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------

async fn purging_removes_exactly_what_expired_before_the_cutoff(store: Arc<dyn Store>) {
    seed(&*store).await;
    let cutoff = NOW + 100;
    // Expired: everything ends at cutoff - 1. Kept: everything ends at cutoff.
    for (suffix, end) in [("old", cutoff - 1), ("new", cutoff)] {
        store
            .create_login_session(&LoginSession {
                expires_at: end,
                ..session(&format!("s-{suffix}"), "u1")
            })
            .await
            .unwrap();
        store
            .create_code(&AuthCode {
                expires_at: end,
                ..code(&format!("k-{suffix}"), &format!("gk-{suffix}"), "c1", "u1")
            })
            .await
            .unwrap();
        let grant = format!("g-{suffix}");
        // Issued through a code that never expires, so that the code stays.
        let k = AuthCode {
            expires_at: NOW + 365 * DAY,
            ..code(&format!("kt-{suffix}"), &grant, "c1", "u1")
        };
        store.create_code(&k).await.unwrap();
        let a = AccessToken {
            expires_at: end,
            ..access(&format!("a-{suffix}"), &grant, "c1", "u1")
        };
        let r = RefreshToken {
            expires_at: end,
            ..refresh(&format!("r-{suffix}"), &grant, "c1", "u1")
        };
        assert!(
            store
                .redeem_code(&k.code_hash, NOW, &a, Some(&r))
                .await
                .unwrap()
        );
    }
    store
        .save_consent(&consent("u1", "c1", "mcp"))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(cutoff).await.unwrap(), 4);

    assert_eq!(store.login_session("s-old", NOW).await.unwrap(), None);
    assert_eq!(store.code("k-old").await.unwrap(), None);
    assert_eq!(store.access_token("a-old").await.unwrap(), None);
    assert_eq!(store.refresh_token("r-old").await.unwrap(), None);

    assert!(store.login_session("s-new", NOW).await.unwrap().is_some());
    assert!(store.code("k-new").await.unwrap().is_some());
    assert!(store.access_token("a-new").await.unwrap().is_some());
    assert!(store.refresh_token("r-new").await.unwrap().is_some());
    for kept in ["kt-old", "kt-new"] {
        assert!(store.code(kept).await.unwrap().is_some(), "{kept}");
    }
    assert!(store.consent("u1", &cid("c1"), CB).await.unwrap().is_some());
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(store.list_clients().await.unwrap().len(), 2);

    assert_eq!(store.purge_expired(cutoff).await.unwrap(), 0);
}

async fn the_first_server_key_stored_under_a_name_wins(store: Arc<dyn Store>) {
    let first = vec![1u8; 32];
    let second = vec![2u8; 32];
    assert_eq!(store.server_key("cookie", &first).await.unwrap(), first);
    assert_eq!(store.server_key("cookie", &second).await.unwrap(), first);
    // Another name is another key; any bytes survive, zeros included.
    let binary: Vec<u8> = (0..=255).collect();
    assert_eq!(store.server_key("csrf", &binary).await.unwrap(), binary);
    assert_eq!(store.server_key("csrf", &first).await.unwrap(), binary);
    assert_eq!(store.server_key("cookie", &binary).await.unwrap(), first);
}

async fn migrating_again_is_harmless(store: Arc<dyn Store>) {
    seed(&*store).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(store.client(&cid("c1")).await.unwrap(), Some(client("c1")));
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

const RACERS: usize = 8;

async fn concurrent_redeems_of_one_code_let_exactly_one_win(store: Arc<dyn Store>) {
    seed(&*store).await;
    store
        .create_code(&code("k-race", "g1", "c1", "u1"))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let a = access(&format!("a{i}"), "g1", "c1", "u1");
                let r = refresh(&format!("r{i}"), "g1", "c1", "u1");
                barrier.wait().await;
                store.redeem_code("k-race", NOW, &a, Some(&r)).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.push(
            t.await
                .unwrap()
                .expect("no database error under contention"),
        );
    }
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    for (i, w) in won.iter().enumerate() {
        assert_eq!(
            store
                .access_token(&format!("a{i}"))
                .await
                .unwrap()
                .is_some(),
            *w,
            "a{i}"
        );
        assert_eq!(
            store
                .refresh_token(&format!("r{i}"))
                .await
                .unwrap()
                .is_some(),
            *w,
            "r{i}"
        );
    }
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.code("k-race").await.unwrap().unwrap().used_at,
        Some(NOW)
    );
}

async fn concurrent_rotations_of_one_refresh_token_let_exactly_one_win(store: Arc<dyn Store>) {
    seed(&*store).await;
    issue(
        &*store,
        &access("a-0", "g1", "c1", "u1"),
        Some(&refresh("r-0", "g1", "c1", "u1")),
    )
    .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let a = access(&format!("a{i}"), "g1", "c1", "u1");
                let r = refresh(&format!("r{i}"), "g1", "c1", "u1");
                barrier.wait().await;
                store.rotate_refresh_token("r-0", NOW + 1, &a, &r).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.push(
            t.await
                .unwrap()
                .expect("no database error under contention"),
        );
    }
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = won.iter().position(|w| *w).unwrap();
    for (i, w) in won.iter().enumerate() {
        assert_eq!(
            store
                .access_token(&format!("a{i}"))
                .await
                .unwrap()
                .is_some(),
            *w,
            "a{i}"
        );
        assert_eq!(
            store
                .refresh_token(&format!("r{i}"))
                .await
                .unwrap()
                .is_some(),
            *w,
            "r{i}"
        );
    }
    let old = store.refresh_token("r-0").await.unwrap().unwrap();
    assert_eq!(old.rotated_at, Some(NOW + 1));
    assert_eq!(old.successor_hash, Some(format!("r{winner}")));
    // a-0 and the winner's access token.
    assert_eq!(
        store
            .count_active_access_tokens(&cid("c1"), NOW)
            .await
            .unwrap(),
        2
    );
}

async fn concurrent_first_requests_for_a_server_key_agree_on_one_key(store: Arc<dyn Store>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let candidate = vec![u8::try_from(i).unwrap(); 32];
                barrier.wait().await;
                store.server_key("signing", &candidate).await
            })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(
            t.await
                .unwrap()
                .expect("no database error under contention"),
        );
    }
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(keys[0].len(), 32);
    assert!(usize::from(keys[0][0]) < RACERS);
    assert_eq!(
        store.server_key("signing", &[0xff; 32]).await.unwrap(),
        keys[0]
    );
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

async fn a_reopened_store_keeps_users_clients_and_tokens(db: &TestDb) {
    let store = db.open().await;
    seed(&*store).await;
    give_everything(&*store, "u1", "c1", "kept").await;
    let key = store.server_key("cookie", &[7; 32]).await.unwrap();
    drop(store);

    let store = db.open().await;
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![user("u1", "alice"), user("u2", "bob")]
    );
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![client("c1"), client("c2")]
    );
    assert!(holds_everything(&*store, "u1", "c1", "kept").await);
    assert_eq!(
        store.login_session("s-kept", NOW).await.unwrap(),
        Some(session("s-kept", "u1"))
    );
    assert_eq!(
        store.access_token("a-kept").await.unwrap(),
        Some(access("a-kept", "g-kept", "c1", "u1"))
    );
    assert_eq!(
        store.refresh_token("r-kept").await.unwrap(),
        Some(refresh("r-kept", "g-kept", "c1", "u1"))
    );
    assert_eq!(store.server_key("cookie", &[8; 32]).await.unwrap(), key);
}

// ---------------------------------------------------------------------------
// SQLite only
// ---------------------------------------------------------------------------

mod sqlite_only {
    use super::*;

    /// A fresh, migrated SQLite store in `dir`, with [`give_everything`]
    /// stored for alice at `c1` under the suffix `x`.
    async fn filled_store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        seed(&store).await;
        give_everything(&store, "u1", "c1", "x").await;
        store
    }

    #[tokio::test]
    async fn connect_accepts_sqlite_urls_plain_paths_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for (url, file) in [
            (format!("sqlite://{}", path("a.db").display()), path("a.db")),
            (format!("sqlite:{}", path("b.db").display()), path("b.db")),
            (path("c.db").display().to_string(), path("c.db")),
        ] {
            assert!(!file.exists());
            let store = SqliteStore::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            store.create_user(&user("u1", "alice")).await.unwrap();
            assert!(file.exists(), "{url}");
            store.close().await;
            let again = SqliteStore::connect(&url).await.unwrap();
            assert_eq!(
                again.user_by_id("u1").await.unwrap(),
                Some(user("u1", "alice"))
            );
        }

        let one = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let two = SqliteStore::connect("sqlite::memory:").await.unwrap();
        one.migrate().await.unwrap();
        two.migrate().await.unwrap();
        one.create_user(&user("u1", "alice")).await.unwrap();
        assert_eq!(
            one.user_by_id("u1").await.unwrap(),
            Some(user("u1", "alice"))
        );
        assert_eq!(
            two.count_users().await.unwrap(),
            0,
            "memory databases are private"
        );
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_opened_is_a_database_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("x.db");
        let err = SqliteStore::connect(&path.display().to_string())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }

    #[tokio::test]
    async fn connections_use_wal_foreign_keys_a_busy_timeout_and_normal_sync() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let text = |sql: &'static str| sqlx::query_scalar::<_, String>(sql).fetch_one(store.pool());
        let int = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool());
        assert_eq!(text("PRAGMA journal_mode").await.unwrap(), "wal");
        assert_eq!(int("PRAGMA foreign_keys").await.unwrap(), 1);
        assert_eq!(int("PRAGMA busy_timeout").await.unwrap(), 10_000);
        assert_eq!(int("PRAGMA synchronous").await.unwrap(), 1, "NORMAL");
    }

    #[tokio::test]
    async fn a_row_that_does_not_parse_back_is_reported_as_corrupt() {
        for damage in [
            "UPDATE access_tokens SET scope = ''",
            "UPDATE access_tokens SET resource = 'mcp'",
            "UPDATE refresh_tokens SET resource = 'urn:x'",
            "UPDATE auth_codes SET redirect_uri = 'javascript:alert(1)'",
            "UPDATE auth_codes SET code_challenge = 'short'",
            "UPDATE clients SET metadata = '{'",
            "UPDATE clients SET metadata = '{\"redirect_uris\": []}'",
            "UPDATE consents SET scope = 'caf\u{e9}'",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = filled_store(&dir).await;
            sqlx::query(damage).execute(store.pool()).await.unwrap();
            let table = damage.split(' ').nth(1).unwrap();
            let result = match table {
                "access_tokens" => store.access_token("a-x").await.map(drop),
                "refresh_tokens" => store.refresh_token("r-x").await.map(drop),
                "auth_codes" => store.code("k-x").await.map(drop),
                "clients" => store.client(&cid("c1")).await.map(drop),
                "consents" => store.consent("u1", &cid("c1"), CB).await.map(drop),
                other => panic!("no reader for {other}"),
            };
            let err = result.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{damage}: {err:?}");
            if table == "clients" {
                let err = store.list_clients().await.unwrap_err();
                assert!(matches!(err, StoreError::Corrupt(_)), "{damage}: {err:?}");
            }
        }
    }

    #[tokio::test]
    async fn closing_and_reopening_the_file_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled_store(&dir).await;
        store.close().await;
        let url = dir.path().join("mcpgate.db").display().to_string();
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        assert!(holds_everything(&store, "u1", "c1", "x").await);
        assert_eq!(store.count_users().await.unwrap(), 2);
    }
}

// ---------------------------------------------------------------------------
// Federated sign-in (`crate::federation`)
// ---------------------------------------------------------------------------

fn pending(
    state_hash: &str,
    browser_hash: &str,
    expires_at: UnixTime,
) -> mcpgate::store::PendingLogin {
    mcpgate::store::PendingLogin {
        state_hash: state_hash.into(),
        provider_id: "corp".into(),
        browser_hash: browser_hash.into(),
        return_to: "/v1/oauth/authorize?client_id=c&state=%22x%22".into(),
        created_at: NOW,
        expires_at,
    }
}

fn identity(provider: &str, subject: &str, user_id: &str) -> mcpgate::store::UserIdentity {
    mcpgate::store::UserIdentity {
        provider_id: provider.into(),
        subject: subject.into(),
        user_id: user_id.into(),
        email: Some("ann@example.com".into()),
        created_at: NOW,
    }
}

async fn a_pending_login_is_taken_once_and_only_with_its_browser_hash(store: Arc<dyn Store>) {
    let p = pending("s1", "b1", NOW + 600);
    store.create_pending_login(&p).await.unwrap();
    store
        .create_pending_login(&pending("s2", "b2", NOW + 600))
        .await
        .unwrap();
    // Another browser gets nothing and changes nothing.
    assert_eq!(store.take_pending_login("s1", "b2").await.unwrap(), None);
    assert_eq!(store.take_pending_login("s1", "b1").await.unwrap(), Some(p));
    assert_eq!(
        store.take_pending_login("s1", "b1").await.unwrap(),
        None,
        "once"
    );
    assert!(
        store
            .take_pending_login("s2", "b2")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.take_pending_login("nope", "b1").await.unwrap(), None);
}

async fn expired_pending_logins_are_purged(store: Arc<dyn Store>) {
    store
        .create_pending_login(&pending("old", "b", NOW - 10))
        .await
        .unwrap();
    store
        .create_pending_login(&pending("new", "b", NOW + 600))
        .await
        .unwrap();
    store.purge_expired(NOW).await.unwrap();
    assert_eq!(store.take_pending_login("old", "b").await.unwrap(), None);
    assert!(
        store
            .take_pending_login("new", "b")
            .await
            .unwrap()
            .is_some()
    );
}

async fn identities_are_linked_listed_and_unlinked(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "ann")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    let a = identity("corp", "sub-1", "u1");
    let b = identity("github", "4242", "u1");
    store.link_identity(&b).await.unwrap();
    store.link_identity(&a).await.unwrap();
    assert_eq!(
        store.identity("corp", "sub-1").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.identity("corp", "4242").await.unwrap(), None);
    assert_eq!(
        store.identities_of_user("u1").await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert!(store.identities_of_user("u2").await.unwrap().is_empty());
    // One identity, one user.
    assert!(matches!(
        store.link_identity(&identity("corp", "sub-1", "u2")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.unlink_identity("corp", "sub-1").await.unwrap());
    assert!(!store.unlink_identity("corp", "sub-1").await.unwrap());
    assert_eq!(store.identities_of_user("u1").await.unwrap(), vec![b]);
}

async fn a_federated_user_and_its_identity_are_stored_together_or_not_at_all(
    store: Arc<dyn Store>,
) {
    let mut ann = user("u1", "ann");
    ann.password_hash = None;
    store
        .create_federated_user(&ann, &identity("corp", "s1", "u1"))
        .await
        .unwrap();
    assert_eq!(store.user_by_id("u1").await.unwrap(), Some(ann));
    assert_eq!(
        store.identity("corp", "s1").await.unwrap().unwrap().user_id,
        "u1"
    );
    // A taken username: nothing stored, not even the identity.
    let taken = user("u2", "ann");
    assert!(matches!(
        store
            .create_federated_user(&taken, &identity("corp", "s2", "u2"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.identity("corp", "s2").await.unwrap(), None);
    // An identity already linked: the user is not created either.
    let other = user("u3", "ann-2");
    assert!(matches!(
        store
            .create_federated_user(&other, &identity("corp", "s1", "u3"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.user_by_id("u3").await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn identities_go_with_their_user(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "ann")).await.unwrap();
    store
        .link_identity(&identity("corp", "s1", "u1"))
        .await
        .unwrap();
    assert!(store.delete_user("u1").await.unwrap());
    assert_eq!(store.identity("corp", "s1").await.unwrap(), None);
}

async fn concurrent_takes_of_one_pending_login_let_exactly_one_win(store: Arc<dyn Store>) {
    store
        .create_pending_login(&pending("s1", "b1", NOW + 600))
        .await
        .unwrap();
    let takes = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_pending_login("s1", "b1").await.unwrap() })
    });
    let won = futures::future::join_all(takes)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();
    assert_eq!(won, 1);
}

// ---------------------------------------------------------------------------
// Client assertion jtis (private_key_jwt, RFC 7523 §3 item 7)
// ---------------------------------------------------------------------------

async fn an_assertion_jti_is_used_once_per_client_until_it_expires(store: Arc<dyn Store>) {
    let exp = NOW + 120;
    assert!(
        store
            .use_assertion_jti(&cid("c1"), "j1", exp, NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_assertion_jti(&cid("c1"), "j1", exp, NOW + 1)
            .await
            .unwrap()
    );
    // Another client's jti of the same value does not collide.
    assert!(
        store
            .use_assertion_jti(&cid("c2"), "j1", exp, NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_assertion_jti(&cid("c1"), "j2", exp, NOW)
            .await
            .unwrap()
    );
    // Still remembered at its expiry; usable again only after it.
    assert!(
        !store
            .use_assertion_jti(&cid("c1"), "j1", exp + 300, exp)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_assertion_jti(&cid("c1"), "j1", exp + 300, exp + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_assertion_jti(&cid("c1"), "j1", exp + 300, exp + 2)
            .await
            .unwrap()
    );
}

async fn expired_assertion_jtis_are_purged(store: Arc<dyn Store>) {
    assert!(
        store
            .use_assertion_jti(&cid("c1"), "old", NOW - 10, NOW - 100)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_assertion_jti(&cid("c1"), "new", NOW + 10, NOW - 100)
            .await
            .unwrap()
    );
    assert_eq!(store.purge_expired(NOW).await.unwrap(), 1);
    assert_eq!(store.purge_expired(NOW).await.unwrap(), 0);
    // The kept one is still a replay; the purged one is gone.
    assert!(
        !store
            .use_assertion_jti(&cid("c1"), "new", NOW + 10, NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_assertion_jti(&cid("c1"), "old", NOW + 10, NOW - 200)
            .await
            .unwrap()
    );
}

async fn concurrent_uses_of_one_assertion_jti_let_exactly_one_win(store: Arc<dyn Store>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .use_assertion_jti(&cid("c1"), "race", NOW + 60, NOW)
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await
            .unwrap()
            .expect("no database error under contention")
        {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

/// A service token (client credentials grant, issue #16): stored with no
/// user, read back equal, untouched by deleting a user, revocable, and
/// deleted with its client.
async fn a_service_token_has_no_user_and_goes_with_its_client_only(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "ann")).await.unwrap();
    store
        .create_client(&public_client("svc", NOW))
        .await
        .unwrap();
    let service = AccessToken {
        user_id: None,
        ..access("svc-at", "svc-grant", "svc", "unused")
    };
    store.create_access_token(&service).await.unwrap();
    store
        .create_access_token(&access("user-at", "user-grant", "svc", "u1"))
        .await
        .unwrap();
    assert_eq!(
        store.access_token("svc-at").await.unwrap(),
        Some(service.clone())
    );
    assert!(matches!(
        store.create_access_token(&service).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .count_active_access_tokens(&cid("svc"), NOW)
            .await
            .unwrap(),
        2
    );
    // Removing the user takes the user's token only.
    assert!(store.delete_user("u1").await.unwrap());
    assert_eq!(store.access_token("user-at").await.unwrap(), None);
    assert_eq!(
        store.access_token("svc-at").await.unwrap(),
        Some(service.clone())
    );
    assert_eq!(store.revoke_grant("svc-grant", NOW + 1).await.unwrap(), 1);
    assert_eq!(
        store
            .access_token("svc-at")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 1)
    );
    // A token of a client that does not exist is refused.
    let orphan = AccessToken {
        user_id: None,
        ..access("orphan-at", "g", "nobody", "unused")
    };
    assert!(store.create_access_token(&orphan).await.is_err());
    assert!(store.delete_client(&cid("svc")).await.unwrap());
    assert_eq!(store.access_token("svc-at").await.unwrap(), None);
}
