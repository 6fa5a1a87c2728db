//! TLS for the Teams API: reading a PEM certificate chain and private key into a rustls server
//! configuration, with every failure named by its file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::StartError;

/// The PEM files the Teams API serves HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert_chain: PathBuf,
    /// Its private key: PKCS#8 (`PRIVATE KEY`), RSA (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`).
    pub private_key: PathBuf,
}

impl TlsFiles {
    /// Reads both files and builds the server configuration.
    pub(crate) fn server_config(&self) -> Result<ServerConfig, StartError> {
        let certs = read_cert_chain(&self.cert_chain)?;
        let key = read_private_key(&self.private_key)?;
        // ring, as reqwest's rustls-tls uses: naming the provider here means no process-wide
        // default is needed, so rustls can never panic for want of one (or for finding two).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Tls {
                path: self.cert_chain.clone(),
                message: format!("failed to set up TLS: {e}"),
            })?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| StartError::Tls {
                path: self.private_key.clone(),
                message: format!(
                    "failed to use the TLS private key {} with the certificate chain {}: {e}",
                    self.private_key.display(),
                    self.cert_chain.display()
                ),
            })
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError::Tls {
        path: path.to_owned(),
        message: format!("failed to read the TLS {what} {}: {e}", path.display()),
    })
}

fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let bytes = read(path, "certificate chain")?;
    let not_pem = |why: String| StartError::Tls {
        path: path.to_owned(),
        message: format!("{} is not a PEM certificate chain: {why}", path.display()),
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(describe(&e)))?;
    if certs.is_empty() {
        return Err(not_pem(
            "it has no -----BEGIN CERTIFICATE----- section".into(),
        ));
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, StartError> {
    let bytes = read(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| StartError::Tls {
        path: path.to_owned(),
        message: match e {
            pem::Error::NoItemsFound => format!(
                "no private key found in {} (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC \
                 PRIVATE KEY section)",
                path.display()
            ),
            e => format!(
                "{} is not a PEM private key: {}",
                path.display(),
                describe(&e)
            ),
        },
    })
}

/// A PEM error as a fragment, with the offending line as text rather than bytes.
fn describe(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a section has no -----END {}----- line",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed section start {:?}",
            String::from_utf8_lossy(line)
        ),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, contents: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mock-teams-tls-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file.pem");
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn message(err: StartError) -> String {
        match err {
            StartError::Tls { message, .. } => message,
            other => panic!("not a TLS error: {other}"),
        }
    }

    #[test]
    fn a_key_file_with_only_a_certificate_has_no_key() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let path = scratch("cert-as-key", cert.cert.pem().as_bytes());
        let err = message(read_private_key(&path).unwrap_err());
        assert!(err.starts_with("no private key found in "), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_cut_pem_section_is_named() {
        let path = scratch("cut", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
        let err = message(read_cert_chain(&path).unwrap_err());
        assert!(err.contains("is not a PEM certificate chain"), "{err}");
        assert!(err.contains("-----END CERTIFICATE-----"), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = scratch("mismatch-cert", one.cert.pem().as_bytes());
        let key = scratch("mismatch-key", two.signing_key.serialize_pem().as_bytes());
        let files = TlsFiles {
            cert_chain: cert.clone(),
            private_key: key.clone(),
        };
        let err = message(files.server_config().unwrap_err());
        assert!(err.contains("with the certificate chain"), "{err}");
        assert!(err.to_lowercase().contains("key"), "{err}");
        for p in [cert, key] {
            std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
        }
    }
}
