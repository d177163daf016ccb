//! TLS for the status page and the station app on the LAN (`status.tls_cert_file`,
//! `status.tls_key_file`): loads the PEM files into a rustls server configuration.
//!
//! Why it exists: a tablet on the shop floor sends staff PINs and session cookies to the hub;
//! on a shared Wi-Fi they must not travel in clear. Loopback (the default) needs no TLS.
//! HTTP/1.1 only, like the plain server; the ring provider, like the uplink's client.

use crate::config::StatusTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// Why the certificate or key cannot be used. Each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "cannot read {path} (status.{key}): {source}; check the path and that the hub's user may read it"
    )]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} (status.tls_cert_file) holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the server certificate, then any intermediates"
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "{path} (status.tls_key_file) holds no PEM private key (PKCS#8, PKCS#1 or SEC1); give the key of the certificate, unencrypted"
    )]
    NoKey { path: PathBuf },
    #[error(
        "the certificate {cert} and the key {key} do not go together ({detail}); give the key the certificate was made for"
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// Reads the certificate chain and key and builds the server side of TLS.
pub fn server_config(files: &StatusTls) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let cert_pem = read(&files.cert_file, "tls_cert_file")?;
    let key_pem = read(&files.key_file, "tls_key_file")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: files.cert_file.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsSetupError::NoKey {
        path: files.key_file.clone(),
    })?;
    let mismatch = |detail: String| TlsSetupError::Mismatch {
        cert: files.cert_file.clone(),
        key: files.key_file.clone(),
        detail,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| mismatch(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &std::path::Path, key: &'static str) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Unreadable {
        key,
        path: path.to_owned(),
        source,
    })
}
