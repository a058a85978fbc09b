//! The HTTPS client that cameras and enrolled devices use to reach a Keyhole server.
//!
//! A server with a self-signed certificate is trusted only by the SHA-256 fingerprint of that
//! certificate, which reaches the camera or device out of band in a pairing code; any other
//! server uses the usual web PKI. Plain `http://` is refused except to a loopback address,
//! unless the caller says the deployment is behind a TLS-terminating proxy on the same host.
//! End-to-end encryption protects video either way; TLS hides credentials and request patterns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why no client was built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The server address is not an http(s) URL, or carries a user name or password.
    #[error(
        "server address {0:?} is not an http:// or https:// URL with a host and no user name or \
         password"
    )]
    BadUrl(String),
    /// Plain HTTP to a host that is not loopback, without permission.
    #[error("refusing plain HTTP to {0}: only loopback addresses may be reached without TLS")]
    PlainHttp(String),
    /// The TLS or HTTP stack could not be set up.
    #[error("could not set up the HTTPS client: {0}")]
    Setup(String),
}

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL, `https://host:port`.
    pub url: String,
    /// SHA-256 of the server's certificate, when it is self-signed (from the pairing code).
    pub pin: Option<[u8; 32]>,
    /// Allow `http://` to a non-loopback host (a TLS proxy in front, on a trusted path).
    pub allow_plain_http: bool,
}

/// The scheme and host of a server address, parsed as a URL (RFC 3986, as browsers and
/// `reqwest` read it), so what is checked is what will be connected to. An address with a user
/// name or password in it is refused: there is no place for credentials there, and
/// `http://127.0.0.1:80@example.org/` is the host after the `@`.
fn host_of(url: &str) -> Option<(String, url::Host)> {
    let parsed = url::Url::parse(url).ok()?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    let host = parsed.host()?.to_owned();
    Some((parsed.scheme().to_owned(), host))
}

fn is_loopback(host: &url::Host) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// How long a connection to the server is kept for reuse: shorter than the server's 30 s.
pub const IDLE_CONNECTION: std::time::Duration = std::time::Duration::from_secs(20);

/// Builds the HTTP client for `endpoint`.
///
/// # Errors
/// [`TransportError`] for a bad URL, refused plain HTTP, or a TLS set-up failure.
pub fn client(endpoint: &Endpoint) -> Result<reqwest::Client, TransportError> {
    let (scheme, host) =
        host_of(&endpoint.url).ok_or_else(|| TransportError::BadUrl(endpoint.url.clone()))?;
    let builder = reqwest::Client::builder()
        .https_only(scheme == "https")
        // The server closes a connection idle for 30 s; dropping ours sooner means a request
        // never goes out on one it is closing at that moment.
        .pool_idle_timeout(IDLE_CONNECTION);
    let builder = match (scheme.as_str(), endpoint.pin) {
        ("http", _) if !is_loopback(&host) && !endpoint.allow_plain_http => {
            return Err(TransportError::PlainHttp(host.to_string()));
        }
        ("http", _) => builder,
        ("https", Some(pin)) => builder.use_preconfigured_tls(pinned_tls(pin)?),
        ("https", None) => builder,
        _ => return Err(TransportError::BadUrl(endpoint.url.clone())),
    };
    builder
        .build()
        .map_err(|e| TransportError::Setup(e.to_string()))
}

fn pinned_tls(pin: [u8; 32]) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Pinned {
        pin,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts exactly the certificate with the pinned fingerprint (compared in constant time),
/// and checks that the server holds its key by verifying the handshake signature.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(seen.ct_eq(&self.pin)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate fingerprint {} is not the pinned one",
                hex::encode(seen)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(url: &str) -> Option<(String, String)> {
        host_of(url).map(|(scheme, host)| (scheme, host.to_string()))
    }

    fn loopback(url: &str) -> bool {
        host_of(url).is_some_and(|(_, host)| is_loopback(&host))
    }

    #[test]
    fn hosts_and_loopback() {
        let pair = |s: &str, h: &str| Some((s.to_owned(), h.to_owned()));
        assert_eq!(
            host("https://example.org:8443/x"),
            pair("https", "example.org")
        );
        assert_eq!(host("http://[::1]:80"), pair("http", "[::1]"));
        assert_eq!(host("http://127.0.0.1"), pair("http", "127.0.0.1"));
        assert_eq!(host("https://"), None);
        assert!(loopback("http://localhost:8080") && loopback("http://LocalHost/"));
        assert!(loopback("http://127.0.0.2") && loopback("http://[::1]:80/"));
        assert!(!loopback("http://192.0.2.1") && !loopback("http://example.org"));
        // What comes before an `@` is a user name, not the host: refused outright.
        assert_eq!(host("http://[::1]:80@example.org/"), None);
        assert_eq!(host("http://127.0.0.1:80@example.org/"), None);
        assert_eq!(host("http://user:secret@127.0.0.1/"), None);
        // A host that only looks like loopback.
        assert!(!loopback("http://127.0.0.1.example.org/"));
        assert!(!loopback("http://localhost.example.org/"));
    }
}
