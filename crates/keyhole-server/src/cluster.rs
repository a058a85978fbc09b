//! Several servers on one PostgreSQL database: live view when the camera and its viewer reach
//! different servers.
//!
//! Servers tell each other small facts over PostgreSQL's LISTEN/NOTIFY, on the channel
//! `keyhole_live`, one message per line of text:
//!
//! - `wanted <camera> <url>`: a viewer on the server at `url` waits for the camera. A server
//!   where the camera waits for viewers tells it; a server where it is live answers `live`.
//!   Repeated every few seconds while the viewer waits.
//! - `live <camera> <url>`: the camera is live on the server at `url`.
//! - `ended <camera> <url>`: its session there ended.
//!
//! Video never goes through the database (a NOTIFY payload is at most 8000 bytes): the viewer's
//! server fetches the session from the camera's server over HTTP, presenting the viewer's own
//! credential (so that server checks it as usual), and passes the sealed frames on. Either
//! server may go away; a viewer's server that cannot reach the other forgets the session and
//! waits for a new one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use crate::relay::Relay;

/// The NOTIFY channel.
const CHANNEL: &str = "keyhole_live";

/// Marks a watch request one server makes to another: it is answered from that server's own
/// sessions only, so requests never bounce between servers.
pub const RELAYED_HEADER: &str = "keyhole-relayed";

/// This server's link to the others.
#[derive(Debug)]
pub struct Cluster {
    /// This server's URL as the others reach it.
    me: String,
    pool: PgPool,
    http: reqwest::Client,
}

/// One message between servers.
#[derive(Debug, PartialEq, Eq)]
enum Message {
    Wanted([u8; 16], String),
    Live([u8; 16], String),
    Ended([u8; 16], String),
}

impl Message {
    fn encode(&self) -> String {
        let (verb, camera, url) = match self {
            Self::Wanted(c, u) => ("wanted", c, u),
            Self::Live(c, u) => ("live", c, u),
            Self::Ended(c, u) => ("ended", c, u),
        };
        format!("{verb} {} {url}", hex::encode(camera))
    }

    /// Parses a payload; anything else (another version's message) is `None`.
    fn decode(payload: &str) -> Option<Self> {
        let mut words = payload.split(' ');
        let verb = words.next()?;
        let mut camera = [0u8; 16];
        hex::decode_to_slice(words.next()?, &mut camera).ok()?;
        let url = words.next()?.to_owned();
        if words.next().is_some() || url.is_empty() {
            return None;
        }
        Some(match verb {
            "wanted" => Self::Wanted(camera, url),
            "live" => Self::Live(camera, url),
            "ended" => Self::Ended(camera, url),
            _ => return None,
        })
    }
}

impl Cluster {
    /// Joins the servers on the database at `database_url` as the server reachable at `me`, and
    /// passes what the others say to `relay` until it closes.
    ///
    /// # Errors
    /// If the database cannot be reached, or `me` is not an http(s) URL.
    pub async fn join(
        database_url: &str,
        me: &str,
        relay: Arc<Relay>,
    ) -> anyhow::Result<Arc<Self>> {
        let me = me.trim_end_matches('/').to_owned();
        anyhow::ensure!(
            (me.starts_with("http://") || me.starts_with("https://")) && !me.contains(' '),
            "advertise_url must be an http:// or https:// URL"
        );
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(database_url)
            .await
            .context("connecting to PostgreSQL for the live relay")?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let cluster = Arc::new(Self {
            me,
            pool,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client for other servers")?,
        });
        let this = cluster.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    r = listener.recv() => r,
                    () = relay.closed() => return,
                };
                match received {
                    Ok(n) => match Message::decode(n.payload()) {
                        Some(m) => this.heard(m, &relay).await,
                        None => tracing::debug!("unknown message from another server"),
                    },
                    Err(e) => {
                        // The listener reconnects on the next call; do not spin meanwhile.
                        tracing::warn!(error = %e, "lost the database link to the other servers");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(cluster)
    }

    async fn heard(&self, message: Message, relay: &Relay) {
        match message {
            Message::Wanted(camera, from) if from != self.me => {
                relay.wanted_by_another_server(camera);
                if relay.is_live_here(camera) {
                    self.live(camera).await;
                }
            }
            Message::Live(camera, at) if at != self.me => relay.live_elsewhere(camera, at),
            Message::Ended(camera, at) if at != self.me => relay.ended_elsewhere(camera, &at),
            _ => {}
        }
    }

    async fn say(&self, message: &Message) {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(message.encode())
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not tell the other servers");
        }
    }

    /// A viewer here waits for `camera`.
    pub async fn want(&self, camera: [u8; 16]) {
        self.say(&Message::Wanted(camera, self.me.clone())).await;
    }

    /// `camera` is live here.
    pub async fn live(&self, camera: [u8; 16]) {
        self.say(&Message::Live(camera, self.me.clone())).await;
    }

    /// `camera`'s session here ended.
    pub async fn ended(&self, camera: [u8; 16]) {
        self.say(&Message::Ended(camera, self.me.clone())).await;
    }

    /// Opens `camera`'s session on the server at `url` with the viewer's `authorization`
    /// header; `None` if that server does not have it (any more) or cannot be reached.
    pub async fn fetch(
        &self,
        url: &str,
        camera: [u8; 16],
        authorization: &axum::http::HeaderValue,
    ) -> Option<reqwest::Response> {
        let response = self
            .http
            .get(format!(
                "{url}/v1/cameras/{}/live?wait_secs=0",
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

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn messages_round_trip_and_garbage_is_ignored() {
        for m in [
            Message::Wanted([1; 16], "http://10.0.0.1:8443".into()),
            Message::Live([2; 16], "https://a.example".into()),
            Message::Ended([3; 16], "http://b".into()),
        ] {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        for bad in [
            "",
            "live",
            "live 0101",
            "live 01010101010101010101010101010101",
            "live 01010101010101010101010101010101 ",
            "live 01010101010101010101010101010101 http://a extra",
            "gone 01010101010101010101010101010101 http://a",
            "live zz010101010101010101010101010101 http://a",
        ] {
            assert_eq!(Message::decode(bad), None, "{bad:?}");
        }
    }
}
