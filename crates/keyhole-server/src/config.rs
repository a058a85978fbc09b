//! Server configuration: defaults that run on a fresh machine, overridden by a TOML file, then
//! by environment variables, then by command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

/// Everything the server can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder for the database and blobs.
    pub data_dir: PathBuf,
    /// Serve plain HTTP instead of HTTPS (only for loopback tests or behind a TLS proxy).
    pub insecure_http: bool,
    /// PEM certificate chain; with `tls_key`. Unset: a self-signed certificate is made on first
    /// start in `data_dir/tls` and pinned by clients through pairing codes.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Extra host names or IP addresses for the self-signed certificate.
    pub tls_names: Vec<String>,
    /// Largest sealed object accepted, in bytes.
    pub max_object_bytes: u64,
    /// Largest signed record (roster, camera record, key package, backup) accepted, in bytes.
    pub max_record_bytes: usize,
    /// Longest a pairing token may live, in seconds.
    pub max_pairing_ttl_secs: u64,
    /// How often retention limits are enforced, in seconds.
    pub retention_sweep_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: default_data_dir(),
            insecure_http: false,
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            max_object_bytes: 1 << 30,
            max_record_bytes: 64 * 1024,
            max_pairing_ttl_secs: 3600,
            retention_sweep_secs: 600,
        }
    }
}

/// `$XDG_DATA_HOME/keyhole-server`, else `~/.local/share/keyhole-server`, else
/// `./keyhole-data`.
#[must_use]
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("keyhole-server");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/keyhole-server"),
        None => PathBuf::from("keyhole-data"),
    }
}

impl Config {
    /// Reads `path` (if given) over the defaults.
    ///
    /// # Errors
    /// If the file cannot be read or has an unknown or ill-typed key.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        match path {
            None => Ok(Self::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("in config {}", p.display()))
            }
        }
    }
}
