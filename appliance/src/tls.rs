//! TLS under any session: the server certificate (from the configured PEM files, or a
//! self-signed one generated at first start), rustls limited to TLS 1.2 and 1.3, and
//! [`Conn`], a connection that is plain until STARTTLS upgrades it, with [`TlsConn`]
//! driving rustls directly so that a TLS session can move between executors.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;

use crate::config::Config;

/// The TLS configuration every executor shares; a reload swaps it for new handshakes.
#[derive(Clone)]
pub struct Certificates(Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>);

impl Certificates {
    /// Loads (or generates) the certificate named by the configuration.
    pub fn load(config: &Config) -> Result<Certificates, String> {
        Ok(Certificates(Arc::new(std::sync::RwLock::new(
            server_config(config)?,
        ))))
    }

    /// Re-reads the certificate files; on error the current ones stay.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        let fresh = server_config(config)?;
        match self.0.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.0.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Builds the TLS configuration every listener shares: the default certificate, and
/// one per `tls.sni` host name.
pub fn server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert_file, key_file) = certificate_files(config)?;
    let mut resolver = SniResolver {
        default: certified_key(&cert_file, &key_file, "tls.cert_file", &provider)?,
        by_name: HashMap::new(),
    };
    for entry in &config.tls.sni {
        let what = format!("tls.sni entry {:?}", entry.name);
        let key = certified_key(&entry.cert_file, &entry.key_file, &what, &provider)?;
        resolver
            .by_name
            .insert(entry.name.trim_end_matches('.').to_ascii_lowercase(), key);
    }
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(Arc::new(server))
}

/// Reads one certificate chain and its key, checking that they belong together.
fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    what: &str,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            format!(
                "cannot read certificates from {}: {e}; check {what}",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate; check {what}",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        format!(
            "cannot read the private key in {}: {e}; check {what}",
            key_file.display()
        )
    })?;
    let certified = CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        format!(
            "the certificate in {} and the key in {} do not fit: {e}; check {what}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// Picks the certificate for the host name a client sends in SNI: an exact entry, then
/// a `*.parent` entry, then the default certificate.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let name = name.to_ascii_lowercase();
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        let found = self
            .by_name
            .get(&name)
            .or_else(|| wildcard.and_then(|w| self.by_name.get(&w)));
        Some(found.unwrap_or(&self.default).clone())
    }
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

/// Ciphertext read from the socket at a time.
const CIPHERTEXT_CHUNK_BYTES: usize = 16 * 1024 + 256;

/// A TLS session over a glommio socket, driven by rustls directly so that its state
/// (`rustls::ServerConnection` and the ciphertext in flight) can move to another
/// executor with the socket.
pub struct TlsConn {
    tcp: TcpStream,
    tls: Box<rustls::ServerConnection>,
    /// Ciphertext read but not yet taken by rustls.
    incoming: Vec<u8>,
    /// Ciphertext produced by rustls but not yet written to the socket.
    outgoing: Vec<u8>,
}

/// A TLS session taken apart to cross to another executor.
pub struct TlsParts {
    /// The rustls session state.
    pub tls: Box<rustls::ServerConnection>,
    /// Ciphertext read but not yet taken by rustls.
    pub incoming: Vec<u8>,
    /// Ciphertext not yet written.
    pub outgoing: Vec<u8>,
}

impl TlsConn {
    /// Runs the server side of a handshake on `tcp`.
    pub async fn accept(tcp: TcpStream, config: &Arc<rustls::ServerConfig>) -> io::Result<TlsConn> {
        let tls = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        let mut conn = TlsConn {
            tcp,
            tls: Box::new(tls),
            incoming: Vec::new(),
            outgoing: Vec::new(),
        };
        futures_lite::future::poll_fn(|cx| conn.poll_handshake(cx)).await?;
        Ok(conn)
    }

    /// Takes the session apart, keeping the socket separate.
    pub fn into_parts(self) -> (TcpStream, TlsParts) {
        (
            self.tcp,
            TlsParts {
                tls: self.tls,
                incoming: self.incoming,
                outgoing: self.outgoing,
            },
        )
    }

    /// Puts a session back together on this executor.
    pub fn from_parts(tcp: TcpStream, parts: TlsParts) -> TlsConn {
        TlsConn {
            tcp,
            tls: parts.tls,
            incoming: parts.incoming,
            outgoing: parts.outgoing,
        }
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.poll_send(cx))?;
            if !self.tls.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if std::task::ready!(self.poll_receive(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection during the TLS handshake",
                )));
            }
        }
    }

    /// Writes all pending ciphertext to the socket.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.outgoing)?;
        }
        while !self.outgoing.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing.drain(..n);
        }
        self.outgoing = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// Reads ciphertext from the socket into rustls; `Ok(0)` at end of stream.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let got = if self.incoming.is_empty() {
            let mut chunk = vec![0u8; CIPHERTEXT_CHUNK_BYTES];
            let n = std::task::ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut chunk))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            chunk.truncate(n);
            self.incoming = chunk;
            n
        } else {
            self.incoming.len()
        };
        let taken = self.tls.read_tls(&mut &self.incoming[..])?;
        self.incoming.drain(..taken);
        if self.incoming.is_empty() {
            // An idle session keeps no read buffer; the next read makes a new one.
            self.incoming = Vec::new();
        }
        self.tls
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Poll::Ready(Ok(got))
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match io::Read::read(&mut this.tls.reader(), buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(e)),
            }
            std::task::ready!(this.poll_send(cx))?;
            if std::task::ready!(this.poll_receive(cx))? == 0 {
                return Poll::Ready(Ok(0));
            }
        }
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = io::Write::write(&mut this.tls.writer(), buf)?;
        // The bytes are rustls's now; sending them may finish in a later flush.
        let _ = this.poll_send(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tls.send_close_notify();
        std::task::ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_close(cx)
    }
}

/// A client connection, in the clear or under TLS.
pub enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsConn>),
    /// Given away (only while a handshake takes the plain stream).
    Closed,
}

impl Conn {
    /// Takes the connection apart for a move to another executor: a standard socket on
    /// a duplicate of the descriptor (the glommio socket is closed here), and the TLS
    /// state if any.
    pub fn detach(self) -> io::Result<(std::net::TcpStream, Option<TlsParts>)> {
        use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
        let (tcp, tls) = match self {
            Conn::Plain(tcp) => (tcp, None),
            Conn::Tls(tls) => {
                let (tcp, parts) = tls.into_parts();
                (tcp, Some(parts))
            }
            Conn::Closed => return Err(io::Error::from(io::ErrorKind::NotConnected)),
        };
        // SAFETY: `tcp` owns this descriptor and keeps it open for the whole borrow; the
        // borrow only lives long enough to duplicate it.
        let fd: OwnedFd =
            unsafe { BorrowedFd::borrow_raw(tcp.as_raw_fd()) }.try_clone_to_owned()?;
        drop(tcp);
        Ok((std::net::TcpStream::from(fd), tls))
    }

    /// Puts a connection that [`Conn::detach`] took apart back together on this executor.
    pub fn attach(socket: std::net::TcpStream, tls: Option<TlsParts>) -> Conn {
        let tcp = TcpStream::from(socket2::Socket::from(socket));
        match tls {
            Some(parts) => Conn::Tls(Box::new(TlsConn::from_parts(tcp, parts))),
            None => Conn::Plain(tcp),
        }
    }

    /// Runs the TLS handshake on a plain connection (after STARTTLS).
    pub async fn start_tls(self, config: &Arc<rustls::ServerConfig>) -> io::Result<Conn> {
        match self {
            Conn::Plain(tcp) => Ok(Conn::Tls(Box::new(TlsConn::accept(tcp, config).await?))),
            Conn::Tls(_) => Err(io::Error::other("TLS is already active")),
            Conn::Closed => Err(closed()),
        }
    }

    /// The TCP connection underneath.
    pub fn tcp(&self) -> io::Result<&TcpStream> {
        match self {
            Conn::Plain(tcp) => Ok(tcp),
            Conn::Tls(tls) => Ok(&tls.tcp),
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
