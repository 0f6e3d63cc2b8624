//! The rustls server configuration of a web config's `tls_server_config`:
//! the certificate and key (files or inline PEM), the TLS versions, cipher
//! suites and key-exchange groups, and the client certificate policy, with
//! rustls' `WebPkiClientVerifier` where client certificates are verified
//! against the client CA, and the `client_allowed_sans` check on top.
//!
//! Building reads the files every time: `security.rs` calls it again when
//! one of them changes, which is how certificates rotate. Messages name the
//! file or key that is wrong and never contain key material.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::config::{ClientAuth, Pem, TlsServerConfig};

/// The rustls server configuration for `config`; `http2` adds `h2` to the
/// protocols offered (ALPN).
pub fn server_config(config: &TlsServerConfig, http2: bool) -> Result<ServerConfig, String> {
    let provider = Arc::new(provider(config));
    let cert_bytes = read_pem(&config.cert, "cert")?;
    let chain = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            format!(
                "cannot read the certificate in {}: {error}",
                config.cert.describe("cert")
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "no certificate in {}: expected PEM (-----BEGIN CERTIFICATE-----)",
            config.cert.describe("cert")
        ));
    }
    let key_bytes = read_pem(&config.key, "key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|error| {
        format!(
            "cannot read the private key in {}: {}",
            config.key.describe("key"),
            pem_error(&error)
        )
    })?;
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if config.min_tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if config.max_tls13 {
        versions.push(&rustls::version::TLS13);
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|error| format!("invalid tls settings: {error}"))?;
    let verifier = client_verifier(config, &provider)?;
    let mut server = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|error| {
            format!(
                "the certificate in {} and the key in {} do not make a usable pair: {error}",
                config.cert.describe("cert"),
                config.key.describe("key")
            )
        })?;
    server.ignore_client_order = config.prefer_server_cipher_suites;
    server.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(server)
}

/// aws-lc-rs with the configured cipher suites and groups, in their order.
fn provider(config: &TlsServerConfig) -> CryptoProvider {
    use aws_lc_rs::{cipher_suite, kx_group};
    let mut provider = aws_lc_rs::default_provider();
    if !config.cipher_suites.is_empty() {
        let mut suites: Vec<_> = provider
            .cipher_suites
            .iter()
            .filter(|suite| matches!(suite, rustls::SupportedCipherSuite::Tls13(_)))
            .copied()
            .collect();
        suites.extend(config.cipher_suites.iter().map(|name| match *name {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            }
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            }
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            }
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
                cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            }
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
                cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            }
            _ => cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        }));
        provider.cipher_suites = suites;
    }
    if !config.curve_preferences.is_empty() {
        provider.kx_groups = config
            .curve_preferences
            .iter()
            .map(|name| match *name {
                "CurveP256" => kx_group::SECP256R1,
                "CurveP384" => kx_group::SECP384R1,
                "X25519MLKEM768" => kx_group::X25519MLKEM768,
                _ => kx_group::X25519,
            })
            .collect();
    }
    provider
}

/// The bytes of a PEM source: a file read now, or the inline text.
fn read_pem(pem: &Pem, inline_key: &str) -> Result<Vec<u8>, String> {
    match pem {
        Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        Pem::File(path) => std::fs::read(path)
            .map_err(|error| format!("cannot read {} ({inline_key}): {error}", path.display())),
    }
}

/// A PEM error in words that never quote the file's content.
fn pem_error(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::NoItemsFound => {
            "no private key found: expected PEM (-----BEGIN PRIVATE KEY-----, RSA or EC)".to_owned()
        }
        Error::Io(error) => error.to_string(),
        _ => "the PEM is malformed".to_owned(),
    }
}

/// The verifier for the configured client certificate policy.
fn client_verifier(
    config: &TlsServerConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let verifier: Arc<dyn ClientCertVerifier> = match config.client_auth {
        ClientAuth::NoClientCert => Arc::new(rustls::server::NoClientAuth),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: config.client_auth.requires(),
                provider: provider.clone(),
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let ca = config
                .client_ca
                .as_ref()
                .ok_or("a client ca is needed to verify client certificates")?;
            let mut roots = RootCertStore::empty();
            let bytes = read_pem(ca, "client_ca")?;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|error| {
                    format!(
                        "cannot read the client ca in {}: {error}",
                        ca.describe("client_ca")
                    )
                })?;
                roots.add(cert).map_err(|error| {
                    format!(
                        "unusable client ca certificate in {}: {error}",
                        ca.describe("client_ca")
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "no certificate in {}: expected PEM (-----BEGIN CERTIFICATE-----)",
                    ca.describe("client_ca")
                ));
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if config.client_auth.requires() {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder
                .build()
                .map_err(|error| format!("cannot verify client certificates: {error}"))?
        }
    };
    if config.client_allowed_sans.is_empty() {
        return Ok(verifier);
    }
    let names = config
        .client_allowed_sans
        .iter()
        .map(|san| {
            ServerName::try_from(san.as_str())
                .map(|name| name.to_owned())
                .map_err(|_| format!("client_allowed_sans entry {san:?} is neither a DNS name nor an IP address, the two kinds of name checked here"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(AllowedSans {
        inner: verifier,
        names,
    }))
}

/// `RequestClientCert` and `RequireAnyClientCert`: a client certificate is
/// asked for (and required by the second) but not checked against any CA;
/// the client must still prove it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

/// `client_allowed_sans`: the inner policy, then the client certificate
/// must be valid for one of the names.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self
            .names
            .iter()
            .any(|name| cert.verify_is_valid_for_subject_name(name).is_ok())
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
