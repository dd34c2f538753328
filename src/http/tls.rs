//! Native TLS: mcpgate serving HTTPS itself (`tls_cert_file`,
//! `tls_key_file`), with rustls.
//!
//! - [`TlsFiles::load`] reads a PEM certificate chain (leaf first) and a PEM
//!   private key (PKCS#8, PKCS#1 or SEC1) and checks that they belong
//!   together; a problem is a start-up error naming the file.
//! - The server offers HTTP/2 and HTTP/1.1 by ALPN (RFC 7301), TLS 1.3 and
//!   1.2 with rustls' safe defaults (no client certificates).
//! - [`CertReloader`] serves the current certificate to every new handshake
//!   and [`CertReloader::watch`] swaps it when the files change (checked
//!   every [`RELOAD_CHECK_EVERY`]): a renewed certificate (certbot, an ACME
//!   client, a secret mount) is picked up without a restart, and connections
//!   already open keep theirs. Files that do not load (a half-written pair,
//!   a key that does not match) keep the previous certificate and log
//!   `tls.reload_failed`; the next change is tried again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

/// How often the certificate and key files are checked for changes.
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(2);

/// ALPN protocol ids offered, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The two files named by the settings.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a file looked like when it was last read: a change of either
/// triggers a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

impl TlsFiles {
    /// Reads and checks the pair.
    pub fn load(&self, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
        let cert_pem = std::fs::read(&self.cert).map_err(|e| {
            TlsError(format!(
                "cannot read tls_cert_file {}: {e}",
                self.cert.display()
            ))
        })?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                TlsError(format!(
                    "tls_cert_file {} is not a PEM certificate chain: {e}",
                    self.cert.display()
                ))
            })?;
        if chain.is_empty() {
            return Err(TlsError(format!(
                "tls_cert_file {} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks, the server's own first)",
                self.cert.display()
            )));
        }
        let key_pem = std::fs::read(&self.key).map_err(|e| {
            TlsError(format!(
                "cannot read tls_key_file {}: {e}",
                self.key.display()
            ))
        })?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            TlsError(format!(
                "tls_key_file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                self.key.display()
            ))
        })?;
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            TlsError(format!(
                "tls_key_file {}: unsupported private key: {e}",
                self.key.display()
            ))
        })?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(|_| {
            TlsError(format!(
                "tls_key_file {} is not the private key of the certificate in tls_cert_file {}",
                self.key.display(),
                self.cert.display()
            ))
        })?;
        Ok(certified)
    }

    fn stamps(&self) -> (Option<Stamp>, Option<Stamp>) {
        (stamp(&self.cert), stamp(&self.key))
    }
}

/// Hands every handshake the current certificate.
pub struct CertReloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key never appears in Debug output.
        f.debug_struct("CertReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

impl CertReloader {
    /// Loads the pair (a start-up error if it does not load).
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let first = files.load(&provider)?;
        Ok(Arc::new(Self {
            files,
            provider,
            current: RwLock::new(Arc::new(first)),
        }))
    }

    /// The acceptor for the accept loop: HTTP/2 and HTTP/1.1 by ALPN.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Loads the files again and, if they load, serves them from the next
    /// handshake on.
    pub fn reload(&self) -> Result<(), TlsError> {
        let next = self.files.load(&self.provider)?;
        match self.current.write() {
            Ok(mut c) => *c = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        Ok(())
    }

    /// Checks the files every [`RELOAD_CHECK_EVERY`] until `stop`, and
    /// reloads when either has changed.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let mut seen = self.files.stamps();
        let mut tick = tokio::time::interval(RELOAD_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = self.files.stamps();
            if now == seen {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => tracing::info!(
                    event = "tls.certificate_reloaded",
                    cert = %self.files.cert.display(),
                    "TLS certificate reloaded"
                ),
                Err(e) => tracing::error!(
                    event = "tls.reload_failed",
                    error = %e,
                    "TLS certificate files changed but cannot be used; still serving the previous certificate"
                ),
            }
        }
    }
}
