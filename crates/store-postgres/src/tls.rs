//! TLS for tokio-postgres over rustls with the **ring** provider: a [`MakeTlsConnect`] built from
//! the DSN's `sslmode` / `sslrootcert` (see `dsn.rs`), with the three verification levels libpq
//! has: none (`prefer`, `require` without roots), chain only (`verify-ca`, `require` with roots)
//! and chain plus host name (`verify-full`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use power_loop_contracts::{Error, ErrorCode, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::dsn::{PgDsn, RootCerts, SslMode};

/// The connector handed to tokio-postgres and deadpool (cheap to clone: one shared config).
#[derive(Clone)]
pub(crate) struct RustlsMakeTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for RustlsMakeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsMakeTls").finish_non_exhaustive()
    }
}

fn tls_config_error(why: String) -> Error {
    Error::new(ErrorCode::StoreDsnInvalid, why).with_detail("parameter", "sslrootcert")
}

fn load_roots(roots: &RootCerts) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::System => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        RootCerts::File(path) => {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| {
                tls_config_error(format!("cannot read sslrootcert `{shown}`: {e}")).with_source(e)
            })?;
            let mut n = 0usize;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    tls_config_error(format!("sslrootcert `{shown}` is not valid PEM: {e}"))
                })?;
                store.add(cert).map_err(|e| {
                    tls_config_error(format!(
                        "sslrootcert `{shown}` holds a certificate rustls rejects: {e}"
                    ))
                })?;
                n += 1;
            }
            if n == 0 {
                return Err(tls_config_error(format!(
                    "sslrootcert `{shown}` holds no PEM certificate"
                )));
            }
        }
    }
    Ok(store)
}

impl RustlsMakeTls {
    /// Builds the rustls client configuration for a parsed DSN (reads `sslrootcert` now, so a
    /// missing or malformed file is reported at connect time as `store.dsn_invalid`).
    pub(crate) fn new(dsn: &PgDsn) -> Result<RustlsMakeTls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("rustls protocol setup failed: {e}")))?;
        let chain = match (&dsn.roots, dsn.ssl_mode) {
            (None, _) | (_, SslMode::Disable | SslMode::Prefer) => None,
            (Some(roots), _) => {
                let store = Arc::new(load_roots(roots)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(store, provider)
                    .build()
                    .map_err(|e| tls_config_error(format!("no usable root certificate: {e}")))?;
                Some(webpki)
            }
        };
        let verifier = Arc::new(ModeVerifier {
            chain,
            check_host: dsn.ssl_mode == SslMode::VerifyFull,
            algorithms,
        });
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(RustlsMakeTls {
            config: Arc::new(config),
        })
    }
}

/// The server-certificate check of one `sslmode`, at libpq's three levels:
/// - no roots (`prefer`, `require` without `sslrootcert`): encrypted, but any certificate is
///   accepted (libpq's behaviour);
/// - `verify-ca` (and `require` with roots): the chain must verify against the roots;
/// - `verify-full`: the chain and the host name.
///
/// Handshake signatures are always checked, so the peer holds the certificate's key.
#[derive(Debug)]
struct ModeVerifier {
    /// The chain verifier; `None` accepts any certificate.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must also name the host (`verify-full`).
    check_host: bool,
    /// The provider's signature algorithms (the same ones the chain verifier uses).
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ModeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // rustls checks the chain first and the name last: a name mismatch means the chain
            // verified.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsMakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // An invalid name (e.g. a socket directory) only matters if TLS is actually attempted.
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| e.to_string());
        Ok(RustlsConnect {
            config: Arc::clone(&self.config),
            name,
        })
    }
}

/// One connection attempt's TLS handshake.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: std::result::Result<ServerName<'static>, String>,
}

type HandshakeFuture<S> = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = HandshakeFuture<S>;

    fn connect(self, stream: S) -> HandshakeFuture<S> {
        Box::pin(async move {
            let name = self.name.map_err(|why| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the host is not a valid TLS server name: {why}"),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS-wrapped connection stream.
pub(crate) struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // No tls-server-end-point binding (its hash depends on the certificate's signature
        // algorithm); `channel_binding=require` is refused by the DSN parser.
        ChannelBinding::none()
    }
}
