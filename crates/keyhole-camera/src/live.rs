//! Live view: the camera long-polls the server for a viewer, and only then streams a sealed live
//! session (the same envelope as a clip, frame by frame) through the relay. Fragments are the
//! H.264 Annex B byte stream, cut into frames no larger than the session's chunk size, starting
//! at a key frame, so a viewer can pipe what it opens straight into a player.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyhole_core::envelope::{DEFAULT_CHUNK_LOG2, ObjectKind, SealParams};
use keyhole_core::live::LiveSealer;
use keyhole_core::{CameraKey, HpkePublicKey, ObjectId};
use keyhole_media::AccessUnit;
use rand_core::OsRng;
use tokio::sync::{Mutex, mpsc};

use crate::agent::{Agent, AgentError};

/// Where the capture loop hands pictures to a running live session.
pub type LiveFeed = Arc<std::sync::Mutex<Option<mpsc::Sender<AccessUnit>>>>;

/// Longest session before the camera ends it (a viewer still there starts a new one).
const MAX_SESSION: Duration = Duration::from_secs(600);
/// How often a running session checks that someone is still watching.
const STILL_WATCHED: Duration = Duration::from_secs(5);

/// What a session needs, taken from the agent so the session never holds the agent's lock.
pub struct LiveStart {
    /// Header parameters for the session.
    pub params: SealParams,
    /// The verified record's viewing key.
    pub viewing_key: HpkePublicKey,
    /// A copy of the camera's signing key for the session's signatures.
    pub key: CameraKey,
}

/// Serves live view for as long as the camera runs.
pub async fn serve(agent: Arc<Mutex<Agent>>, feed: LiveFeed) {
    let link = agent.lock().await.link();
    let mut backoff = Duration::from_secs(1);
    loop {
        let asked = Instant::now();
        match link.live_wanted(60).await {
            Ok(false) => {
                // A server that answers at once (stopping, or misbehaving) is not polled in a
                // tight loop.
                if asked.elapsed() < Duration::from_secs(1) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
            Ok(true) => {}
            Err(e) => {
                eprintln!("keyhole-camera: live view: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        }
        backoff = Duration::from_secs(1);
        let start = agent.lock().await.live_start(&mut OsRng).await;
        match start {
            Ok(start) => {
                if let Err(e) = session(&link, start, &feed).await {
                    eprintln!("keyhole-camera: live session ended: {e}");
                }
            }
            Err(e) => {
                agent.lock().await.alert(format!("live view refused: {e}"));
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
        *feed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

async fn session(
    link: &crate::agent::Link,
    start: LiveStart,
    feed: &LiveFeed,
) -> Result<(), AgentError> {
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
    let (pictures_tx, mut pictures) = mpsc::channel::<AccessUnit>(64);
    *feed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(pictures_tx);
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let upload = tokio::spawn({
        let link = link.clone();
        async move { link.publish_live(body_rx).await }
    });
    let send = |frame: Vec<u8>| body_tx.try_send(Ok(Bytes::from(frame)));
    body_tx
        .send(Ok(Bytes::from(prefix)))
        .await
        .map_err(|_| AgentError::Seal("the live upload stopped".into()))?;
    let began = Instant::now();
    let mut checked = Instant::now();
    let mut started = false;
    let mut ticker = tokio::time::interval(STILL_WATCHED);
    loop {
        tokio::select! {
            au = pictures.recv() => {
                let Some(au) = au else { break };
                started |= au.keyframe;
                if !started {
                    continue;
                }
                for piece in au.to_annex_b().chunks(max) {
                    let frame = sealer
                        .seal_fragment(piece, false)
                        .map_err(|e| AgentError::Seal(e.to_string()))?;
                    // A full pipe means the upload is behind: drop rather than stall capture.
                    if matches!(send(frame), Err(mpsc::error::TrySendError::Closed(_))) {
                        return upload.await.unwrap_or(Ok(()));
                    }
                }
            }
            _ = ticker.tick() => {
                if checked.elapsed() >= STILL_WATCHED {
                    checked = Instant::now();
                    if began.elapsed() > MAX_SESSION || !link.live_wanted(0).await.unwrap_or(false) {
                        break;
                    }
                }
            }
        }
    }
    *feed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    if let Ok(last) = sealer.seal_fragment(&[], true) {
        let _ = body_tx.send(Ok(Bytes::from(last))).await;
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
