//! The talk relay (PROTOCOL.md §8.4): a device's talk stream, passed to its camera unopened.
//! At most one device talks through a camera at a time; the camera long-polls for a stream and
//! reads it as the device sends it. Nothing is stored, and a camera that does not pick the
//! stream up within [`PICK_UP`] leaves the device told so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};

/// Chunks of a talk stream held for a camera that reads slower than the device sends.
pub const TALK_QUEUE: usize = 64;
/// How long a talk stream waits for its camera to pick it up.
pub const PICK_UP: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Slot {
    /// Rung when a talk stream arrives for the camera.
    bell: Arc<Notify>,
    /// The stream being spoken, and its receiving end until the camera takes it.
    talk: Option<(u64, Option<Listening>)>,
}

/// The camera's end of a talk stream: the bytes, and the word it heard them out, sent once
/// the device's stream has ended and all of it went to the camera.
pub struct Listening {
    /// The device's bytes.
    pub from_device: mpsc::Receiver<Bytes>,
    /// Sent when the stream ended and the camera was given all of it.
    pub heard_out: oneshot::Sender<()>,
}

/// The talk streams on this server, per camera.
#[derive(Default)]
pub struct TalkRelay {
    slots: Mutex<HashMap<[u8; 16], Slot>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TalkRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TalkRelay")
    }
}

/// Another device is already talking through the camera.
#[derive(Debug, Clone, Copy)]
pub struct Busy;

/// A device's talk stream while it lasts; dropping it frees the camera for the next.
pub struct Talking {
    relay: Arc<TalkRelay>,
    camera: [u8; 16],
    id: u64,
    to_camera: Option<mpsc::Sender<Bytes>>,
    heard_out: Option<oneshot::Receiver<()>>,
}

impl Talking {
    /// Passes `chunk` on, waiting at most [`PICK_UP`] for room; `false` if the camera stopped
    /// reading or never picked the stream up.
    pub async fn send(&self, chunk: Bytes) -> bool {
        let Some(to_camera) = &self.to_camera else {
            return false;
        };
        matches!(
            tokio::time::timeout(PICK_UP, to_camera.send(chunk)).await,
            Ok(Ok(()))
        )
    }

    /// Ends the stream; whether the camera was given all of it within [`PICK_UP`].
    pub async fn finish(mut self) -> bool {
        drop(self.to_camera.take());
        let Some(heard_out) = self.heard_out.take() else {
            return false;
        };
        matches!(tokio::time::timeout(PICK_UP, heard_out).await, Ok(Ok(())))
    }
}

impl Drop for Talking {
    fn drop(&mut self) {
        let mut slots = self.relay.lock();
        if let Some(slot) = slots.get_mut(&self.camera)
            && slot.talk.as_ref().is_some_and(|(id, _)| *id == self.id)
        {
            slot.talk = None;
        }
    }
}

impl TalkRelay {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a talk stream to `camera` and rings it.
    ///
    /// # Errors
    /// [`Busy`] while another device talks through it.
    pub fn offer(self: &Arc<Self>, camera: [u8; 16]) -> Result<Talking, Busy> {
        let mut slots = self.lock();
        let slot = slots.entry(camera).or_default();
        if slot.talk.is_some() {
            return Err(Busy);
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (to_camera, from_device) = mpsc::channel(TALK_QUEUE);
        let (heard_out, heard) = oneshot::channel();
        slot.talk = Some((
            id,
            Some(Listening {
                from_device,
                heard_out,
            }),
        ));
        // A permit is kept for a camera not waiting yet.
        slot.bell.notify_one();
        Ok(Talking {
            relay: self.clone(),
            camera,
            id,
            to_camera: Some(to_camera),
            heard_out: Some(heard),
        })
    }

    /// The camera's side: the next talk stream for `camera`, waiting up to `wait` for one.
    pub async fn take(&self, camera: [u8; 16], wait: Duration) -> Option<Listening> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let bell = {
                let mut slots = self.lock();
                let slot = slots.entry(camera).or_default();
                if let Some((_, stream)) = slot.talk.as_mut()
                    && let Some(stream) = stream.take()
                {
                    return Some(stream);
                }
                slot.bell.clone()
            };
            if tokio::time::timeout_at(deadline, bell.notified())
                .await
                .is_err()
            {
                return None;
            }
        }
    }
}
