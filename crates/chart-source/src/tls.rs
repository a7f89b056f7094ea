//! The one TLS set-up of both sources (OCI registries and HTTP chart repositories).
//!
//! One behaviour: certificates are verified against the platform's roots, and a
//! `caSecretRef` bundle is *added* to them (a private registry or repository next to public
//! ones); `insecureSkipTLSVerify` turns verification off. The platform roots (on Debian,
//! every file under `/etc/ssl/certs`, ~5 ms of CPU) are read once per process, and only when
//! a TLS connection needs them:
//! - the HTTP source's client verifies with [`LazyRootsVerifier`], which reads them at its
//!   first handshake — a repository on plain HTTP never reads them;
//! - an OCI client (oci-client builds its own HTTP client and takes root certificates, not a
//!   verifier) gets them when it is built for an HTTPS registry, just before its first
//!   request; a client for a plain-HTTP registry never reads them: a redirect to HTTPS
//!   storage is verified against the Mozilla roots compiled into the binary
//!   (`webpki-root-certs`) plus the CA bundle.

use std::sync::{Arc, OnceLock};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The TLS settings of one source, valid by construction (the CA bundle parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    insecure_skip_verify: bool,
    /// `caSecretRef`'s certificates, added to the platform roots.
    ca: Vec<CertificateDer<'static>>,
    /// sha256 of the PEM bundle: tells clients apart without keeping the bundle.
    ca_digest: Option<Digest>,
}

impl TlsSettings {
    /// Settings from `insecureSkipTLSVerify` and the PEM bundle of `caSecretRef` (key
    /// `ca.crt`); a bundle that is not PEM, or holds no certificate, is a config error.
    pub fn new(insecure_skip_verify: bool, ca_pem: Option<&[u8]>) -> Result<TlsSettings> {
        let mut ca = Vec::new();
        if let Some(pem) = ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                ca.push(cert.map_err(|e| {
                    Error::config(
                        "source.caSecretRef",
                        format!("key `ca.crt` is not a PEM certificate bundle: {e}"),
                    )
                })?);
            }
            if ca.is_empty() {
                return Err(Error::config(
                    "source.caSecretRef",
                    "key `ca.crt` holds no PEM certificate",
                ));
            }
            let mut store = RootCertStore::empty();
            for cert in &ca {
                store.add(cert.clone()).map_err(|e| {
                    Error::config(
                        "source.caSecretRef",
                        format!("key `ca.crt` holds a certificate that cannot be a root: {e}"),
                    )
                })?;
            }
        }
        Ok(TlsSettings {
            insecure_skip_verify,
            ca,
            ca_digest: ca_pem.map(Digest::of),
        })
    }

    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify
    }

    /// sha256 of the CA bundle, when one is added.
    pub fn ca_digest(&self) -> Option<Digest> {
        self.ca_digest
    }

    /// A `reqwest` client builder verifying as described in the module docs.
    pub fn reqwest_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        if self.insecure_skip_verify {
            return builder.tls_danger_accept_invalid_certs(true);
        }
        let provider = crypto_provider();
        let verifier = LazyRootsVerifier {
            ca: self.ca.clone(),
            provider: provider.clone(),
            inner: OnceLock::new(),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions();
        match config {
            Ok(config) => {
                let mut config = config
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                builder.tls_backend_preconfigured(config)
            }
            // The provider supports no safe protocol version: let reqwest build its own
            // (verified) configuration rather than fail.
            Err(_) => builder,
        }
    }

    /// Sets an oci-client configuration's TLS fields (see the module docs).
    pub fn apply_to_oci(&self, config: &mut ClientConfig, plain_http: bool) {
        config.accept_invalid_certificates = self.insecure_skip_verify;
        config.extra_root_certificates = Vec::new();
        config.tls_certs_only = Vec::new();
        if self.insecure_skip_verify {
            return;
        }
        let der = |cert: &CertificateDer<'_>| Certificate {
            encoding: CertificateEncoding::Der,
            data: cert.as_ref().to_vec(),
        };
        let roots: Vec<Certificate> = if plain_http {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(der)
                .collect()
        } else {
            platform_roots().iter().map(der).collect()
        };
        config.tls_certs_only = roots.into_iter().chain(self.ca.iter().map(der)).collect();
    }
}

/// The crypto provider reqwest uses: the process default if one is installed, else
/// aws-lc-rs.
fn crypto_provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The platform's root certificates that can serve as trust anchors, read once per process
/// at the first call (unreadable or unusable ones are skipped, as the platform verifier does).
pub fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "cannot read a platform root certificate");
        }
        loaded
            .certs
            .into_iter()
            .filter(|cert| RootCertStore::empty().add(cert.clone()).is_ok())
            .collect()
    })
}

/// Verifies against the platform roots plus a CA bundle, reading the platform roots at the
/// first handshake rather than when the client is built.
#[derive(Debug)]
pub struct LazyRootsVerifier {
    ca: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    inner: OnceLock<std::result::Result<Arc<WebPkiServerVerifier>, String>>,
}

impl LazyRootsVerifier {
    fn inner(&self) -> std::result::Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.inner
            .get_or_init(|| {
                let mut store = RootCertStore::empty();
                store.add_parsable_certificates(platform_roots().iter().cloned());
                store.add_parsable_certificates(self.ca.iter().cloned());
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), self.provider.clone())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| rustls::Error::General(format!("no usable root certificates: {e}")))
    }
}

impl ServerCertVerifier for LazyRootsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_bundles_are_checked_when_the_settings_are_made() {
        let err = TlsSettings::new(false, Some(b"no certificate here")).unwrap_err();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        let err = TlsSettings::new(
            false,
            Some(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("source.caSecretRef"), "{err}");
        let plain = TlsSettings::new(false, None).unwrap();
        assert_eq!(plain.ca_digest(), None);
    }

    #[test]
    fn oci_clients_get_roots_plus_the_ca_and_plain_http_never_reads_the_platform() {
        let settings = TlsSettings::new(false, None).unwrap();
        let mut config = ClientConfig::default();
        settings.apply_to_oci(&mut config, true);
        assert_eq!(
            config.tls_certs_only.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        let insecure = TlsSettings::new(true, None).unwrap();
        insecure.apply_to_oci(&mut config, false);
        assert!(config.accept_invalid_certificates);
        assert!(config.tls_certs_only.is_empty());
    }
}
