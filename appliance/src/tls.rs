//! TLS under any session: the server certificate (from the configured PEM files, or a
//! self-signed one generated at first start), rustls limited to TLS 1.2 and 1.3, and
//! [`Conn`], a connection that is plain until STARTTLS upgrades it.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Builds the acceptor every listener shares.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, String> {
    let (cert_file, key_file) = certificate_files(config)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            format!(
                "cannot read certificates from {}: {e}; check tls.cert_file",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate; check tls.cert_file",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        format!(
            "cannot read the private key in {}: {e}; check tls.key_file",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "the certificate and key in {} do not fit: {e}",
                cert_file.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The configured PEM files, or the self-signed pair in `<data_dir>/tls/`, made on first use.
fn certificate_files(config: &Config) -> Result<(PathBuf, PathBuf), String> {
    let tls = &config.tls;
    if !tls.cert_file.as_os_str().is_empty() {
        return Ok((tls.cert_file.clone(), tls.key_file.clone()));
    }
    let dir = config.server.data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if !cert.exists() || !key.exists() {
        generate_self_signed(&config.server.hostname, &dir, &cert, &key)?;
        println!(
            "treehouse: generated a self-signed certificate for {} in {}; set tls.cert_file and tls.key_file for a real one",
            config.server.hostname,
            cert.display()
        );
    }
    Ok((cert, key))
}

fn generate_self_signed(hostname: &str, dir: &Path, cert: &Path, key: &Path) -> Result<(), String> {
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot generate a self-signed certificate: {e}"))?;
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(key, made.signing_key.serialize_pem())?;
    restrict_to_owner(key)?;
    write(cert, made.cert.pem())
}

fn restrict_to_owner(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))
}

/// A client connection, in the clear or under TLS.
pub enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// Given away (only while a handshake takes the plain stream).
    Closed,
}

impl Conn {
    /// Runs the TLS handshake on a plain connection (after STARTTLS).
    pub async fn start_tls(self, acceptor: &TlsAcceptor) -> io::Result<Conn> {
        match self {
            Conn::Plain(tcp) => Ok(Conn::Tls(Box::new(acceptor.accept(tcp).await?))),
            Conn::Tls(_) => Err(io::Error::other("TLS is already active")),
            Conn::Closed => Err(closed()),
        }
    }

    /// The TCP connection underneath.
    pub fn tcp(&self) -> io::Result<&TcpStream> {
        match self {
            Conn::Plain(tcp) => Ok(tcp),
            Conn::Tls(tls) => Ok(tls.get_ref().0),
            Conn::Closed => Err(closed()),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was lost during a TLS handshake",
    )
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Conn::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Conn::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Conn::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(tcp).poll_close(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_close(cx),
            Conn::Closed => Poll::Ready(Err(closed())),
        }
    }
}
