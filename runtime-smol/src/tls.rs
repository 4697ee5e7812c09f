//! The rustls client configuration for HTTPS upstreams: the ring provider, the bundled
//! webpki roots, and every PEM certificate in `$SWITCHBACK_CA_FILE` when it is set.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::StartError;

/// The environment variable naming an extra PEM file of trusted certificates.
pub const CA_FILE_ENV: &str = "SWITCHBACK_CA_FILE";

/// Builds the one TLS client configuration the gateway uses.
pub(crate) fn client_config() -> Result<Arc<ClientConfig>, StartError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = std::env::var_os(CA_FILE_ENV) {
        let shown = path.to_string_lossy().into_owned();
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}")))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(StartError::Tls(format!(
                "{CA_FILE_ENV}={shown} holds no PEM certificate"
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
