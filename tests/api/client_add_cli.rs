//! `mcpgate client add`, run as a child process in a temporary directory
//! (its own `mcpgate.db`): each option, the refusals, and a secret printed
//! once and stored only as its hash.

use std::process::{Command, Output, Stdio};

use mcpgate::store::Store;
use mcpgate::store::sqlite::SqliteStore;
use mcpgate_core::crypto::hash_secret;
use mcpgate_core::domain::ClientId;
use mcpgate_core::model::{ClientKind, GrantType, TokenEndpointAuthMethod};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.0.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("MCPGATE_") {
                c.env_remove(k);
            }
        }
        c.stdin(Stdio::null()).output().expect("runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn fails(&self, args: &[&str], needle: &str) {
        let o = self.run(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} does not mention {needle:?}"
        );
    }

    async fn store(&self) -> SqliteStore {
        let url = format!("sqlite://{}", self.0.path().join("mcpgate.db").display());
        SqliteStore::connect(&url).await.expect("open")
    }
}

/// `key=value` lines of stdout.
fn field(out: &str, key: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[tokio::test]
async fn a_secret_client_is_printed_once_and_only_its_hash_is_stored() {
    let dir = Dir::new();
    let out = dir.ok(&["client", "add", "--name", "Nightly job", "--secret"]);
    let id = field(&out, "client_id").expect("client_id line");
    let secret = field(&out, "client_secret").expect("client_secret line");
    assert!(
        secret.starts_with("mcps_") && secret.len() == 69,
        "{secret}"
    );
    uuid_like(&id);

    let store = dir.store().await;
    let c = store
        .client(&ClientId::parse(&id).unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(c.kind, ClientKind::Preregistered);
    assert_eq!(
        c.secret_hash.as_deref(),
        Some(hash_secret(&secret).as_str())
    );
    assert_eq!(c.metadata.grant_types, vec![GrantType::ClientCredentials]);
    assert_eq!(c.metadata.scope.as_ref().unwrap().to_string(), "mcp");
    assert_eq!(c.display_name(), "Nightly job");
    drop(store);
    // The plaintext is nowhere in the database files.
    for entry in std::fs::read_dir(dir.0.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored in plain text"
        );
    }
    // Shown only once: list and show never print it.
    let list = dir.ok(&["client", "list"]);
    assert!(
        list.contains(&id) && list.contains("preregistered"),
        "{list}"
    );
    let show = dir.ok(&["client", "show", &id]);
    assert!(!show.contains(&secret) && !list.contains(&secret));
    let doc: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(doc["kind"], "preregistered");
    assert_eq!(
        doc["grant_types"],
        serde_json::json!(["client_credentials"])
    );
}

fn uuid_like(id: &str) {
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4, "{id}");
}

#[tokio::test]
async fn every_option_is_stored_as_given() {
    let dir = Dir::new();
    let out = dir.ok(&[
        "client",
        "add",
        "--name",
        "Desktop app",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--redirect-uri",
        "https://app.example/cb",
        "--grant-types",
        "authorization_code",
        "--scope",
        "mcp",
        "--client-id",
        "desktop-app",
    ]);
    assert_eq!(field(&out, "client_id").as_deref(), Some("desktop-app"));
    assert_eq!(field(&out, "client_secret"), None);

    let jwks = dir.0.path().join("jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
    )
    .unwrap();
    let out = dir.ok(&[
        "client",
        "add",
        "--name",
        "Signer",
        "--jwks-file",
        jwks.to_str().unwrap(),
        "--grant-types",
        "client_credentials",
        "--json",
    ]);
    let doc: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(doc["token_endpoint_auth_method"], "private_key_jwt");
    assert!(doc.get("client_secret").is_none());
    let signer = doc["client_id"].as_str().unwrap().to_string();

    let out = dir.ok(&[
        "client",
        "add",
        "--name",
        "Remote keys",
        "--jwks-uri",
        "https://svc.example/jwks.json",
        "--grant-types",
        "client_credentials",
        "--json",
    ]);
    let remote: Value = serde_json::from_str(out.trim()).unwrap();

    let out = dir.ok(&[
        "client",
        "add",
        "--name",
        "Web",
        "--secret",
        "--redirect-uri",
        "https://web.example/cb",
        "--grant-types",
        "authorization_code,refresh_token",
        "--grant-types",
        "client_credentials",
        "--json",
    ]);
    let web: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(web["client_secret"].as_str().unwrap().starts_with("mcps_"));
    assert_eq!(
        web["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );

    let store = dir.store().await;
    let desktop = store
        .client(&ClientId::parse("desktop-app").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        desktop.metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::None
    );
    assert_eq!(desktop.secret_hash, None);
    assert_eq!(desktop.metadata.redirect_uris.len(), 2);
    assert_eq!(
        desktop.metadata.grant_types,
        vec![GrantType::AuthorizationCode]
    );
    assert_eq!(desktop.metadata.response_types, vec!["code".to_string()]);
    let signer = store
        .client(&ClientId::parse(&signer).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        signer.metadata.jwks.as_ref().unwrap()["keys"][0]["kid"],
        "k1"
    );
    assert_eq!(signer.secret_hash, None);
    let remote = store
        .client(&ClientId::parse(remote["client_id"].as_str().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        remote.metadata.jwks_uri.as_deref(),
        Some("https://svc.example/jwks.json")
    );
    assert_eq!(remote.kind, ClientKind::Preregistered);
}

#[test]
fn bad_combinations_are_refused_with_a_clear_error() {
    let dir = Dir::new();
    dir.fails(
        &["client", "add", "--name", "x"],
        "choose exactly one of --public, --secret",
    );
    dir.fails(
        &["client", "add", "--name", "x", "--public", "--secret"],
        "choose exactly one",
    );
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "x",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--grant-types",
            "client_credentials",
        ],
        "only for confidential clients",
    );
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "x",
            "--secret",
            "--grant-types",
            "authorization_code",
        ],
        "needs at least one --redirect-uri",
    );
    dir.fails(
        &[
            "client", "add", "--name", "x", "--secret", "--scope", "admin",
        ],
        "not offered by this server",
    );
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "x",
            "--secret",
            "--grant-types",
            "password",
        ],
        "not a grant type",
    );
    dir.fails(
        &["client", "add", "--name", "x", "--public"],
        "--redirect-uri",
    );
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "x",
            "--jwks-uri",
            "http://svc.example/jwks",
        ],
        "https",
    );
    let key = dir.0.path().join("private.json");
    std::fs::write(
        &key,
        r#"{"keys":[{"kty":"RSA","n":"a","e":"AQAB","d":"secret"}]}"#,
    )
    .unwrap();
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "x",
            "--jwks-file",
            key.to_str().unwrap(),
        ],
        "private member",
    );
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "x",
            "--secret",
            "--client-id",
            "https://app.example/c.json",
        ],
        "Client ID Metadata",
    );
    dir.ok(&[
        "client",
        "add",
        "--name",
        "x",
        "--secret",
        "--client-id",
        "dup",
    ]);
    dir.fails(
        &[
            "client",
            "add",
            "--name",
            "y",
            "--secret",
            "--client-id",
            "dup",
        ],
        "already exists",
    );
}
