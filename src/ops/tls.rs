//! TLS for the connections claribi opens to the site's services (the SIEM's syslog receiver,
//! the directory): rustls on ring, verifying against the system's CA roots plus the CA file a
//! setting names, for on-premises CAs.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Client settings trusting the system's roots and the certificates of `ca_file` (PEM; empty:
/// none), which `setting` names in errors.
pub fn client_config(ca_file: &Path, setting: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if !ca_file.as_os_str().is_empty() {
        let unreadable =
            |e: &dyn std::fmt::Display| format!("reading {setting} {}: {e}", ca_file.display());
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| unreadable(&e))? {
            let cert = cert.map_err(|e| unreadable(&e))?;
            roots
                .add(cert)
                .map_err(|e| format!("{setting} {}: {e}", ca_file.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "{setting} {} holds no PEM certificate",
                ca_file.display()
            ));
        }
    }
    // ring's provider is deprecated only for lacking post-quantum key exchange, which syslog
    // receivers and directories do not offer yet; aws-lc-rs, which has it, needs cmake and
    // minutes of build on two cores.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = client_config(&empty, "sso.ca_file").unwrap_err();
        assert!(
            error.contains("sso.ca_file") && error.contains("no PEM certificate"),
            "{error}"
        );
        let missing = client_config(&dir.path().join("missing.pem"), "sso.ca_file").unwrap_err();
        assert!(missing.starts_with("reading sso.ca_file"), "{missing}");
        assert!(client_config(Path::new(""), "sso.ca_file").is_ok());
    }
}
