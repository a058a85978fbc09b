//! Keyhole's server: an untrusted store and relay for sealed objects. It authenticates
//! accounts, cameras and devices and enforces who may touch what; it never holds a key that
//! opens video and never decides which keys a camera encrypts to. Signed objects are parsed
//! only to index them and to refuse garbage early; clients verify everything themselves.
#![forbid(unsafe_code)]

pub mod announce;
pub mod api;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod check;
pub mod cluster;
pub mod config;
pub mod error;
pub mod metrics;
pub mod password;
pub mod push;
pub mod relay;
pub mod retention;
pub mod serve;
pub mod store;
pub mod talk_relay;
pub mod tls;

use std::sync::Arc;

pub use config::Config;

/// Milliseconds since the Unix epoch, from the system clock.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    /// Metadata.
    pub meta: Arc<dyn store::MetaStore>,
    /// Sealed objects.
    pub blobs: Arc<dyn blobs::BlobStore>,
    /// Limits from the configuration.
    pub config: Arc<Config>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Live sessions.
    pub relay: Arc<relay::Relay>,
    /// Talk streams on their way to cameras.
    pub talk: Arc<talk_relay::TalkRelay>,
    /// The other servers on the same database, when `advertise_url` is set.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Announcements of stored objects to this server's subscribers.
    pub announcer: Arc<announce::Announcer>,
    /// Web Push to devices' push services.
    pub pusher: Arc<push::Pusher>,
}

impl AppState {
    /// Opens the stores `config` names: metadata in PostgreSQL when `database_url` is set,
    /// else the embedded SQLite file under `config.data_dir`; blobs in the S3 bucket when `s3`
    /// is set, else a folder under `config.data_dir`.
    ///
    /// # Errors
    /// If the folder, database or blob store cannot be opened.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        use anyhow::Context;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
        let meta = match &config.database_url {
            Some(url) => store::SqlStore::open_postgres(url.expose()).await?,
            None => store::SqlStore::open_sqlite(&config.data_dir.join("keyhole.sqlite3")).await?,
        };
        let blobs: Arc<dyn blobs::BlobStore> = match &config.s3 {
            Some(s3) => Arc::new(
                blobs::s3::S3BlobStore::open(s3)
                    .await
                    .with_context(|| format!("opening S3 bucket {}", s3.bucket))?,
            ),
            None => Arc::new(
                blobs::FsBlobStore::open(&config.data_dir.join("blobs"))
                    .await
                    .with_context(|| {
                        format!("opening blob folder in {}", config.data_dir.display())
                    })?,
            ),
        };
        let pusher = push::Pusher::open(&meta, config.push_contact.clone(), config.push_allow_http)
            .await
            .context("opening the push key")?;
        let relay = Arc::<relay::Relay>::default();
        let announcer = Arc::<announce::Announcer>::default();
        let cluster = match (&config.database_url, &config.advertise_url) {
            (Some(url), Some(me)) => Some(
                cluster::Cluster::join(
                    url.expose(),
                    me,
                    &config.peers,
                    relay.clone(),
                    announcer.clone(),
                )
                .await?,
            ),
            (None, Some(_)) => anyhow::bail!(
                "advertise_url needs database_url: servers find each other through PostgreSQL"
            ),
            _ => None,
        };
        Ok(Self {
            meta: Arc::new(meta),
            blobs,
            config: Arc::new(config),
            metrics: Arc::default(),
            relay,
            talk: Arc::default(),
            cluster,
            announcer,
            pusher: Arc::new(pusher),
        })
    }

    /// Announces that `camera`'s newest stored object has `sequence`: to the devices
    /// subscribed here, or through the database to those of every server sharing it.
    pub async fn announce(&self, camera: &store::CameraRow, sequence: i64) {
        let Ok(sequence) = u64::try_from(sequence) else {
            return;
        };
        let stored = keyhole_wire::announce::Stored {
            account: camera.account_id,
            camera: camera.camera_id,
            sequence,
        };
        match &self.cluster {
            Some(cluster) => cluster.stored(stored).await,
            None => self.announcer.deliver(announce::Notice::Stored(stored)),
        }
    }
}

impl AppState {
    /// Pushes the stored event `sequence` of `camera` to the subscribed devices that may view
    /// it, in the background (`push::deliver`). Only the server that stored the event pushes
    /// it, so a cluster pushes each event once.
    pub fn push_event(&self, camera: &store::CameraRow, sequence: i64) {
        let Ok(sequence) = u64::try_from(sequence) else {
            return;
        };
        tokio::spawn(push::deliver(
            self.clone(),
            camera.camera_id,
            camera.account_id,
            sequence,
        ));
    }
}

/// Turns off Nagle's algorithm on an accepted connection. With it on, a response written as
/// head then a small body waits for the client's delayed acknowledgement: 40 ms on Linux, seen
/// on every small range read (the clip header a player fetches first) and on live frames.
pub(crate) fn no_delay(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

/// Serves the API on `listener` (plain HTTP) until `shutdown` resolves (`serve`).
///
/// # Errors
/// None today; kept for callers that treat serving as fallible.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve(listener, state, None, shutdown).await;
    Ok(())
}
