//! Calling another Tessera service: the server must prove it *is* that service.
//!
//! Checking the server's DNS name is not enough inside Tessera: every certificate from the
//! CA could carry `localhost` or a shared name, and then any of them could stand in for any
//! service reached by that name. So a client says which service it means to call, and the
//! handshake succeeds only if the server's certificate chains to the Tessera CA, is valid
//! for serving, and names exactly `spiffe://tessera/<that service>` in its URI SAN. The
//! DNS names in the certificate play no part (as in SPIFFE's X.509-SVID rules).
//!
//! tonic's own TLS settings cannot take a custom verifier, so [`ServiceConnector`] does the
//! TCP connect and the rustls handshake itself and hands tonic the encrypted stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Endpoint, Uri};

use crate::identity::identity_of_certificate;
use crate::{MtlsError, ServiceIdentity};

/// A connection that has carried nothing for this long is pinged. A server whose host
/// died, or a link cut without a reset, never answers, and without the ping every call
/// (and any open stream, such as a revocation feed) would wait on that connection until
/// the kernel gave up on it, a quarter of an hour later.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a ping may go unanswered before the connection is dropped and the next call
/// opens a new one. Generous: a busy but live server must not lose its connections.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to one Tessera service over mutual TLS, presenting this service's certificate
/// and accepting only a server whose certificate names the expected identity. Cheap to
/// clone.
#[derive(Clone)]
pub struct ServiceConnector {
    tls: TlsConnector,
    server: ServiceIdentity,
    sni: ServerName<'static>,
}

impl std::fmt::Debug for ServiceConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConnector")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl ServiceConnector {
    /// A connector to `server`, trusting only `ca_pem` and presenting `cert_pem`/`key_pem`.
    pub(crate) fn new(
        server: ServiceIdentity,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, MtlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in pem_certificates(ca_pem, "tls.ca_file")? {
            roots
                .add(ca)
                .map_err(|e| MtlsError::Certificate(format!("tls.ca_file: {e}")))?;
        }
        let chain = pem_certificates(cert_pem, "tls.cert_file")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| MtlsError::Certificate(format!("tls.key_file: {e}")))?;
        let verifier = Arc::new(IdentityVerifier {
            roots: Arc::new(roots),
            expected: server.clone(),
            provider: provider.clone(),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MtlsError::Certificate(format!("tls versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|e| MtlsError::Certificate(format!("tls.cert_file/key_file: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        // The service name is sent as SNI so a server hosting several names could choose;
        // it is never what the server is judged by.
        let sni = ServerName::try_from(server.name().to_owned())
            .map_err(|e| MtlsError::Certificate(format!("server name: {e}")))?;
        Ok(ServiceConnector {
            tls: TlsConnector::from(Arc::new(config)),
            server,
            sni,
        })
    }

    /// The service this connector accepts.
    pub fn server(&self) -> &ServiceIdentity {
        &self.server
    }

    /// A tonic endpoint for `url` (`https://host:port`), to be finished with timeouts and
    /// connected through this connector (`connect_with_connector[_lazy]`).
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, MtlsError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| MtlsError::Url(format!("{url:?}: {e}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(MtlsError::Url(format!(
                "{url:?}: calls between Tessera services are mutual TLS; write it as https://host:port"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| MtlsError::Url(format!("{url:?}: no host:port")))?;
        // The TLS is ours, so tonic must see a plain scheme or it would add its own.
        Endpoint::from_shared(format!("http://{authority}"))
            .map_err(|e| MtlsError::Url(format!("{url:?}: {e}")))
    }

    /// A channel to `url` that connects on first use with the given timeouts, and
    /// replaces a connection that has gone silent (about ten seconds after it did).
    pub fn lazy_channel(
        &self,
        url: &str,
        connect_timeout: std::time::Duration,
        call_timeout: std::time::Duration,
    ) -> Result<tonic::transport::Channel, MtlsError> {
        Ok(self
            .endpoint(url)?
            .connect_timeout(connect_timeout)
            .timeout(call_timeout)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_with_connector_lazy(self.clone()))
    }

    async fn connect(
        tls: TlsConnector,
        sni: ServerName<'static>,
        uri: Uri,
    ) -> Result<TokioIo<TlsStream<TcpStream>>, std::io::Error> {
        let host = uri
            .host()
            .ok_or_else(|| std::io::Error::other(format!("{uri}: no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(443);
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let stream = tls.connect(sni, tcp).await?;
        Ok(TokioIo::new(stream))
    }
}

impl tower::Service<Uri> for ServiceConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(Self::connect(self.tls.clone(), self.sni.clone(), uri))
    }
}

fn pem_certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>, MtlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MtlsError::Certificate(format!("{key}: {e}")))?;
    if certs.is_empty() {
        return Err(MtlsError::Certificate(format!(
            "{key}: no PEM certificate found"
        )));
    }
    Ok(certs)
}

/// The server check: chain and validity as webpki judges them for a TLS server, then the
/// SPIFFE identity instead of a DNS name.
#[derive(Debug)]
struct IdentityVerifier {
    roots: Arc<RootCertStore>,
    expected: ServiceIdentity,
    provider: Arc<CryptoProvider>,
}

/// Why a server was not the service the client meant to call.
#[derive(thiserror::Error)]
#[error("the server presented {presented} where {expected} was expected: another service's certificate answered at this address; check the url")]
struct WrongServer {
    presented: String,
    expected: ServiceIdentity,
}

// rustls shows the cause of a refused certificate with `Debug`; make that the sentence.
impl std::fmt::Debug for WrongServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl ServerCertVerifier for IdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match identity_of_certificate(end_entity.as_ref()) {
            Ok(presented) if presented == self.expected => Ok(ServerCertVerified::assertion()),
            other => {
                let presented = match other {
                    Ok(identity) => identity.to_string(),
                    Err(_) => "no Tessera identity".to_owned(),
                };
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(WrongServer {
                        presented,
                        expected: self.expected.clone(),
                    })),
                )))
            }
        }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tower::Service;

    use super::*;
    use crate::{DevCa, DevPki, TlsFiles};

    /// A TLS server on loopback presenting `cert_pem`; answers "ok" to one client.
    async fn serve_once(cert_pem: String, key_pem: String) -> std::net::SocketAddr {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"ok").await;
                let _ = tls.shutdown().await;
            }
        });
        addr
    }

    fn ca(dir: &Path) -> DevCa {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("ca file");
        DevCa::from_pem(&read("ca.pem"), &read("ca.key")).expect("ca")
    }

    fn login_files(dir: &Path) -> TlsFiles {
        DevPki::ensure(dir)
            .expect("pki")
            .files_for(&ServiceIdentity::login())
    }

    async fn connect(
        files: &TlsFiles,
        server: ServiceIdentity,
        addr: std::net::SocketAddr,
    ) -> Result<String, std::io::Error> {
        let mut connector = files.connector_to(&server).expect("connector");
        let uri: Uri = format!("http://{addr}").parse().expect("uri");
        let io = connector.call(uri).await?;
        let mut stream = io.into_inner();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn the_server_named_by_its_identity_is_accepted() {
        let dir = tempfile::tempdir().expect("dir");
        let files = login_files(dir.path());
        let stash = ca(dir.path())
            .issue(&ServiceIdentity::token_stash())
            .expect("stash certificate");
        let addr = serve_once(stash.cert_pem, stash.key_pem).await;
        let answer = connect(&files, ServiceIdentity::token_stash(), addr)
            .await
            .expect("the stash is the stash");
        assert_eq!(answer, "ok");
    }

    #[tokio::test]
    async fn a_certificate_naming_the_right_dns_name_but_another_identity_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let files = login_files(dir.path());
        // What a check of DNS names alone would have taken for the stash.
        let impostor = ca(dir.path())
            .issue_with_dns_names(&ServiceIdentity::audit(), &["token-stash", "localhost"])
            .expect("impostor certificate");
        let addr = serve_once(impostor.cert_pem, impostor.key_pem).await;
        let err = connect(&files, ServiceIdentity::token_stash(), addr)
            .await
            .expect_err("the audit service is not the stash");
        let message = err.to_string();
        assert!(message.contains("spiffe://tessera/audit"), "{message}");
        assert!(
            message.contains("spiffe://tessera/token-stash"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_certificate_with_the_right_identity_from_another_ca_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let files = login_files(dir.path());
        let rogue = DevCa::generate("another CA")
            .expect("ca")
            .issue(&ServiceIdentity::token_stash())
            .expect("rogue certificate");
        let addr = serve_once(rogue.cert_pem, rogue.key_pem).await;
        connect(&files, ServiceIdentity::token_stash(), addr)
            .await
            .expect_err("a certificate the CA never issued");
    }

    #[test]
    fn service_urls_must_be_https_with_a_host() {
        let dir = tempfile::tempdir().expect("dir");
        let connector = login_files(dir.path())
            .connector_to(&ServiceIdentity::token_stash())
            .expect("connector");
        let err = connector
            .endpoint("http://127.0.0.1:7401")
            .expect_err("plain http");
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(connector.endpoint("not a url").is_err());
        let endpoint = connector
            .endpoint("https://stash.dc-a.internal:7401")
            .expect("https");
        assert_eq!(
            endpoint.uri().to_string(),
            "http://stash.dc-a.internal:7401/"
        );
    }
}
