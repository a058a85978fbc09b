//! What crosses the network: a proxy on loopback that ends TLS as the server would, counts the
//! bytes each way on the wire (TLS records included) and the HTTP/1.1 requests going up inside
//! the TLS, in front of a plain-HTTP target that can be switched between runs; and a
//! sink that accepts any object upload and discards it (where unencrypted uploads go, since the
//! server accepts only sealed objects).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::StatusCode;
use futures_util::StreamExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

#[derive(Debug, Default)]
pub struct Counters {
    pub up: AtomicU64,
    pub down: AtomicU64,
    pub requests: AtomicU64,
}

impl Counters {
    pub fn take(&self) -> (u64, u64, u64) {
        (
            self.up.swap(0, Ordering::Relaxed),
            self.down.swap(0, Ordering::Relaxed),
            self.requests.swap(0, Ordering::Relaxed),
        )
    }
}

pub struct Proxy {
    /// `https://` and the proxy's loopback address.
    pub url: String,
    /// The fingerprint of the proxy's self-signed certificate, as a pairing code carries it.
    pub pin: [u8; 32],
    pub counters: Arc<Counters>,
    target: Arc<Mutex<SocketAddr>>,
}

impl Proxy {
    /// Starts a proxy that ends TLS for `target` (which speaks plain HTTP), with a self-signed
    /// certificate made in `dir`, as the server makes its own.
    pub async fn start(target: SocketAddr, dir: &std::path::Path) -> anyhow::Result<Self> {
        let tls = keyhole_server::tls::load_or_create(&keyhole_server::Config {
            data_dir: dir.to_owned(),
            ..keyhole_server::Config::default()
        })?;
        let acceptor = TlsAcceptor::from(tls.config);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", listener.local_addr()?);
        let counters = Arc::new(Counters::default());
        let target = Arc::new(Mutex::new(target));
        tokio::spawn({
            let (counters, target) = (counters.clone(), target.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let to = *target
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let (acceptor, counters) = (acceptor.clone(), counters.clone());
                    tokio::spawn(async move {
                        let wire = Counted {
                            stream: client,
                            counters: counters.clone(),
                        };
                        if let Ok(client) = acceptor.accept(wire).await {
                            relay(client, to, counters).await;
                        }
                    });
                }
            }
        });
        Ok(Self {
            url,
            pin: tls.fingerprint,
            counters,
            target,
        })
    }

    /// Sends new connections to `target`.
    pub fn retarget(&self, target: SocketAddr) {
        *self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = target;
    }
}

/// A client's TCP connection, counting the bytes that cross it (TLS records and all).
struct Counted {
    stream: TcpStream,
    counters: Arc<Counters>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.counters.up.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.counters.down.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Relays the client's decrypted stream to `to`, counting the requests in it.
async fn relay(client: TlsStream<Counted>, to: SocketAddr, counters: Arc<Counters>) {
    let Ok(server) = TcpStream::connect(to).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut server_rx, mut server_tx) = server.into_split();
    let up = async move {
        let mut requests = RequestCounter::default();
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
            counters
                .requests
                .fetch_add(requests.feed(&buf[..n]), Ordering::Relaxed);
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        server_tx.shutdown().await.ok();
    };
    let down = async move {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        client_tx.shutdown().await.ok();
    };
    tokio::join!(up, down);
}

/// Follows HTTP/1.1 requests with `Content-Length` bodies (all the camera sends) in a byte
/// stream.
#[derive(Default)]
struct RequestCounter {
    head: Vec<u8>,
    body_left: u64,
}

impl RequestCounter {
    /// Takes the next bytes; returns how many request heads they completed.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut completed = 0;
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left).min(data.len() as u64);
                self.body_left -= n;
                data = &data[n as usize..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            if self.head.ends_with(b"\r\n\r\n") {
                completed += 1;
                let head = String::from_utf8_lossy(&self.head).to_ascii_lowercase();
                self.body_left = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                self.head.clear();
            }
        }
        completed
    }
}

/// Starts the sink; returns its address.
pub async fn sink() -> anyhow::Result<SocketAddr> {
    async fn put(Path(id): Path<String>, body: axum::body::Body) -> (StatusCode, String) {
        let mut stream = body.into_data_stream();
        let mut size = 0u64;
        while let Some(Ok(bytes)) = stream.next().await {
            size += bytes.len() as u64;
        }
        let answer = serde_json::json!({ "object_id": id, "size": size, "created": true });
        (StatusCode::CREATED, answer.to_string())
    }
    let app = axum::Router::new().route("/v1/objects/{id}", axum::routing::put(put));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
