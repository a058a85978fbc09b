//! The HTTPS client that cameras and enrolled devices use to reach a Keyhole server.
//!
//! A server with a self-signed certificate is trusted only by the SHA-256 fingerprint of that
//! certificate, which reaches the camera or device out of band in a pairing code; any other
//! server uses the usual web PKI. Plain `http://` is refused except to a loopback address,
//! unless the caller says the deployment is behind a TLS-terminating proxy on the same host.
//! End-to-end encryption protects video either way; TLS hides credentials and request patterns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::net::IpAddr;
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
    /// The server address is not an http(s) URL.
    #[error("server address {0:?} is not an http:// or https:// URL")]
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

fn host_of(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then_some((scheme, host))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Builds the HTTP client for `endpoint`.
///
/// # Errors
/// [`TransportError`] for a bad URL, refused plain HTTP, or a TLS set-up failure.
pub fn client(endpoint: &Endpoint) -> Result<reqwest::Client, TransportError> {
    let (scheme, host) =
        host_of(&endpoint.url).ok_or_else(|| TransportError::BadUrl(endpoint.url.clone()))?;
    let builder = reqwest::Client::builder().https_only(scheme == "https");
    let builder = match (scheme, endpoint.pin) {
        ("http", _) if !is_loopback(host) && !endpoint.allow_plain_http => {
            return Err(TransportError::PlainHttp(host.to_owned()));
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

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(
            host_of("https://example.org:8443/x"),
            Some(("https", "example.org"))
        );
        assert_eq!(host_of("http://[::1]:80"), Some(("http", "::1")));
        assert_eq!(host_of("http://127.0.0.1"), Some(("http", "127.0.0.1")));
        assert_eq!(host_of("https://"), None);
        assert!(is_loopback("localhost") && is_loopback("127.0.0.2") && is_loopback("::1"));
        assert!(!is_loopback("192.0.2.1") && !is_loopback("example.org"));
    }
}
