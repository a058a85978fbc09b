//! Serving connections, plain or over TLS, in one accept loop that bounds what a client can
//! hold on to:
//! - at most `max_connections` connections at once; past that, new ones wait in the kernel's
//!   accept queue until one closes;
//! - a TLS handshake must finish within [`HANDSHAKE_TIMEOUT`], and a request's headers arrive
//!   within [`HEADER_TIMEOUT`] (so does a kept-alive connection's next request): a connection
//!   that sends nothing, or its headers a byte at a time, is closed;
//! - each request carries its peer's address (`ConnectInfo`) for the per-source limits.
//!
//! Only HTTP/1.1 is spoken (TLS offers only it), so no connection waits unbounded to learn its
//! protocol. On shutdown the relay closes (ending live views and announcement channels), and
//! requests in flight get `DRAIN` to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::{AppState, no_delay};

/// The longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a request's headers may take to arrive, counted from when the connection is
/// ready for them: also how long a kept-alive connection may sit idle. Clients must let idle
/// connections go sooner (Keyhole's own keep them 20 s), or a request sent as the server closes
/// one is lost.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a connection buffers of what it reads ahead.
const READ_BUFFER: usize = 64 * 1024;
/// How long requests in flight may run on after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves the API on `listener`, over TLS when `tls` is given, until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let relay = state.relay.clone();
    let open = Arc::new(Semaphore::new(state.config.max_connections.max(1)));
    let app = crate::api::router(state);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = open.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        no_delay(&tcp);
        let app = app.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => connection(tcp, peer, app, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => connection(stream, peer, app, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    relay.close();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::info!("requests still running at shutdown were cut off"),
    }
}

/// Serves one connection's requests until it closes.
async fn connection(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    peer: SocketAddr,
    app: axum::Router,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        // What a connection may hold of a body not yet taken: a thousand uploads at once then
        // hold 64 MiB, not hyper's default of about 400 KiB each.
        .max_buf_size(READ_BUFFER);
    let served = watcher.watch(http.serve_connection(TokioIo::new(io), service));
    if let Err(e) = served.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
