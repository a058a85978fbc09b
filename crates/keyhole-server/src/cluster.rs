//! Several servers on one PostgreSQL database: live view when the camera and its viewer reach
//! different servers, and announcements of stored objects to devices on any of them.
//!
//! Servers tell each other small facts over PostgreSQL's LISTEN/NOTIFY, on the channel
//! `keyhole_live` (`keyhole_wire::peer`): a viewer here waits for a camera (repeated every few
//! seconds while it waits; a server where the camera waits for viewers tells it, and one where
//! it is live answers), a camera is live here, its session here ended.
//!
//! Video never goes through the database (a NOTIFY payload is at most 8000 bytes): the viewer's
//! server fetches the session from the camera's server over HTTP, presenting the viewer's own
//! credential (so that server checks it as usual), and passes the sealed frames on. Either
//! server may go away; a viewer's server that cannot reach the other forgets the session and
//! waits for a new one.
//!
//! Stored objects are announced on the channel `keyhole_objects` (`keyhole_wire::announce`):
//! every server, the one that stored it included, passes the notice to its own subscribers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keyhole_wire::announce::Stored;
use keyhole_wire::peer::{PeerMessage, Verb};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use crate::announce::{Announcer, Notice};
use crate::relay::Relay;

/// The NOTIFY channel for live view.
const CHANNEL: &str = "keyhole_live";

/// The NOTIFY channel for stored objects.
const OBJECTS: &str = "keyhole_objects";

/// Marks a watch request one server makes to another: it is answered from that server's own
/// sessions only, so requests never bounce between servers.
pub const RELAYED_HEADER: &str = "keyhole-relayed";

/// This server's link to the others.
#[derive(Debug)]
pub struct Cluster {
    /// This server's URL as the others reach it.
    me: String,
    /// The other servers' URLs: what a message may name, and where sessions are fetched.
    peers: Vec<String>,
    pool: PgPool,
    http: reqwest::Client,
    announcer: Arc<Announcer>,
}

impl Cluster {
    /// Joins the servers on the database at `database_url` as the server reachable at `me`, and
    /// passes what the others say to `relay` and `announcer` until the relay closes.
    ///
    /// # Errors
    /// If the database cannot be reached, or `me` is not an http(s) URL.
    pub async fn join(
        database_url: &str,
        me: &str,
        peers: &[String],
        relay: Arc<Relay>,
        announcer: Arc<Announcer>,
    ) -> anyhow::Result<Arc<Self>> {
        let me = me.trim_end_matches('/').to_owned();
        let encodes = PeerMessage {
            verb: Verb::Live,
            camera: [0; 16],
            url: me.clone(),
        }
        .encode()
        .is_some();
        anyhow::ensure!(
            (me.starts_with("http://") || me.starts_with("https://")) && encodes,
            "advertise_url must be an http:// or https:// URL without spaces"
        );
        let peers: Vec<String> = peers
            .iter()
            .map(|p| p.trim_end_matches('/').to_owned())
            .filter(|p| *p != me)
            .collect();
        anyhow::ensure!(
            !peers.is_empty(),
            "advertise_url needs peers: the other servers' advertise_url, the only places live \
             view is fetched from with a viewer's credential"
        );
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(database_url)
            .await
            .context("connecting to PostgreSQL for the live relay")?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen_all([CHANNEL, OBJECTS]).await?;
        let cluster = Arc::new(Self {
            me,
            peers,
            pool,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client for other servers")?,
            announcer: announcer.clone(),
        });
        let this = cluster.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    r = listener.recv() => r,
                    () = relay.closed() => return,
                };
                match received {
                    Ok(n) if n.channel() == OBJECTS => match Stored::decode(n.payload()) {
                        Some(stored) => announcer.deliver(Notice::Stored(stored)),
                        None => tracing::debug!("unknown notice of a stored object"),
                    },
                    Ok(n) => match PeerMessage::decode(n.payload()) {
                        Some(m) => this.heard(m, &relay).await,
                        None => tracing::debug!("unknown message from another server"),
                    },
                    Err(e) => {
                        // What was said meanwhile is lost: devices sync everything.
                        announcer.deliver(Notice::Lost);
                        // The listener reconnects on the next call; do not spin meanwhile.
                        tracing::warn!(error = %e, "lost the database link to the other servers");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(cluster)
    }

    async fn heard(&self, message: PeerMessage, relay: &Relay) {
        if message.url == self.me {
            return;
        }
        // Anyone who can write to the database can NOTIFY: only the configured servers are
        // heard, so a viewer's credential never goes anywhere else.
        if !self.peers.contains(&message.url) {
            tracing::warn!(url = %message.url, "a message naming a server not in peers: ignored");
            return;
        }
        match message.verb {
            Verb::Wanted => {
                relay.wanted_by_another_server(message.camera);
                if relay.is_live_here(message.camera) {
                    self.live(message.camera).await;
                }
            }
            Verb::Live => relay.live_elsewhere(message.camera, message.url),
            Verb::Ended => relay.ended_elsewhere(message.camera, &message.url),
        }
    }

    async fn say(&self, verb: Verb, camera: [u8; 16]) {
        let message = PeerMessage {
            verb,
            camera,
            url: self.me.clone(),
        };
        // `join` checked the URL, so it always encodes.
        let Some(payload) = message.encode() else {
            return;
        };
        self.notify(CHANNEL, payload).await;
    }

    /// Tells every server (this one too) that an object was stored, for their subscribers.
    pub async fn stored(&self, stored: Stored) {
        if !self.notify(OBJECTS, stored.encode()).await {
            // The devices here at least are told.
            self.announcer.deliver(Notice::Stored(stored));
        }
    }

    /// Sends `payload` on `channel`; returns whether it went.
    async fn notify(&self, channel: &str, payload: String) -> bool {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if let Err(e) = &sent {
            tracing::warn!(error = %e, "could not tell the other servers");
        }
        sent.is_ok()
    }

    /// A viewer here waits for `camera`.
    pub async fn want(&self, camera: [u8; 16]) {
        self.say(Verb::Wanted, camera).await;
    }

    /// `camera` is live here.
    pub async fn live(&self, camera: [u8; 16]) {
        self.say(Verb::Live, camera).await;
    }

    /// `camera`'s session here ended.
    pub async fn ended(&self, camera: [u8; 16]) {
        self.say(Verb::Ended, camera).await;
    }

    /// Passes a device's talk stream for `camera` (PROTOCOL.md §8.4) to the server at `url`,
    /// where the camera is live and listens, with the device's `authorization` header; that
    /// server's answer, or `None` if it is not a peer or cannot be reached.
    pub async fn forward_talk(
        &self,
        url: &str,
        camera: [u8; 16],
        authorization: &axum::http::HeaderValue,
        body: axum::body::Body,
    ) -> Option<reqwest::Response> {
        if !self.peers.iter().any(|p| p == url) {
            return None;
        }
        let response = self
            .http
            .put(format!("{url}/v1/cameras/{}/talk", hex::encode(camera)))
            .header(reqwest::header::AUTHORIZATION, authorization.as_bytes())
            .header(RELAYED_HEADER, "1")
            .body(reqwest::Body::wrap_stream(body.into_data_stream()))
            .send()
            .await;
        match response {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "could not reach another server for talk-back");
                None
            }
        }
    }

    /// Opens `camera`'s session on the server at `url` with the viewer's `authorization`
    /// header and live request (nonce and proof, which that server passes on to the camera);
    /// `None` if that server does not have it (any more) or cannot be reached.
    pub async fn fetch(
        &self,
        url: &str,
        camera: [u8; 16],
        authorization: &axum::http::HeaderValue,
        request: Option<([u8; 16], Vec<u8>)>,
    ) -> Option<reqwest::Response> {
        if !self.peers.iter().any(|p| p == url) {
            return None;
        }
        let nonce = request.map_or_else(String::new, |(n, p)| {
            format!("&nonce={}&proof={}", hex::encode(n), hex::encode(p))
        });
        let response = self
            .http
            .get(format!(
                "{url}/v1/cameras/{}/live?wait_secs=0{nonce}",
                hex::encode(camera)
            ))
            .header(reqwest::header::AUTHORIZATION, authorization.as_bytes())
            .header(RELAYED_HEADER, "1")
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Some(r),
            Ok(r) => {
                tracing::debug!(status = %r.status(), "the other server has no such session");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reach another server for live view");
                None
            }
        }
    }
}
