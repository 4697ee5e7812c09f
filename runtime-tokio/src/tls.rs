//! The rustls client configuration for HTTPS upstreams.

use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::StartError;

/// Env variable naming a PEM file whose certificates are trusted besides the bundled roots.
pub(crate) const CA_FILE_ENV: &str = "SWITCHBACK_CA_FILE";

/// A client config on the ring provider (chosen explicitly, never a process default), trusting
/// the bundled webpki roots plus every certificate in `$SWITCHBACK_CA_FILE`, speaking HTTP/1.1.
pub(crate) fn client_config() -> Result<Arc<ClientConfig>, StartError> {
    let tls_err = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os(CA_FILE_ENV) {
        let shown = std::path::Path::new(&path).display().to_string();
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}")))?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
