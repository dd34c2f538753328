//! The HTTP client builder every subcommand starts from: when
//! `MCPGATE_BENCH_CA` names a PEM file, the server's certificate must chain
//! to it (a server with native TLS and a certificate the bench made);
//! otherwise the system's roots.

use anyhow::Context;

/// The variable naming the PEM file of the bench's certificate authority.
pub const CA_VAR: &str = "MCPGATE_BENCH_CA";

pub fn builder() -> anyhow::Result<reqwest::ClientBuilder> {
    let b = reqwest::Client::builder();
    let Some(path) = std::env::var_os(CA_VAR) else {
        return Ok(b);
    };
    let pem = std::fs::read(&path).with_context(|| format!("reading {CA_VAR} {path:?}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{CA_VAR} {path:?} holds no PEM certificate"))?;
    Ok(b.tls_certs_only(certs))
}
