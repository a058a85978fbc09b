//! Live view: the camera long-polls the server for a viewer, and only then streams a sealed live
//! session (the same envelope as a clip, frame by frame) through the relay. What it seals is a
//! fragmented MP4 stream of the pictures and sound ([`LiveMux`]), each fragment cut into frames
//! no larger than the session's chunk size and sent whole or not at all, so a viewer can pipe
//! what it opens straight into a player.
//!
//! Every second the camera asks again who is watching, takes the nonces its viewers asked with,
//! and signs a checkpoint (PROTOCOL.md §8.2.1) naming them, with the time each reached it, and
//! every frame it sent since the last: what lets a viewer tell this live view from a recording,
//! a delayed one, or frames someone else sealed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyhole_core::envelope::{DEFAULT_CHUNK_LOG2, ObjectKind, SealParams};
use keyhole_core::live::{FRAME_HEADER_LEN, LiveSealer, frame_header};
use keyhole_core::live_check::{
    CHECKPOINT_INDEX, Checkpoint, MAX_FRAMES, MAX_NONCES, Nonce, frame_digest,
};
use keyhole_core::{CameraKey, HpkePublicKey, ObjectId};
use keyhole_media::AccessUnit;
use keyhole_media::audio::AudioConfig;
use rand_core::OsRng;
use tokio::sync::{Mutex, mpsc};

use crate::agent::{Agent, AgentError};
use crate::live_mux::LiveMux;
use crate::sound::{Media, Sound};

/// Where the capture loop hands pictures and sound to a running live session. It keeps the
/// configuration of the sound heard last, so a session's stream has that sound's track even when
/// its first key frame comes before any sound does.
#[derive(Debug, Clone, Default)]
pub struct LiveFeed(Arc<std::sync::Mutex<Feed>>);

#[derive(Debug, Default)]
struct Feed {
    viewer: Option<mpsc::Sender<Media>>,
    heard: Option<Arc<AudioConfig>>,
}

impl LiveFeed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Feed> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands `au` to the session being watched, if any. A viewer behind by 64 pictures and
    /// sound frames misses some; capture never waits.
    pub fn offer_picture(&self, au: &AccessUnit) {
        if let Some(viewer) = &self.lock().viewer {
            let _ = viewer.try_send(Media::Picture(au.clone()));
        }
    }

    /// Hands `sound` to the session being watched, if any, and remembers its configuration.
    pub fn offer_sound(&self, sound: &Sound) {
        let mut feed = self.lock();
        if !feed
            .heard
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, &sound.config))
        {
            feed.heard = Some(sound.config.clone());
        }
        if let Some(viewer) = &feed.viewer {
            let _ = viewer.try_send(Media::Sound(sound.clone()));
        }
    }

    /// Sends what comes next to `viewer`; returns the sound heard last.
    fn attach(&self, viewer: mpsc::Sender<Media>) -> Option<Arc<AudioConfig>> {
        let mut feed = self.lock();
        feed.viewer = Some(viewer);
        feed.heard.clone()
    }

    fn detach(&self) {
        self.lock().viewer = None;
    }
}

/// Longest session before the camera ends it (a viewer still there starts a new one).
const MAX_SESSION: Duration = Duration::from_secs(600);
/// How often a running session signs a checkpoint and asks who is watching (and whether anyone
/// still is).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// What a session needs, taken from the agent so the session never holds the agent's lock.
pub struct LiveStart {
    /// Header parameters for the session.
    pub params: SealParams,
    /// The verified record's viewing key.
    pub viewing_key: HpkePublicKey,
    /// A copy of the camera's signing key for the session's signatures.
    pub key: CameraKey,
}

/// Tells the control endpoint of a change in the agent's status.
pub type StatusChanged = Box<dyn Fn(crate::agent::Status) + Send + Sync>;

/// Serves live view for as long as the camera runs.
pub async fn serve(agent: Arc<Mutex<Agent>>, feed: LiveFeed, status_changed: StatusChanged) {
    let link = agent.lock().await.link();
    let mut backoff = Duration::from_secs(1);
    loop {
        let asked = Instant::now();
        // Only a viewer that proves it holds the viewing key wakes the camera, never the
        // server's word alone.
        let admitted = match link.live_wanted(60).await {
            Ok(w) if w.wanted => {
                let mut agent = agent.lock().await;
                let admitted = agent
                    .admit_live(&w.requests, &HashSet::new(), &mut OsRng)
                    .await;
                if admitted.is_empty() {
                    agent.live_wake_refused();
                    status_changed(agent.status().clone());
                }
                admitted
            }
            Ok(_) => Vec::new(),
            Err(e) => {
                eprintln!("keyhole-camera: live view: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        if admitted.is_empty() {
            // A server that answers at once (stopping, or misbehaving) is not polled in a
            // tight loop.
            if asked.elapsed() < Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            continue;
        }
        let start = agent.lock().await.live_start(&mut OsRng).await;
        match start {
            Ok(start) => {
                if let Err(e) = session(&agent, &link, start, &feed, admitted).await {
                    eprintln!("keyhole-camera: live session ended: {e}");
                }
            }
            Err(e) => {
                agent.lock().await.alert(format!("live view refused: {e}"));
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
        feed.detach();
    }
}

/// The viewers' nonces a session's checkpoints name: each with the camera's clock when it
/// arrived, the newest [`MAX_NONCES`].
#[derive(Debug, Default)]
struct Viewers(Vec<(Nonce, keyhole_core::Timestamp)>);

impl Viewers {
    fn add(&mut self, nonces: Vec<Nonce>) {
        let now = crate::now();
        for nonce in nonces {
            if !self.0.iter().any(|(n, _)| *n == nonce) {
                self.0.push((nonce, now));
            }
        }
        let extra = self.0.len().saturating_sub(MAX_NONCES);
        self.0.drain(..extra);
    }
}

/// The checkpoint record for the frames sent since the last one.
fn checkpoint_record(
    key: &keyhole_core::CameraKey,
    header: &keyhole_core::envelope::Header,
    viewers: &Viewers,
    frames: &mut Vec<(u64, [u8; keyhole_core::live_check::DIGEST_LEN])>,
) -> Result<Vec<u8>, AgentError> {
    let signed = Checkpoint {
        camera_id: header.camera_id,
        session: header.object_id,
        clock: crate::now(),
        nonces: viewers.0.clone(),
        frames: std::mem::take(frames),
    }
    .sign(key)
    .map_err(|e| AgentError::Seal(format!("a live checkpoint: {e}")))?;
    let len = u32::try_from(signed.len())
        .map_err(|_| AgentError::Seal("a live checkpoint is too long".into()))?;
    let mut record = Vec::with_capacity(12 + signed.len());
    record.extend_from_slice(&frame_header(CHECKPOINT_INDEX, len));
    record.extend_from_slice(&signed);
    Ok(record)
}

async fn session(
    agent: &Mutex<Agent>,
    link: &crate::agent::Link,
    start: LiveStart,
    feed: &LiveFeed,
    admitted: Vec<Nonce>,
) -> Result<(), AgentError> {
    let mut joined: HashSet<Nonce> = admitted.iter().copied().collect();
    let mut viewers = Viewers::default();
    viewers.add(admitted);
    let mut prefix = Vec::new();
    let mut sealer = LiveSealer::new(
        start.params,
        &start.viewing_key,
        &start.key,
        &mut OsRng,
        &mut prefix,
    )
    .map_err(|e| AgentError::Seal(e.to_string()))?;
    let max = sealer.header().chunk_size();
    let header = sealer.header().clone();
    // Frames sent since the last checkpoint, with their digests.
    let mut sent: Vec<(u64, [u8; keyhole_core::live_check::DIGEST_LEN])> = Vec::new();
    let (media_tx, mut media) = mpsc::channel::<Media>(64);
    let mut mux = LiveMux::new(feed.attach(media_tx));
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let upload = tokio::spawn({
        let link = link.clone();
        async move { link.publish_live(body_rx).await }
    });
    body_tx
        .send(Ok(Bytes::from(prefix)))
        .await
        .map_err(|_| AgentError::Seal("the live upload stopped".into()))?;
    let began = Instant::now();
    let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            item = media.recv() => {
                let Some(item) = item else { break };
                let bytes = match &item {
                    Media::Picture(au) => mux.picture(au),
                    Media::Sound(sound) => mux.sound(sound),
                }
                .map_err(|e| AgentError::Seal(e.to_string()))?;
                let Some(bytes) = bytes else { continue };
                // A full pipe means the upload is behind: leave the whole fragment out (a part
                // of one would break the stream) rather than fall further behind. Pictures then
                // wait for a key frame; sound frames stand alone.
                let pieces = bytes.len().div_ceil(max).max(1);
                if body_tx.capacity() < pieces {
                    if matches!(item, Media::Picture(_)) {
                        mux.dropped();
                    }
                    continue;
                }
                for piece in bytes.chunks(max) {
                    let frame = sealer
                        .seal_fragment(piece, false)
                        .map_err(|e| AgentError::Seal(e.to_string()))?;
                    let index = sealer.next_index() - 1;
                    sent.push((index, frame_digest(&frame[FRAME_HEADER_LEN..])));
                    // Room was checked: the fragment goes whole.
                    if body_tx.send(Ok(Bytes::from(frame))).await.is_err() {
                        return upload.await.unwrap_or(Ok(()));
                    }
                    // A checkpoint holds so many frames at most: the next one goes after them.
                    if sent.len() >= MAX_FRAMES {
                        let record = checkpoint_record(&start.key, &header, &viewers, &mut sent)?;
                        if body_tx.send(Ok(Bytes::from(record))).await.is_err() {
                            return upload.await.unwrap_or(Ok(()));
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                // Who watches now (new viewers' nonces), then the signed word on the last
                // second; a checkpoint is never dropped, frames may be.
                let watching = link.live_wanted(0).await.unwrap_or_default();
                let admitted = agent
                    .lock()
                    .await
                    .admit_live(&watching.requests, &joined, &mut OsRng)
                    .await;
                joined.extend(admitted.iter().copied());
                let watched = !admitted.is_empty();
                viewers.add(admitted);
                let record = checkpoint_record(&start.key, &header, &viewers, &mut sent)?;
                if body_tx.send(Ok(Bytes::from(record))).await.is_err() {
                    return upload.await.unwrap_or(Ok(()));
                }
                if began.elapsed() > MAX_SESSION || !watched {
                    break;
                }
            }
        }
    }
    feed.detach();
    if let Ok(last) = sealer.seal_fragment(&[], true) {
        sent.push((
            sealer.next_index() - 1,
            frame_digest(&last[FRAME_HEADER_LEN..]),
        ));
        let _ = body_tx.send(Ok(Bytes::from(last))).await;
        // The final checkpoint vouches for the final frame.
        if let Ok(record) = checkpoint_record(&start.key, &header, &viewers, &mut sent) {
            let _ = body_tx.send(Ok(Bytes::from(record))).await;
        }
    }
    drop(body_tx);
    upload.await.unwrap_or(Ok(()))
}

/// Live session parameters on `camera`'s chain position (sequence 0: not part of the chain).
pub(crate) fn params(
    camera_id: keyhole_core::CameraId,
    suite: keyhole_core::envelope::Suite,
    epoch: u32,
    rng: &mut impl rand_core::CryptoRngCore,
) -> SealParams {
    SealParams {
        kind: ObjectKind::Live,
        suite,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id,
        object_id: ObjectId::random(rng),
        epoch,
        sequence: 0,
        previous: keyhole_core::envelope::ObjectDigest::default(),
        captured_at: crate::now(),
    }
}
