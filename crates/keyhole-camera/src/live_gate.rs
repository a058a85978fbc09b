//! Who may wake the camera for live view (PROTOCOL.md §8.2.2): only a viewer that proves it
//! holds the viewing key of the camera's current epoch, against the challenge the camera names in
//! its heads. The server's "wanted" alone wakes nothing, so it cannot keep a battery camera
//! streaming to no one.
//!
//! The challenge's private half stays in the state folder (readable by the camera's user only,
//! like its signing key) so that a restart does not strand viewers holding the last head; it is
//! replaced after a day, the one before still taken. A request's nonce starts at most one session
//! while this process runs.

use std::collections::HashSet;
use std::path::Path;

use keyhole_core::live_check::Nonce;
use keyhole_core::live_request::{CHALLENGE_LEN, LiveChallenge, LiveRequest};
use keyhole_core::talk::{SessionId, TalkError, TalkOpener};
use keyhole_core::{CameraId, HpkePublicKey, Timestamp};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::store::{StoreError, write_atomic};

/// Where the challenges are kept.
const FILE: &str = "live-challenge";
/// How long a challenge is used before a new one replaces it.
const ROTATE_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

/// The camera's live challenges and the nonces that started sessions.
#[derive(Debug)]
pub struct LiveGate {
    current: LiveChallenge,
    previous: Option<LiveChallenge>,
    /// Nonces that started a session (refused for another).
    used: HashSet<Nonce>,
    /// Talk sessions heard (refused if played again; PROTOCOL.md §8.4).
    heard: HashSet<SessionId>,
}

impl LiveGate {
    /// The gate of the camera in `dir`: its kept challenges, replaced if a day old (or missing).
    ///
    /// # Errors
    /// The file cannot be read or written, or is damaged.
    pub fn open(
        dir: &Path,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, StoreError> {
        let path = dir.join(FILE);
        let kept = match std::fs::read(&path) {
            Ok(bytes) => Some(Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let damaged = || StoreError::Damaged {
            path: dir.join(FILE),
            why: "not a live challenge file".into(),
        };
        let (made_at, current, previous) = match kept.as_deref() {
            None => (0, None, None),
            Some(bytes)
                if bytes.len() == 8 + CHALLENGE_LEN || bytes.len() == 8 + 2 * CHALLENGE_LEN =>
            {
                let made_at = u64::from_be_bytes(bytes[..8].try_into().map_err(|_| damaged())?);
                let secret = |at: usize| -> Option<LiveChallenge> {
                    let s: [u8; 32] = bytes.get(at..at + CHALLENGE_LEN)?.try_into().ok()?;
                    Some(LiveChallenge::from_secret(&s))
                };
                (made_at, secret(8), secret(8 + CHALLENGE_LEN))
            }
            Some(_) => return Err(damaged()),
        };
        let mut gate = match current {
            Some(current) if now.0.saturating_sub(made_at) < ROTATE_AFTER_MS => Self {
                current,
                previous,
                used: HashSet::new(),
                heard: HashSet::new(),
            },
            stale => Self {
                current: LiveChallenge::generate(rng),
                previous: stale,
                used: HashSet::new(),
                heard: HashSet::new(),
            },
        };
        if gate.current.public() != current_public(kept.as_ref().map(|k| k.as_slice())) {
            gate.save(dir, now)?;
        }
        Ok(gate)
    }

    fn save(&mut self, dir: &Path, now: Timestamp) -> Result<(), StoreError> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(8 + 2 * CHALLENGE_LEN));
        bytes.extend_from_slice(&now.0.to_be_bytes());
        bytes.extend_from_slice(self.current.secret().as_ref());
        if let Some(previous) = &self.previous {
            bytes.extend_from_slice(previous.secret().as_ref());
        }
        write_atomic(&dir.join(FILE), &bytes)
    }

    /// The challenge the camera's heads name.
    #[must_use]
    pub fn challenge(&self) -> [u8; CHALLENGE_LEN] {
        self.current.public()
    }

    /// The nonces of `requests` that may start or go on watching: each proves a holder of
    /// `viewing`, the viewing key of `camera`'s epoch `epoch`, under the current or the previous
    /// challenge, and is in the session already (`joined`) or has started none before.
    pub fn admit(
        &mut self,
        camera: &CameraId,
        epoch: u32,
        viewing: &HpkePublicKey,
        requests: &[LiveRequest],
        joined: &HashSet<Nonce>,
    ) -> Vec<Nonce> {
        let mut admitted = Vec::new();
        for request in requests {
            let proven = std::iter::once(&self.current)
                .chain(&self.previous)
                .any(|c| c.verify(camera, epoch, viewing, request));
            // Only a proven request spends its nonce.
            if proven && (joined.contains(&request.nonce) || self.used.insert(request.nonce)) {
                admitted.push(request.nonce);
            }
        }
        admitted
    }

    /// Opens a talk session's `header` (PROTOCOL.md §8.4): sealed to the current or the previous
    /// challenge for `camera`'s epoch `epoch`, authenticated by its viewing key `viewing`, and
    /// never heard before in this process (a session played again later is too late anyway).
    ///
    /// # Errors
    /// [`TalkError`] naming why the session is refused.
    pub fn talk(
        &mut self,
        header: &[u8],
        camera: &CameraId,
        epoch: u32,
        viewing: &HpkePublicKey,
    ) -> Result<TalkOpener, TalkError> {
        let challenges: Vec<&LiveChallenge> = std::iter::once(&self.current)
            .chain(&self.previous)
            .collect();
        let opener = TalkOpener::new(header, camera, epoch, viewing, &challenges)?;
        if !self.heard.insert(opener.header().session) {
            return Err(TalkError::Replayed);
        }
        Ok(opener)
    }
}

/// The public half of the current challenge a kept file holds, if any.
fn current_public(kept: Option<&[u8]>) -> [u8; CHALLENGE_LEN] {
    kept.and_then(|b| b.get(8..8 + CHALLENGE_LEN))
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .map_or([0; CHALLENGE_LEN], |s| {
            LiveChallenge::from_secret(&s).public()
        })
}
