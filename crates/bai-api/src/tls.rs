//! One rustls client configuration for both HTTP (reqwest) and WebSockets.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, Result};

/// TLS options of a [`crate::ClientConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file with extra CA certificates to trust besides the platform's.
    pub extra_ca: Option<PathBuf>,
    /// Accept any server certificate (self-signed servers).
    ///
    /// Logged at `warn` every time it is put to use: once when a [`crate::Client`] is built
    /// with it (that client's HTTPS requests all share the unverified configuration) and once
    /// per `wss` tunnel connection ([`crate::TcpproxyTarget::request`]). Individual HTTPS
    /// requests of the client log it at `debug` only: a single command makes several requests
    /// (version probe, paginated listing, …) and the desktop app polls, so a warning per
    /// request would bury every other log line without telling the user anything new.
    pub insecure: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls configuration: platform roots plus `extra_ca`, or no verification at all.
pub(crate) fn build(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid_input(format!("TLS setup failed: {e}")))?;
    if opts.insecure {
        tracing::warn!(
            "TLS certificate verification is DISABLED (insecure option): the server's identity is not checked"
        );
        let cfg = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth();
        return Ok(Arc::new(cfg));
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::debug!(
            errors = native.errors.len(),
            "some platform certificates could not be loaded"
        );
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "platform root certificates loaded");
    if let Some(path) = &opts.extra_ca {
        let data = std::fs::read(path).map_err(|e| {
            Error::invalid_input(format!("cannot read CA file {}: {e}", path.display()))
        })?;
        let certs = rustls_pemfile::certs(&mut data.as_slice())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::invalid_input(format!("cannot parse CA file {}: {e}", path.display()))
            })?;
        if certs.is_empty() {
            return Err(Error::invalid_input(format!(
                "no PEM certificate in CA file {}",
                path.display()
            )));
        }
        for c in certs {
            roots.add(c).map_err(|e| {
                Error::invalid_input(format!("bad certificate in {}: {e}", path.display()))
            })?;
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// Accepts every certificate but still checks handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_default_and_insecure() {
        assert!(build(&TlsOptions::default()).is_ok());
        assert!(build(&TlsOptions {
            extra_ca: None,
            insecure: true
        })
        .is_ok());
    }

    #[test]
    fn bad_ca_file_is_invalid_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a pem").expect("write");
        let e = build(&TlsOptions {
            extra_ca: Some(p),
            insecure: false,
        })
        .expect_err("must fail");
        assert!(matches!(e.kind(), crate::ErrorKind::InvalidInput(_)), "{e}");
        let e = build(&TlsOptions {
            extra_ca: Some(dir.path().join("missing.pem")),
            insecure: false,
        })
        .expect_err("must fail");
        assert!(e.to_string().contains("missing.pem"));
    }
}
