//! The console's listener: plain HTTP, TLS (rustls), or both on one port. The first
//! byte of a connection tells them apart (a TLS ClientHello starts with 0x16); when TLS
//! is required, a plain connection gets a short refusal naming `https://` and is closed.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use super::WebError;

/// A client gets this long to send its first byte and finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What plain clients read when TLS is required.
const TLS_REQUIRED: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 49\r\n\r\nThis console requires TLS: use an https:// URL.\r\n";

/// How the listener treats connections.
#[derive(Clone)]
pub enum Mode {
    Plain,
    /// TLS offered; `required` refuses plain connections.
    Tls {
        acceptor: TlsAcceptor,
        required: bool,
    },
}

impl Mode {
    /// Reads the certificate chain and key; both must be given for TLS.
    pub fn from_files(
        cert: Option<&Path>,
        key: Option<&Path>,
        required: bool,
    ) -> Result<Mode, WebError> {
        let (cert, key) = match (cert, key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) if !required => return Ok(Mode::Plain),
            _ => return Err(WebError::TlsRequiredWithoutCertificate),
        };
        let tls_error = |path: &Path, message: String| WebError::Tls {
            path: path.to_path_buf(),
            message,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| tls_error(cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(tls_error(cert, "no certificate in the file".into()));
        }
        let private =
            PrivateKeyDer::from_pem_file(key).map_err(|e| tls_error(key, e.to_string()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(chain, private)
            })
            .map_err(|e| tls_error(key, e.to_string()))?;
        Ok(Mode::Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            required,
        })
    }

    pub fn offers_tls(&self) -> bool {
        matches!(self, Mode::Tls { .. })
    }
}

/// A connection, plain or TLS.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Who is on the other end, and whether over TLS (which decides the cookie's Secure).
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Connected<IncomingStream<'_, WebListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, WebListener>) -> Peer {
        *stream.remote_addr()
    }
}

/// Accepts TCP connections and hands over those that are ready for HTTP: TLS
/// handshakes run on their own tasks, so a slow client delays no one else.
pub struct WebListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(Connection, Peer)>,
}

impl WebListener {
    pub fn start(tcp: TcpListener, mode: Mode) -> io::Result<WebListener> {
        let local = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of descriptors or similar: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (sender, mode) = (sender.clone(), mode.clone());
                tokio::spawn(async move {
                    if let Some(ready) = prepare(stream, addr, &mode).await {
                        let _ = sender.send(ready).await;
                    }
                });
            }
        });
        Ok(WebListener { local, ready })
    }
}

async fn prepare(stream: TcpStream, addr: SocketAddr, mode: &Mode) -> Option<(Connection, Peer)> {
    let plain = Peer { addr, tls: false };
    let Mode::Tls { acceptor, required } = mode else {
        return Some((Connection::Plain(stream), plain));
    };
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    let is_tls = match peeked {
        Ok(Ok(1)) => first[0] == 0x16,
        _ => return None,
    };
    if is_tls {
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
            .await
            .ok()?
            .ok()?;
        Some((Connection::Tls(Box::new(tls)), Peer { addr, tls: true }))
    } else if *required {
        let mut stream = stream;
        let _ = stream.write_all(TLS_REQUIRED).await;
        let _ = stream.shutdown().await;
        None
    } else {
        Some((Connection::Plain(stream), plain))
    }
}

impl Listener for WebListener {
    type Io = Connection;
    type Addr = Peer;

    async fn accept(&mut self) -> (Connection, Peer) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer {
            addr: self.local,
            tls: false,
        })
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_flush(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
