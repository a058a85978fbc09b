//! HTTPS: a configured certificate, or a self-signed one made on first start and kept in the
//! data folder. Cameras and clients pin a self-signed certificate by the SHA-256 fingerprint
//! that pairing codes carry, so it needs no certificate authority.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::{AppState, Config};

/// The server's TLS set-up.
pub struct Tls {
    /// The rustls configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate's DER encoding.
    pub fingerprint: [u8; 32],
    /// Whether the certificate was generated here (and so must be pinned by fingerprint).
    pub self_signed: bool,
}

/// Loads the configured certificate, or the self-signed one in `data_dir/tls`, making it on
/// first start.
///
/// # Errors
/// If a file cannot be read or written, or holds no usable certificate or key.
pub fn load_or_create(config: &Config) -> anyhow::Result<Tls> {
    let (cert_path, key_path, self_signed) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        (None, None) => {
            let dir = config.data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                generate(&dir, &c, &k, &config.tls_names)?;
            }
            (c, k, true)
        }
        _ => bail!("tls_cert and tls_key must be set together"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading certificate {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cert_path.display()))?;
    let leaf = certs
        .first()
        .with_context(|| format!("no certificate in {}", cert_path.display()))?;
    let fingerprint: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading private key {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not match or are unsupported")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(server),
        fingerprint,
        self_signed,
    })
}

fn generate(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    extra_names: &[String],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(extra_names.iter().cloned());
    let key = rcgen::KeyPair::generate().context("generating the TLS key")?;
    let mut params = rcgen::CertificateParams::new(names).context("certificate names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keyhole-server (self-signed)");
    // rcgen's default validity (1975 to 4096) is kept: the certificate is pinned by
    // fingerprint, so expiry would only break cameras that cannot be reached to re-pair.
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Serves the API over HTTPS on `listener` until `shutdown` resolves (`crate::serve`).
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    crate::serve::serve(listener, state, Some(tls), shutdown).await;
}
