//! Test harness for end-to-end tests: the real server, in process, on 127.0.0.1:0 over plain
//! HTTP (loopback only), with its own temporary data folder, stopped when dropped. A
//! [`TestServer::backdoor`] opens the same storage directly, to play a server that misbehaves.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(
    clippy::expect_used,
    reason = "a harness that cannot start should fail the test loudly"
)]

use std::path::Path;

use keyhole_server::{AppState, Config};

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts the server on the embedded storage in `data_dir`.
    ///
    /// # Panics
    /// If the storage cannot be opened or no loopback port is free.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_on(data_dir, "127.0.0.1:0").await
    }

    /// Starts the server on `addr` (to bring a stopped server back at the same URL).
    ///
    /// # Panics
    /// If the storage cannot be opened or the address is taken.
    pub async fn start_on(data_dir: &Path, addr: &str) -> Self {
        let config = Config {
            data_dir: data_dir.to_owned(),
            insecure_http: true,
            ..Config::default()
        };
        let state = AppState::open_embedded(config.clone())
            .await
            .expect("opening the server's storage");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            keyhole_server::serve_http(listener, state, shutdown)
                .await
                .expect("serving");
        });
        Self {
            url,
            config,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `url` joined with `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The server's storage, opened directly, bypassing every check the API makes.
    ///
    /// # Panics
    /// If the storage cannot be opened.
    pub async fn backdoor(&self) -> AppState {
        AppState::open_embedded(self.config.clone())
            .await
            .expect("opening the server's storage")
    }

    /// Stops the server and waits until it has.
    ///
    /// # Panics
    /// If the server task failed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
