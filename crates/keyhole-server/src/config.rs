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
    /// How often objects below the owners' retention floors are deleted, in seconds.
    pub retention_sweep_secs: u64,
    /// `postgres://user:password@host:port/database` to keep metadata in PostgreSQL (which
    /// several servers may share) instead of the SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    /// An S3-compatible bucket to keep sealed objects in (which several servers may share)
    /// instead of the folder in `data_dir`.
    pub s3: Option<S3Config>,
    /// This server's URL as the other servers on the same `database_url` reach it (say
    /// `http://10.0.0.5:8443`); set on every server, it relays live view between them.
    pub advertise_url: Option<String>,
    /// The other servers' `advertise_url`s: the only places live view is fetched from (with
    /// the viewer's credential). A server naming another URL on the database is ignored.
    pub peers: Vec<String>,
    /// Seconds between the comments that keep a device's announcement channel open (through
    /// proxies that close idle connections), at each of which its credential is checked again:
    /// 1 to 30, 15 by default.
    pub keep_alive_secs: u64,
    /// Most connections open at once; past that, new ones wait until one closes (4096).
    pub max_connections: usize,
    /// Seconds a partial upload must go unwritten to count as abandoned against its camera's
    /// quota of 16 (60).
    pub abandoned_upload_secs: u64,
    /// How push services reach the operator: a `mailto:` or `https:` URL sent as the VAPID
    /// `sub` claim with every push (RFC 8292 §2.1; some push services refuse pushes without).
    pub push_contact: Option<String>,
    /// Take `http://` push endpoints (a push service on a trusted network, or tests); by
    /// default only `https://` ones.
    pub push_allow_http: bool,
}

/// Where the S3 bucket is and how to sign in to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket, which must exist.
    pub bucket: String,
    /// The service's URL, for S3-compatible servers; unset for Amazon S3.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region to sign requests for.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id; unset: `AWS_ACCESS_KEY_ID` (or the other AWS credential sources).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key; unset: `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Allow an `http://` endpoint (only on a trusted network: the objects are sealed, but the
    /// credentials' signatures and the object names would travel in the clear).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// A secret setting (a password, or a URL holding one): never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, to hand to the client library that uses it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
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
            database_url: None,
            s3: None,
            advertise_url: None,
            peers: Vec::new(),
            keep_alive_secs: 15,
            max_connections: 4096,
            abandoned_upload_secs: 60,
            push_contact: None,
            push_allow_http: false,
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
    /// The defaults, then `path` (if given), then an environment variable per key:
    /// `KEYHOLE_` and the key in upper case (`KEYHOLE_MAX_OBJECT_BYTES=1000000`), its value read
    /// as a TOML value, or as a string when it is not one.
    ///
    /// # Errors
    /// If the file cannot be read, or a key is unknown or ill-typed.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut table = match path {
            None => toml::Table::new(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("in config {}", p.display()))?
            }
        };
        for key in Self::KEYS {
            let var = format!("KEYHOLE_{}", key.to_uppercase());
            if let Ok(value) = std::env::var(&var) {
                let parsed = format!("v = {value}")
                    .parse::<toml::Table>()
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or(toml::Value::String(value));
                table.insert((*key).to_owned(), parsed);
            }
        }
        toml::Value::Table(table)
            .try_into()
            .context("in the configuration")
    }

    /// Every key a config file may set.
    pub const KEYS: &'static [&'static str] = &[
        "listen",
        "data_dir",
        "insecure_http",
        "tls_cert",
        "tls_key",
        "tls_names",
        "max_object_bytes",
        "max_record_bytes",
        "max_pairing_ttl_secs",
        "retention_sweep_secs",
        "database_url",
        "s3",
        "advertise_url",
        "peers",
        "keep_alive_secs",
        "max_connections",
        "abandoned_upload_secs",
        "push_contact",
        "push_allow_http",
    ];
}
