//! One command-line flag per setting (`--key-with-dashes`), layered over
//! the file and the environment by `Cli::load_settings`.

use std::net::SocketAddr;

use clap::Args;
use serde::Serialize;

use crate::config::{EndpointStyleSetting, LogFormat};

/// One flag per setting; unset flags leave the lower sources alone.
#[derive(Debug, Clone, Args, Serialize, Default)]
pub struct SettingFlags {
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[arg(long, global = true, value_parser = parse_style)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_style: Option<EndpointStyleSetting>,
    #[arg(long, global = true, value_parser = parse_default_policy)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_policy: Option<mcpgate_core::policy::DefaultPolicy>,
    /// Comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_scope: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_resource: Option<bool>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_clients: Option<bool>,
    /// Comma-separated host names.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkce_exempt_redirect_hosts: Option<Vec<String>>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_code_ttl: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_refresh_tokens: Option<bool>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_grace_period: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_session_ttl: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unused_client_ttl: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_rate_limit: Option<u32>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_rate_limit: Option<u32>,
    /// Comma-separated CIDR blocks or addresses.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
    /// Comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_session_idle_timeout: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_stream_keep_alive: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_read_timeout: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_timeout: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[arg(long, global = true, value_parser = parse_log_format)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_login: Option<bool>,
    /// Comma-separated CIDR blocks or addresses.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_allow_networks: Option<Vec<String>>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_ca_file: Option<std::path::PathBuf>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<std::path::PathBuf>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<std::path::PathBuf>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_documents: Option<bool>,
    /// Comma-separated host names.
    #[arg(long, global = true, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_client_hosts: Option<Vec<String>>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_store: Option<bool>,
    /// `off`, `stdout`, or a file path.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_jsonl: Option<String>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_tool_arguments: Option<bool>,
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_retention_days: Option<u32>,
    /// A second address serving only `GET /metrics`.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The environment variable holding the `/metrics` bearer token.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token_env: Option<String>,
}

fn parse_style(s: &str) -> Result<EndpointStyleSetting, String> {
    match s {
        "v1" => Ok(EndpointStyleSetting::V1),
        "root" => Ok(EndpointStyleSetting::Root),
        _ => Err("use v1 or root".into()),
    }
}

fn parse_default_policy(s: &str) -> Result<mcpgate_core::policy::DefaultPolicy, String> {
    match s {
        "allow" => Ok(mcpgate_core::policy::DefaultPolicy::Allow),
        "deny" => Ok(mcpgate_core::policy::DefaultPolicy::Deny),
        _ => Err("use allow or deny".into()),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("use text or json".into()),
    }
}
