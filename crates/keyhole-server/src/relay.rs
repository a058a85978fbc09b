//! The live relay: a camera publishes a sealed live session (prefix, then frames) and any device
//! of its account watches it. The relay checks the session header's signature, forwards frames
//! it cannot open, and keeps a bounded queue per viewer: a slow viewer misses frames (which it
//! sees as skipped indexes) and never slows the camera.
//!
//! With several servers (`crate::cluster`), the relay also remembers which cameras are live on
//! another server and which cameras a viewer on another server is waiting for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Notify, broadcast};

/// Frames buffered per viewer before it starts missing them.
pub const VIEWER_QUEUE: usize = 64;

/// One camera's live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session prefix (header and signature), sent to each viewer first.
    pub prefix: Bytes,
    frames: broadcast::Sender<Bytes>,
    /// Receivers made when the session began, one per viewer already waiting: a viewer that
    /// subscribed only once woken would miss the frames the camera sent meanwhile (the first
    /// key frame among them).
    early: Arc<Mutex<Vec<broadcast::Receiver<Bytes>>>>,
}

impl Session {
    fn join(&self) -> broadcast::Receiver<Bytes> {
        self.early
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| self.frames.subscribe())
    }
}

enum Slot {
    /// Viewers are waiting for the camera to start.
    Waiting(Arc<Notify>),
    /// A session is running.
    Live(Session),
}

/// How long a viewer waiting on another server counts as wanting a camera; that server asks
/// again more often than this while its viewer waits.
pub const REMOTE_INTEREST: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a viewer joins a session.
#[derive(Debug)]
pub enum Joined {
    /// On this server: the prefix and the frames to come.
    Here(Bytes, broadcast::Receiver<Bytes>),
    /// On the server at this URL.
    There(String),
}

/// All live sessions on this server.
pub struct Relay {
    slots: Mutex<HashMap<[u8; 16], Slot>>,
    /// Cameras live on another server, and its URL.
    remote_sessions: Mutex<HashMap<[u8; 16], String>>,
    /// Cameras a viewer on another server waits for, until when.
    remote_interest: Mutex<HashMap<[u8; 16], tokio::time::Instant>>,
    /// Viewers per camera (waiting or watching), and a bell for cameras asking whether anyone
    /// wants their live view.
    viewers: Mutex<HashMap<[u8; 16], Watchers>>,
    /// Set when the server stops: long polls and live streams end at once instead of holding
    /// a graceful shutdown open.
    closing: tokio::sync::watch::Sender<bool>,
}

/// How many viewers a camera has, the bell rung when one arrives, and the requests they sent
/// (PROTOCOL.md §8.2.2: a nonce and a proof, passed to the camera unopened).
type Watchers = (usize, Arc<Notify>, Vec<Request>);

/// A viewer's live request as it sent it: its nonce and its proof of the viewing key.
pub type Request = Vec<u8>;

/// A viewer's presence; dropping it (the viewer left) takes it back.
pub struct Viewer {
    relay: Arc<Relay>,
    camera: [u8; 16],
    request: Option<Request>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut viewers = self
            .relay
            .viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((count, _, nonces)) = viewers.get_mut(&self.camera) {
            *count = count.saturating_sub(1);
            if let Some(at) = self
                .request
                .as_ref()
                .and_then(|mine| nonces.iter().position(|n| n == mine))
            {
                nonces.swap_remove(at);
            }
            if *count == 0 {
                viewers.remove(&self.camera);
            }
        }
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Relay")
    }
}

/// A camera's handle on its running session; dropping it ends the session.
pub struct Publisher {
    relay: Arc<Relay>,
    camera: [u8; 16],
    frames: broadcast::Sender<Bytes>,
}

impl Publisher {
    /// Forwards one frame to every viewer.
    pub fn send(&self, frame: Bytes) {
        // No viewers is fine: live frames are not stored.
        let _ = self.frames.send(frame);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let mut slots = self
            .relay
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(slots.get(&self.camera), Some(Slot::Live(s)) if s.frames.same_channel(&self.frames))
        {
            slots.remove(&self.camera);
        }
    }
}

impl Default for Relay {
    fn default() -> Self {
        Self {
            slots: Mutex::default(),
            remote_sessions: Mutex::default(),
            remote_interest: Mutex::default(),
            viewers: Mutex::default(),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Relay {
    /// Ends every wait and live stream: the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Whether the server is stopping.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Resolves once the server is stopping.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// Starts (or replaces) the camera's session and wakes waiting viewers.
    pub fn publish(self: &Arc<Self>, camera: [u8; 16], prefix: Bytes) -> Publisher {
        let (frames, _) = broadcast::channel(VIEWER_QUEUE);
        let waiting = self
            .viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
            .map_or(0, |(count, ..)| *count);
        let session = Session {
            prefix,
            frames: frames.clone(),
            early: Arc::new(Mutex::new(
                (0..waiting).map(|_| frames.subscribe()).collect(),
            )),
        };
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(Slot::Waiting(n)) = slots.insert(camera, Slot::Live(session)) {
            n.notify_waiters();
        }
        Publisher {
            relay: self.clone(),
            camera,
            frames,
        }
    }

    /// Counts a viewer of `camera` (that sent `request`) until the returned guard is dropped,
    /// and tells a camera waiting in [`Relay::wanted`].
    pub fn viewer(self: &Arc<Self>, camera: [u8; 16], request: Option<Request>) -> Viewer {
        let mut viewers = self
            .viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (count, bell, nonces) = viewers
            .entry(camera)
            .or_insert_with(|| (0, Arc::new(Notify::new()), Vec::new()));
        *count += 1;
        nonces.extend(request.clone());
        bell.notify_waiters();
        Viewer {
            relay: self.clone(),
            camera,
            request,
        }
    }

    /// The requests `camera`'s viewers on this server sent.
    pub fn requests(&self, camera: [u8; 16]) -> Vec<Request> {
        self.viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
            .map(|(_, _, nonces)| nonces.clone())
            .unwrap_or_default()
    }

    /// Whether anyone wants `camera`'s live view, waiting up to `wait` for someone to.
    pub async fn wanted(&self, camera: [u8; 16], wait: std::time::Duration) -> bool {
        let bell = {
            let mut viewers = self
                .viewers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (count, bell, _) = viewers
                .entry(camera)
                .or_insert_with(|| (0, Arc::new(Notify::new()), Vec::new()));
            if *count > 0 {
                return true;
            }
            bell.clone()
        };
        if self.wanted_elsewhere(camera) {
            return true;
        }
        let rung = bell.notified();
        tokio::pin!(rung);
        rung.as_mut().enable();
        let present = |relay: &Self| {
            relay
                .viewers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&camera)
                .is_some_and(|(count, ..)| *count > 0)
                || relay.wanted_elsewhere(camera)
        };
        // Re-check: a viewer may have arrived between unlocking and enabling.
        if present(self) {
            return true;
        }
        tokio::select! {
            _ = tokio::time::timeout(wait, rung) => {}
            () = self.closed() => return false,
        }
        let wanted = present(self);
        if !wanted {
            let mut viewers = self
                .viewers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if viewers.get(&camera).is_some_and(|(count, ..)| *count == 0) {
                viewers.remove(&camera);
            }
        }
        wanted
    }

    /// Joins the camera's session, waiting up to `wait` for one to start, here or (unless
    /// `here_only`) on another server.
    pub async fn subscribe(
        &self,
        camera: [u8; 16],
        wait: std::time::Duration,
        here_only: bool,
    ) -> Option<Joined> {
        let deadline = tokio::time::Instant::now() + wait;
        let elsewhere = || {
            if here_only {
                return None;
            }
            self.remote_sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&camera)
                .map(|url| Joined::There(url.clone()))
        };
        let here = || match self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
        {
            Some(Slot::Live(s)) => Some(Joined::Here(s.prefix.clone(), s.join())),
            _ => None,
        };
        loop {
            let notify = {
                let mut slots = self
                    .slots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match slots
                    .entry(camera)
                    .or_insert_with(|| Slot::Waiting(Arc::new(Notify::new())))
                {
                    Slot::Live(s) => {
                        return Some(Joined::Here(s.prefix.clone(), s.join()));
                    }
                    Slot::Waiting(n) => n.clone(),
                }
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Checked after enabling: the camera may have started since the slot was read.
            if let Some(joined) = here().or_else(elsewhere) {
                return Some(joined);
            }
            tokio::select! {
                woken = tokio::time::timeout_at(deadline, notified) => {
                    if woken.is_err() {
                        return None;
                    }
                }
                () = self.closed() => return None,
            }
        }
    }

    /// Whether `camera` is live on this server.
    pub fn is_live_here(&self, camera: [u8; 16]) -> bool {
        matches!(
            self.slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&camera),
            Some(Slot::Live(_))
        )
    }

    /// `camera` went live on the server at `url`: viewers waiting here join it there.
    pub fn live_elsewhere(&self, camera: [u8; 16], url: String) {
        self.remote_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(camera, url);
        if let Some(Slot::Waiting(n)) = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
        {
            n.notify_waiters();
        }
    }

    /// The server `camera` is live on, when it is another one.
    pub fn live_at(&self, camera: [u8; 16]) -> Option<String> {
        self.remote_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
            .cloned()
    }

    /// `camera`'s session on the server at `url` ended (or that server cannot be reached).
    pub fn ended_elsewhere(&self, camera: [u8; 16], url: &str) {
        let mut sessions = self
            .remote_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sessions.get(&camera).is_some_and(|u| u == url) {
            sessions.remove(&camera);
        }
    }

    /// A viewer on another server waits for `camera`: it counts as wanted for
    /// [`REMOTE_INTEREST`], and a camera waiting in [`Relay::wanted`] here is told at once.
    pub fn wanted_by_another_server(&self, camera: [u8; 16]) {
        let now = tokio::time::Instant::now();
        let mut interest = self
            .remote_interest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        interest.retain(|_, until| *until > now);
        interest.insert(camera, now + REMOTE_INTEREST);
        drop(interest);
        if let Some((_, bell, _)) = self
            .viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
        {
            bell.notify_waiters();
        }
    }

    fn wanted_elsewhere(&self, camera: [u8; 16]) -> bool {
        self.remote_interest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&camera)
            .is_some_and(|until| *until > tokio::time::Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next frame, or `None` if none comes within a second.
    async fn next(frames: &mut broadcast::Receiver<Bytes>) -> Option<Bytes> {
        tokio::time::timeout(std::time::Duration::from_secs(1), frames.recv())
            .await
            .ok()?
            .ok()
    }

    #[tokio::test]
    async fn a_viewer_waiting_before_the_session_gets_the_frames_sent_before_it_joins() {
        let relay = Arc::new(Relay::default());
        let camera = [7; 16];
        let _watching = relay.viewer(camera, None);
        let publisher = relay.publish(camera, Bytes::from_static(b"prefix"));
        // The camera is faster than the woken viewer: two frames go out before it joins.
        publisher.send(Bytes::from_static(b"frame 0"));
        publisher.send(Bytes::from_static(b"frame 1"));
        let Some(Joined::Here(prefix, mut frames)) = relay
            .subscribe(camera, std::time::Duration::from_secs(1), true)
            .await
        else {
            panic!("the session is live here");
        };
        assert_eq!(prefix, Bytes::from_static(b"prefix"));
        assert_eq!(
            frames.recv().await.ok(),
            Some(Bytes::from_static(b"frame 0"))
        );
        assert_eq!(
            frames.recv().await.ok(),
            Some(Bytes::from_static(b"frame 1"))
        );
        // A viewer arriving later joins at the frames still to come.
        let Some(Joined::Here(_, mut late)) = relay
            .subscribe(camera, std::time::Duration::from_secs(1), true)
            .await
        else {
            panic!("the session is live here");
        };
        publisher.send(Bytes::from_static(b"frame 2"));
        assert_eq!(next(&mut late).await, Some(Bytes::from_static(b"frame 2")));
    }
}
