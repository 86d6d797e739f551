//! Which certificate authorities the client trusts: the Mozilla roots compiled in (as
//! before), the operating system's store (where an organisation installs its private CA),
//! and a CA file the user names.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};

/// A TLS client configuration with its trusted roots.
#[derive(Clone)]
pub struct Trust {
    config: Arc<ClientConfig>,
    system_roots: usize,
    file_roots: usize,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("system_roots", &self.system_roots)
            .field("file_roots", &self.file_roots)
            .finish_non_exhaustive()
    }
}

impl Trust {
    /// The Mozilla roots, the operating system's (unreadable ones are skipped), and every
    /// certificate of the PEM file `ca_file`, if given (it must hold at least one).
    pub fn new(ca_file: Option<&Path>) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let system = rustls_native_certs::load_native_certs();
        let (system_roots, _) = roots.add_parsable_certificates(system.certs);
        let mut file_roots = 0;
        if let Some(path) = ca_file {
            let bad = |reason: String| Error::Tls(format!("{}: {reason}", path.display()));
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("holds no PEM certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
                file_roots += 1;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust {
            config: Arc::new(config),
            system_roots,
            file_roots,
        })
    }

    /// The rustls configuration.
    pub(crate) fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}
