//! The rustls client configuration for HTTPS upstreams, shared by every runtime.

use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::StartError;

/// Env variable naming a PEM file whose certificates are trusted besides the bundled roots.
pub const CA_FILE_ENV: &str = "SWITCHBACK_CA_FILE";

/// The TLS client setup a runtime handshakes with.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// rustls config: the ring provider, webpki roots plus `$SWITCHBACK_CA_FILE`, HTTP/1.1.
    pub config: Arc<ClientConfig>,
}

impl TlsSetup {
    /// Builds the client config on the ring provider (chosen explicitly, never a process
    /// default), trusting the bundled webpki roots plus every certificate in
    /// `$SWITCHBACK_CA_FILE`. An unset or empty variable adds nothing; a file that cannot be
    /// read or holds no certificate is an error, so a typo is not silently ignored.
    pub fn from_env() -> Result<TlsSetup, StartError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = std::env::var_os(CA_FILE_ENV).filter(|p| !p.is_empty()) {
            let shown = std::path::Path::new(&path).display().to_string();
            let bad =
                |e: &dyn std::fmt::Display| StartError::Tls(format!("{CA_FILE_ENV}={shown}: {e}"));
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(&path).map_err(|e| bad(&e))? {
                let cert = cert.map_err(|e| bad(&e))?;
                roots.add(cert).map_err(|e| bad(&e))?;
                added += 1;
            }
            if added == 0 {
                return Err(bad(&"the file holds no PEM certificate"));
            }
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSetup {
            config: Arc::new(config),
        })
    }

    /// The same trust, offering HTTP/2 (`h2`) instead: for gRPC over TLS.
    pub fn for_h2(&self) -> TlsSetup {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsSetup {
            config: Arc::new(config),
        }
    }
}
