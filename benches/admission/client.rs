//! The client: what kube-apiserver does. It reaches the webhook over tests/support/https.rs, and
//! sends its requests as kube-apiserver's Go client shapes them.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};

use crate::https;
use crate::webhook::SERVICE_HOST;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Http1 => b"http/1.1",
            Protocol::Http2 => b"h2",
        }
    }
}

/// Dials the webhook's address under the Service's name, trusting only the generated CA.
pub struct Client(https::Client);

impl Client {
    pub fn new(address: SocketAddr, ca_pem: &[u8]) -> Client {
        Client(https::Client::trusting(address, SERVICE_HOST, &[ca_pem]))
    }

    pub async fn connect(&self, protocol: Protocol) -> Result<Connection, String> {
        let tls = self.0.handshake(protocol.alpn()).await?;
        // A run measures the protocol it names: falling back to HTTP/1.1 would mislabel the table.
        if https::negotiated(&tls) != Some(protocol.alpn()) {
            return Err(format!("ALPN did not settle on {}", String::from_utf8_lossy(protocol.alpn())));
        }
        https::Connection::over(tls).await.map(Connection)
    }
}

/// One HTTP/1.1 connection, or one stream's handle on a shared HTTP/2 connection.
pub struct Connection(https::Connection);

impl Connection {
    fn request(&self, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        // HTTP/1.1 in origin form with a Host header, as Go's client sends it; HTTP/2 needs the
        // scheme and authority in the URI.
        let builder = match self.0 {
            https::Connection::Http1(_) => Request::post(path).header(HOST, SERVICE_HOST),
            https::Connection::Http2(_) => Request::post(format!("https://{SERVICE_HOST}:443{path}")),
        };
        builder
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, */*")
            .header(USER_AGENT, "kube-apiserver-admission")
            .body(Full::new(body))
            .expect("a valid request")
    }

    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes), String> {
        let mut request = self.request(path, Bytes::new());
        *request.method_mut() = hyper::Method::GET;
        self.0.send(request).await
    }

    /// POSTs one review as kube-apiserver does (with its `?timeout=` query).
    pub async fn review(&mut self, body: Bytes) -> Result<(u16, Bytes), String> {
        let request = self.request("/mutate?timeout=10s", body);
        self.0.send(request).await
    }

    /// Another handle on this HTTP/2 connection, for a concurrent stream; none for HTTP/1.1.
    pub fn stream(&self) -> Option<Connection> {
        self.0.stream().map(Connection)
    }

    /// `n` handles on this HTTP/2 connection, one per concurrent stream.
    pub fn streams(&self, n: usize) -> Vec<Connection> {
        let stream = || self.stream().expect("an HTTP/1.1 connection carries one request at a time");
        (0..n).map(|_| stream()).collect()
    }
}
