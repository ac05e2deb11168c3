//! An HTTPS client as kube-apiserver is one to a webhook: it dials an address under a Service's
//! DNS name, trusts only the CA roots it is given (a caBundle), offers one ALPN protocol, and
//! sends requests over HTTP/1.1 or HTTP/2, whichever the handshake settled, reading each answer
//! whole. Used by the black-box webhook tests and by the admission benchmark, which includes this
//! file by path, so it depends on nothing else in tests/support.
//!
//! Requests are built by the caller: what a request looks like (origin or absolute form, which
//! headers) is part of what each test or benchmark means to send.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Dials one address under one server name, trusting only the given CAs.
#[derive(Clone)]
pub struct Client {
    address: SocketAddr,
    server_name: ServerName<'static>,
    roots: Arc<rustls::RootCertStore>,
}

impl Client {
    /// A client for `address` that verifies the certificate for `server_name` against every
    /// certificate in the PEM bundles `cas` (several, as during a CA rotation). Panics on a
    /// bundle that is not PEM certificates: the caller generated it.
    pub fn trusting(address: SocketAddr, server_name: &str, cas: &[&[u8]]) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for ca in cas {
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots.add(cert.expect("a PEM CA certificate")).expect("a usable CA certificate");
            }
        }
        let server_name = ServerName::try_from(server_name.to_string()).expect("a DNS name");
        Client { address, server_name, roots: Arc::new(roots) }
    }

    /// A TCP connection and a TLS handshake offering only `alpn`. A configuration of its own per
    /// connection means no session resumption: every handshake verifies the certificate the
    /// server presents now (what a certificate rotation test looks at).
    pub async fn handshake(&self, alpn: &[u8]) -> Result<TlsStream<TcpStream>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let tcp = TcpStream::connect(self.address).await.map_err(|e| format!("connect: {e}"))?;
        // As Go's net/http, kube-apiserver's client: no Nagle delay on small writes.
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let connector = TlsConnector::from(Arc::new(config));
        connector.connect(self.server_name.clone(), tcp).await.map_err(|e| format!("TLS: {e}"))
    }
}

/// The ALPN protocol a handshake settled on, if any.
pub fn negotiated(tls: &TlsStream<TcpStream>) -> Option<&[u8]> {
    tls.get_ref().1.alpn_protocol()
}

/// One HTTP/1.1 connection, or one stream's handle on a shared HTTP/2 connection.
pub enum Connection {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Connection {
    /// HTTP over an established TLS stream: HTTP/2 if ALPN settled on `h2`, else HTTP/1.1. The
    /// connection's driver runs as a task of its own until the connection closes.
    pub async fn over(tls: TlsStream<TcpStream>) -> Result<Connection, String> {
        let h2 = negotiated(&tls) == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Ok(Connection::Http2(sender))
        } else {
            let (sender, connection) = http1::handshake(io).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Ok(Connection::Http1(sender))
        }
    }

    /// Sends `request` once the connection can take it and reads the answer whole: its status
    /// and body.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let response = match self {
            Connection::Http1(sender) => {
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
            Connection::Http2(sender) => {
                sender.ready().await.map_err(|e| e.to_string())?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body))
    }

    /// Another handle on the same HTTP/2 connection, for a concurrent stream; none for HTTP/1.1,
    /// which carries one request at a time.
    pub fn stream(&self) -> Option<Connection> {
        match self {
            Connection::Http2(sender) => Some(Connection::Http2(sender.clone())),
            Connection::Http1(_) => None,
        }
    }
}
