//! The paired camera: verifies the owner's camera record before sealing, seals clips and events
//! into its chain, keeps them in the durable spool and uploads them. A record counts only if a
//! device of the newest roster the camera holds signed it (or the account key): the camera
//! follows the roster chain from the account key it pinned at pairing, so a device revoked in
//! that chain can no longer tell it which key to seal to.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyhole_core::camera_head::CameraHead;
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectKind, ObjectVerifier, PREFIX_LEN, SealParams, Sealer, Suite,
    sealed_len,
};
use keyhole_core::event::{EventDetails, EventKind, seal_event};
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::record::{CameraRecord, CameraState, SignedCameraRecord};
use keyhole_core::roster::{Roster, SignedRoster};
use keyhole_core::signer::Signer;
use keyhole_core::{CameraId, CameraKey, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use rand_core::CryptoRngCore;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::spool::{Entry, Spool, SpoolFile};
use crate::store::{
    Chain, Identity, RECORD_FILE, StoreError, load_rosters, save_rosters, write_atomic,
};
use crate::upload::{Upload, Work};

/// Why the agent could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The pairing code does not parse.
    #[error("bad pairing code: {0}")]
    Code(#[from] keyhole_core::pairing::PairingError),
    /// The server could not be reached.
    #[error("could not reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// The HTTPS client could not be set up.
    #[error(transparent)]
    Transport(#[from] keyhole_http::TransportError),
    /// The server refused a request.
    #[error("the server refused ({0}): {1}")]
    Refused(u16, String),
    /// The camera record is not signed by the pinned account key, or goes back: the camera
    /// refuses to seal to it.
    #[error("ALERT: refusing an unverified camera record: {0}")]
    UntrustedRecord(String),
    /// The owner removed this camera (its record says so, or the server no longer accepts its
    /// credential).
    #[error(
        "this camera was removed by its owner (or the server no longer accepts it): reset it \
         with `keyhole-camera reset` and pair it again to use it"
    )]
    Removed,
    /// The camera has no verified record yet (never reached the server since pairing).
    #[error(
        "no verified camera record yet: the owner has not finished pairing, or the server has not been reached"
    )]
    NoRecord,
    /// The state folder could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing failed.
    #[error("sealing failed: {0}")]
    Seal(String),
}

impl AgentError {
    /// Whether this is the server being unreachable (rather than refusing).
    #[must_use]
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Http(_))
    }
}

/// Settings for sealing and the spool.
#[derive(Debug, Clone, Copy)]
pub struct AgentSettings {
    /// The cipher suite for new objects.
    pub suite: Suite,
    /// Largest size of the spool in bytes.
    pub spool_bytes: u64,
    /// How long devices should wait for this camera's next head before calling it silent
    /// (PROTOCOL.md §8.3), in seconds: its head interval with room for a late upload.
    pub silent_after_s: u32,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            suite: best_suite(),
            spool_bytes: 512 << 20,
            silent_after_s: 900,
        }
    }
}

/// AES-256-GCM where the CPU has AES instructions, ChaCha20-Poly1305 where it does not (it is
/// faster and constant-time in software).
#[must_use]
pub fn best_suite() -> Suite {
    #[cfg(target_arch = "x86_64")]
    let aes = std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    let aes = std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let aes = false;
    if aes {
        Suite::Aes256Gcm
    } else {
        Suite::ChaCha20Poly1305
    }
}

/// What the camera reports about itself (the `status` command and endpoint).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The camera's id.
    pub camera_id: String,
    /// The paired account's code, to compare with the owner's app.
    pub account_code: String,
    /// The server.
    pub server: String,
    /// The cipher suite for new objects.
    pub suite: String,
    /// The epoch of the newest verified camera record (0 before one).
    pub epoch: u32,
    /// Whether the last request reached the server.
    pub online: bool,
    /// When the last object was acknowledged by the server.
    pub last_upload: Option<String>,
    /// When this process last sealed an object, in milliseconds since 1970.
    pub last_sealed_ms: Option<u64>,
    /// Objects waiting in the spool.
    pub spool_objects: usize,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Objects sealed so far (the chain's sequence number).
    pub sealed: u64,
    /// Objects uploaded by this process.
    pub uploaded: u64,
    /// Objects dropped from a full spool.
    pub dropped: u64,
    /// Objects the server refused for good.
    pub rejected: u64,
    /// Alerts: refused records and other things the owner must know.
    pub alerts: Vec<String>,
    /// The server refuses this camera's credential: the owner removed the camera (or the server
    /// lost it). Nothing more is uploaded; what is spooled stays.
    pub credential_refused: bool,
    /// Times the server asked for live view with no request the camera could verify (no proof
    /// of the viewing key, or a nonce used before): the camera did not wake.
    pub live_refused: u64,
    /// Talk sessions played through the speaker (PROTOCOL.md §8.4).
    pub talk_sessions: u64,
    /// Talk frames played.
    pub talk_played: u64,
    /// Talk sessions and frames refused: not from a holder of the viewing key, altered,
    /// replayed, or too late.
    pub talk_refused: u64,
}

/// Whether the server says a device wants the camera's live view, and the requests its viewers
/// sent (PROTOCOL.md §8.2.2), which the camera checks itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The server says someone wants the live view.
    pub wanted: bool,
    /// The viewers' requests.
    pub requests: Vec<keyhole_core::live_request::LiveRequest>,
}

/// The camera's authenticated connection to its server, cheap to clone, for long requests that
/// must not hold the agent (live view).
#[derive(Clone)]
pub struct Link {
    pub(crate) http: reqwest::Client,
    pub(crate) server: String,
    pub(crate) token: Arc<Zeroizing<String>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Sends a signed head of camera `camera_id` on its own (PROTOCOL.md §8.3).
    ///
    /// # Errors
    /// An unreachable or refusing server.
    pub async fn send_head(&self, camera_id: &CameraId, head: &[u8]) -> Result<(), AgentError> {
        let resp = self
            .http
            .put(format!("{}/v1/cameras/{camera_id}/head", self.server))
            .bearer_auth(self.token.as_str())
            .body(head.to_vec())
            .send()
            .await?;
        ok(resp).await?;
        Ok(())
    }

    /// The next talk stream for this camera (PROTOCOL.md §8.4), as the device sends it; `None`
    /// if none came within `wait_secs`.
    ///
    /// # Errors
    /// An unreachable or refusing server.
    pub async fn talk_next(&self, wait_secs: u64) -> Result<Option<reqwest::Response>, AgentError> {
        let resp = self
            .http
            .get(format!("{}/v1/talk?wait_secs={wait_secs}", self.server))
            .bearer_auth(self.token.as_str())
            .send()
            .await?;
        let resp = ok(resp).await?;
        Ok((resp.status() != reqwest::StatusCode::NO_CONTENT).then_some(resp))
    }

    /// Whether a device wants this camera's live view, waiting up to `wait_secs`.
    ///
    /// # Errors
    /// An unreachable or refusing server.
    pub async fn live_wanted(&self, wait_secs: u64) -> Result<Wanted, AgentError> {
        let resp = self
            .http
            .get(format!(
                "{}/v1/live/wanted?wait_secs={wait_secs}",
                self.server
            ))
            .bearer_auth(self.token.as_str())
            .send()
            .await?;
        let body: serde_json::Value = ok(resp).await?.json().await?;
        // What does not decode is no viewer's request: left out.
        let requests = body["requests"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|r| r.as_str())
                    .filter_map(|r| {
                        keyhole_core::live_request::LiveRequest::decode(&hex::decode(r).ok()?).ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Wanted {
            wanted: body["wanted"].as_bool() == Some(true),
            requests,
        })
    }

    /// Uploads object `id` of `len` bytes from `file`, whose read position is at `offset`:
    /// the rest of the object, resuming the server's partial upload when `offset` is not 0.
    /// The response is the caller's to check.
    ///
    /// # Errors
    /// An unreachable server.
    pub async fn put_object(
        &self,
        id: &ObjectId,
        file: tokio::fs::File,
        len: u64,
        offset: u64,
        head: Option<&[u8]>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            UPLOAD_READ,
        ));
        let mut request = self
            .http
            .put(format!("{}/v1/objects/{id}", self.server))
            .bearer_auth(self.token.as_str())
            .header(reqwest::header::CONTENT_LENGTH, len - offset)
            .body(body);
        if offset > 0 {
            request = request.header("Upload-Offset", offset);
        }
        if let Some(head) = head {
            request = request.header(HEAD_HEADER, hex::encode(head));
        }
        request.send().await
    }

    /// Streams a live session's bytes to the relay until `body` ends.
    ///
    /// # Errors
    /// An unreachable or refusing server.
    pub async fn publish_live(
        &self,
        mut body: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    ) -> Result<(), AgentError> {
        let stream = futures_util::stream::poll_fn(move |cx| body.poll_recv(cx));
        let resp = self
            .http
            .put(format!("{}/v1/live", self.server))
            .bearer_auth(self.token.as_str())
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await?;
        ok(resp).await?;
        Ok(())
    }
}

/// A paired camera.
pub struct Agent {
    dir: PathBuf,
    identity: Identity,
    http: reqwest::Client,
    /// The account's roster chain as this camera followed it, from the first version.
    rosters: Vec<Roster>,
    record: Option<CameraRecord>,
    chain: Chain,
    spool: Spool,
    settings: AgentSettings,
    status: Status,
    /// Objects whose upload failed midway in this process: resume them at the server's offset.
    interrupted: std::collections::HashSet<ObjectId>,
    /// Who may wake the camera for live view (PROTOCOL.md §8.2.2).
    live_gate: crate::live_gate::LiveGate,
    /// Whether the alert about a refused live request was raised already.
    live_refusal_said: bool,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("camera_id", &self.identity.camera_id)
            .field("sequence", &self.chain.sequence)
            .finish_non_exhaustive()
    }
}

/// The newest roster of `chain` that lists `signer` (any roster, for the account key).
fn listing(chain: &[Roster], signer: Signer) -> Option<&Roster> {
    chain.iter().rev().find(|r| match signer {
        Signer::Account => true,
        Signer::Device(id) => r.device(&id).is_some(),
    })
}

pub(crate) async fn ok(resp: reqwest::Response) -> Result<reqwest::Response, AgentError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    Err(AgentError::Refused(
        status,
        resp.text().await.unwrap_or_default(),
    ))
}

impl Agent {
    /// Pairs from the text of a pairing code: makes the camera's key and id, registers with the
    /// proof, pins the account key (and the server's certificate when the code carries it),
    /// saves the identity in `dir`, and follows the account's roster chain from the pinned key
    /// while it is online (so a battery camera's first wake needs no roster request). Refuses a
    /// folder that already holds a paired camera.
    ///
    /// # Errors
    /// A bad code, an unreachable server, a refused registration, a roster chain that does not
    /// verify from the pinned key, or a folder in use.
    pub async fn pair(
        code_text: &str,
        dir: &Path,
        settings: AgentSettings,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, AgentError> {
        if Identity::load(dir).is_ok() {
            return Err(AgentError::Seal(format!(
                "{} already holds a paired camera; run `keyhole-camera reset` first",
                dir.display()
            )));
        }
        let code = PairingCode::parse(code_text)?;
        let endpoint = Endpoint {
            url: code.server_url.clone(),
            pin: code.tls_fingerprint,
            allow_plain_http: false,
        };
        let http = keyhole_http::client(&endpoint)?;
        let key = CameraKey::generate(rng);
        let camera_id = CameraId::random(rng);
        let proof = RegistrationProof::create(&code, camera_id, &key);
        let url = format!(
            "{}/v1/pairing-tokens/{}/register",
            code.server_url, code.token
        );
        let resp = ok(http.post(url).body(proof.encode()).send().await?).await?;
        let body: Zeroizing<Vec<u8>> = Zeroizing::new(resp.bytes().await?.to_vec());
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| AgentError::Refused(200, "the answer is not JSON".into()))?;
        let token = body["camera_token"]
            .as_str()
            .ok_or_else(|| AgentError::Refused(200, "no camera token in the answer".into()))?;
        let identity = Identity {
            camera_id,
            key,
            account: code.account,
            server_url: code.server_url.clone(),
            tls_pin: code.tls_fingerprint,
            token: Zeroizing::new(token.to_owned()),
        };
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        identity.save(dir)?;
        let mut agent = Self::open(dir, settings)?;
        agent.follow_rosters().await?;
        Ok(agent)
    }

    /// Opens a paired camera's state in `dir`: its identity, newest verified record and chain;
    /// objects sealed just before a crash, whose chain update did not land, are taken back into
    /// the chain from the spool.
    ///
    /// # Errors
    /// Not paired, or damaged state.
    pub fn open(dir: &Path, settings: AgentSettings) -> Result<Self, AgentError> {
        let identity = Identity::load(dir)?;
        let http = keyhole_http::client(&Endpoint {
            url: identity.server_url.clone(),
            pin: identity.tls_pin,
            allow_plain_http: false,
        })?;
        let rosters = load_rosters(dir, &identity.account)?;
        let record = match std::fs::read(dir.join(RECORD_FILE)) {
            Ok(bytes) => Some(
                SignedCameraRecord::decode(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        // Accepted when it arrived; its signer may have left the roster since.
                        let roster = listing(&rosters, s.signer())
                            .ok_or("no roster held lists the record's signer")?;
                        s.verify_first(roster, &identity.camera_id)
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|why| StoreError::Damaged {
                        path: dir.join(RECORD_FILE),
                        why,
                    })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StoreError::Io {
                    path: dir.join(RECORD_FILE),
                    source,
                }
                .into());
            }
        };
        let mut chain = Chain::load(dir)?;
        let spool = Spool::open(dir.join("spool"), settings.spool_bytes)?;
        for entry in spool.entries()? {
            if entry.sequence > chain.sequence {
                let bytes = std::fs::read(&entry.path).map_err(|source| StoreError::Io {
                    path: entry.path.clone(),
                    source,
                })?;
                let digest = verify_sealed(&bytes, &identity.key)?;
                chain.sequence = entry.sequence;
                chain.previous = hex::encode(digest.0);
            }
        }
        chain.save(dir)?;
        let status = Status {
            camera_id: identity.camera_id.to_string(),
            account_code: identity.account.account_code().to_string(),
            server: identity.server_url.clone(),
            suite: format!("{:?}", settings.suite),
            epoch: record.as_ref().map_or(0, |r| r.body().epoch),
            last_upload: chain.last_upload.map(|ms| Timestamp(ms).to_string()),
            ..Status::default()
        };
        let live_gate = crate::live_gate::LiveGate::open(dir, crate::now(), &mut rand_core::OsRng)?;
        let mut agent = Self {
            dir: dir.to_owned(),
            identity,
            http,
            rosters,
            record,
            chain,
            spool,
            settings,
            status,
            interrupted: std::collections::HashSet::new(),
            live_gate,
            live_refusal_said: false,
        };
        agent.update_status();
        Ok(agent)
    }

    /// A connection to the server for long requests.
    #[must_use]
    pub fn link(&self) -> Link {
        Link {
            http: self.http.clone(),
            server: self.identity.server_url.clone(),
            token: Arc::new(self.identity.token.clone()),
        }
    }

    /// Refreshes the record (keeping the newest verified one when offline) and returns what a
    /// live session needs.
    ///
    /// # Errors
    /// As [`Agent::record_clip`].
    pub async fn live_start(
        &mut self,
        rng: &mut impl CryptoRngCore,
    ) -> Result<crate::live::LiveStart, AgentError> {
        self.refresh_online(rng).await?;
        let viewing_key = self.viewing_key()?;
        let epoch = self.record.as_ref().map_or(0, |r| r.body().epoch);
        Ok(crate::live::LiveStart {
            params: crate::live::params(self.identity.camera_id, self.settings.suite, epoch, rng),
            viewing_key,
            key: CameraKey::from_seed(&self.identity.key.seed()),
        })
    }

    /// The nonces of `requests` that may start or go on watching live (PROTOCOL.md §8.2.2):
    /// proven by a holder of the viewing key of the epoch the camera holds, and in the session
    /// already (`joined`) or new. A camera that holds no record yet (a battery camera asleep
    /// since pairing) fetches it first; none is fetched on a request alone otherwise, so a
    /// server's "wanted" costs the camera no request.
    pub async fn admit_live(
        &mut self,
        requests: &[keyhole_core::live_request::LiveRequest],
        joined: &std::collections::HashSet<keyhole_core::live_check::Nonce>,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<keyhole_core::live_check::Nonce> {
        if self.record.is_none() && !requests.is_empty() {
            let _ = self.refresh_online(rng).await;
        }
        let Some(record) = self.record.as_ref() else {
            return Vec::new();
        };
        let body = record.body();
        self.live_gate.admit(
            &self.identity.camera_id,
            body.epoch,
            &body.viewing_key,
            requests,
            joined,
        )
    }

    /// Opens a talk session's header (PROTOCOL.md §8.4) under the current record's epoch and
    /// viewing key, fetching the record first if the camera holds none.
    ///
    /// # Errors
    /// Why the session is refused, in words.
    pub async fn open_talk(
        &mut self,
        header: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<keyhole_core::talk::TalkOpener, String> {
        // A session for a newer epoch than the camera knows (a device was revoked since it
        // last looked): the record is fetched first. An older epoch stays refused.
        let claimed = keyhole_core::talk::TalkHeader::decode(header)
            .ok()
            .map(|h| h.epoch);
        if self.record.is_none() || claimed > self.record.as_ref().map(|r| r.body().epoch) {
            let _ = self.refresh_online(rng).await;
        }
        let Some(record) = self.record.as_ref() else {
            return Err("the camera holds no record to check the talker against".into());
        };
        let body = record.body();
        self.live_gate
            .talk(
                header,
                &self.identity.camera_id,
                body.epoch,
                &body.viewing_key,
            )
            .map_err(|e| e.to_string())
    }

    /// Counts talk frames played and refused (`sessions` new sessions among them).
    pub fn talk_heard(&mut self, sessions: u64, played: u64, refused: u64) {
        self.status.talk_sessions += sessions;
        self.status.talk_played += played;
        self.status.talk_refused += refused;
    }

    /// Counts a request to wake for live view that came with no request the camera could
    /// verify (a server's "wanted" with no viewer that holds the key), and raises one alert
    /// per run about it.
    pub fn live_wake_refused(&mut self) {
        self.status.live_refused += 1;
        if !self.live_refusal_said {
            self.live_refusal_said = true;
            self.alert(
                "live view was asked for without a request from a device holding this camera's \
                 key; the camera did not stream (the server may be trying to wake it)"
                    .into(),
            );
        }
    }

    /// The suite objects are sealed with.
    #[must_use]
    pub fn suite(&self) -> Suite {
        self.settings.suite
    }

    /// The camera's id.
    #[must_use]
    pub fn camera_id(&self) -> CameraId {
        self.identity.camera_id
    }

    /// The camera's current status.
    #[must_use]
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Records an alert: logged loudly and kept in the status.
    pub fn alert(&mut self, message: String) {
        eprintln!("keyhole-camera: ALERT: {message}");
        self.status.alerts.push(message);
        if self.status.alerts.len() > 100 {
            self.status.alerts.remove(0);
        }
    }

    /// Notes that the server refuses this camera's credential (401), and says what to do.
    pub fn credential_refused(&mut self) {
        if !self.status.credential_refused {
            self.status.credential_refused = true;
            self.alert(
                "the server no longer accepts this camera: its owner removed it (or the server \
                 lost its credential). Nothing more is uploaded; recordings stay in the spool. \
                 To use the camera again, reset it (`keyhole-camera reset`) and pair it again."
                    .into(),
            );
        }
    }

    /// Raises `message` as an alert and, once the camera has a record to seal to, seals it as
    /// an alert event (from `started_at`, lasting `duration_ms`) that the owner opens.
    ///
    /// # Errors
    /// Sealing or spooling failed.
    pub fn alert_event(
        &mut self,
        message: &str,
        started_at: keyhole_core::Timestamp,
        duration_ms: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), AgentError> {
        self.alert(message.to_owned());
        if self.record.is_none() {
            return Ok(());
        }
        let details = EventDetails {
            kind: EventKind::Alert,
            started_at,
            duration_ms,
            clip: None,
            note: message
                .chars()
                .take(keyhole_core::event::MAX_NOTE)
                .collect(),
            thumbnail_jpeg: Vec::new(),
        };
        self.seal_event(&details, rng)?;
        Ok(())
    }

    fn update_status(&mut self) {
        let entries = self.spool.entries().unwrap_or_default();
        self.status.spool_objects = entries.len();
        self.status.spool_bytes = entries.iter().map(|e| e.len).sum();
        self.status.sealed = self.chain.sequence;
        self.status.dropped = self.chain.dropped;
        self.status.rejected = self.chain.rejected;
        self.status.epoch = self.record.as_ref().map_or(0, |r| r.body().epoch);
    }

    /// Fetches the camera record and accepts it only if the pinned account signed it and it is
    /// not older than any record seen before; the newest is kept on disk. When the server cannot
    /// be reached, the newest verified record stays in force and this says so with an
    /// [`AgentError::Http`] error.
    ///
    /// # Errors
    /// Unreachable server, a refused request, an untrusted record (also raised as an alert and,
    /// when a verified record exists, sealed as an alert event for the owner), or removal.
    pub async fn refresh_record(&mut self, rng: &mut impl CryptoRngCore) -> Result<(), AgentError> {
        match self.fetch_record().await {
            Ok(()) => {}
            Err(AgentError::UntrustedRecord(why)) => {
                let message = format!("refused a camera record the server offered: {why}");
                self.alert_event(&message, crate::now(), 0, rng)?;
                return Err(AgentError::UntrustedRecord(why));
            }
            Err(e) => return Err(e),
        }
        let record = self.record.as_ref().ok_or(AgentError::NoRecord)?;
        if record.body().state == CameraState::Removed {
            return Err(AgentError::Removed);
        }
        Ok(())
    }

    /// A GET of `path` on the server with the camera's credential.
    async fn get_bytes(&mut self, path: &str) -> Result<Vec<u8>, AgentError> {
        let url = format!("{}{path}", self.identity.server_url);
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.identity.token.as_str())
            .send()
            .await;
        self.status.online = resp.is_ok();
        Ok(ok(resp?).await?.bytes().await?.to_vec())
    }

    /// Follows the account's roster chain from the newest version this camera holds (from the
    /// first, signed by the pinned account key, when it holds none) to the newest the server
    /// shows, each version accepted as the successor of the one before; keeps it on disk.
    async fn follow_rosters(&mut self) -> Result<(), AgentError> {
        let path = format!("/v1/cameras/{}/roster", self.identity.camera_id);
        let untrusted = |e: keyhole_core::roster::RosterError| {
            AgentError::UntrustedRecord(format!("the account's device list: {e}"))
        };
        let latest =
            SignedRoster::decode(&self.get_bytes(&path).await?).map_err(|e| untrusted(e.into()))?;
        let newest = latest.unverified_body().version;
        let held = self.rosters.last().map_or(0, |r| r.body().version);
        let mut added = false;
        for version in held.saturating_add(1)..=newest {
            let offered = if version == newest {
                latest.clone()
            } else {
                let bytes = self.get_bytes(&format!("{path}?version={version}")).await?;
                SignedRoster::decode(&bytes).map_err(|e| untrusted(e.into()))?
            };
            let next = match self.rosters.last() {
                Some(trusted) => trusted.accept(offered),
                None => offered.verify_first(&self.identity.account),
            }
            .map_err(untrusted)?;
            self.rosters.push(next);
            added = true;
        }
        if let Some(trusted) = self.rosters.last() {
            // The newest again, or a rollback or fork the server offers instead.
            trusted.accept(latest).map_err(untrusted)?;
        }
        if added {
            save_rosters(&self.dir, &self.rosters)?;
        }
        Ok(())
    }

    /// Fetches the camera record and accepts it only if a device of the account's newest roster
    /// (or the account key) signed it and it is not older than any record seen before; the
    /// newest is kept on disk. A changed record whose signer the newest roster held does not
    /// list is checked after following the roster chain (a device enrolled since signed it; one
    /// revoked is refused there). An honest server stores no record a revoked device signs, and
    /// a hostile one could withhold newer rosters anyway, so a known signer costs no request.
    async fn fetch_record(&mut self) -> Result<(), AgentError> {
        let bytes = self
            .get_bytes(&format!("/v1/cameras/{}/record", self.identity.camera_id))
            .await?;
        let signed = SignedCameraRecord::decode(&bytes)
            .map_err(|e| AgentError::UntrustedRecord(e.to_string()))?;
        let unchanged = self
            .record
            .as_ref()
            .is_some_and(|r| r.signed().encoded() == signed.encoded());
        // A new record is checked against the newest roster, not the one held: its signer may
        // have been revoked since. It also keeps the roster version in the camera's heads
        // current, which is how devices shown an old history learn of it.
        if !unchanged {
            self.follow_rosters().await?;
        }
        let roster = self.rosters.last().ok_or_else(|| {
            AgentError::UntrustedRecord("the account's device list is not known yet".into())
        })?;
        let accepted = match &self.record {
            Some(trusted) => trusted.accept(signed, roster),
            None => signed.verify_first(roster, &self.identity.camera_id),
        }
        .map_err(|e| AgentError::UntrustedRecord(e.to_string()))?;
        if accepted.body().camera_key != self.identity.key.public() {
            return Err(AgentError::UntrustedRecord(
                "the record names another camera key".into(),
            ));
        }
        if !unchanged {
            write_atomic(&self.dir.join(RECORD_FILE), accepted.signed().encoded())?;
        }
        self.record = Some(accepted);
        self.update_status();
        Ok(())
    }

    fn next_params(
        &mut self,
        kind: ObjectKind,
        captured_at: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<SealParams, AgentError> {
        let record = self.record.as_ref().ok_or(AgentError::NoRecord)?;
        if record.body().state == CameraState::Removed {
            return Err(AgentError::Removed);
        }
        Ok(SealParams {
            kind,
            suite: self.settings.suite,
            chunk_log2: DEFAULT_CHUNK_LOG2,
            camera_id: self.identity.camera_id,
            object_id: ObjectId::random(rng),
            epoch: record.body().epoch,
            sequence: self.chain.sequence + 1,
            previous: self.chain.previous_digest(),
            captured_at,
        })
    }

    fn viewing_key(&self) -> Result<keyhole_core::HpkePublicKey, AgentError> {
        self.record
            .as_ref()
            .map(|r| r.body().viewing_key)
            .ok_or(AgentError::NoRecord)
    }

    /// Puts a sealed object in the spool, then moves the chain past it.
    fn spool(
        &mut self,
        params: &SealParams,
        sealed: &[u8],
        digest: keyhole_core::envelope::ObjectDigest,
    ) -> Result<(), AgentError> {
        let dropped = self.spool.put(params.sequence, params.object_id, sealed)?;
        self.advance(params, digest, dropped)
    }

    /// Moves the chain past an object now in the spool.
    fn advance(
        &mut self,
        params: &SealParams,
        digest: keyhole_core::envelope::ObjectDigest,
        dropped: u64,
    ) -> Result<(), AgentError> {
        self.chain.sequence = params.sequence;
        self.chain.previous = hex::encode(digest.0);
        self.chain.dropped += dropped;
        self.chain.save(&self.dir)?;
        self.status.last_sealed_ms = Some(crate::now().0);
        if dropped > 0 {
            self.alert(format!(
                "the spool is full: dropped the {dropped} oldest sealed object(s) before upload"
            ));
        }
        self.update_status();
        Ok(())
    }

    /// Seals `video` as the next clip to the newest verified record and puts it in the spool.
    ///
    /// # Errors
    /// No verified record, a removed camera, or a spool failure.
    pub fn seal_clip(
        &mut self,
        video: &[u8],
        captured_at: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        let object_id = ObjectId::random(rng);
        self.seal_clip_from(
            object_id,
            &mut &video[..],
            video.len() as u64,
            captured_at,
            rng,
        )
    }

    /// Seals the `len` bytes read from `video` as the next clip, under `object_id`, streaming
    /// them through the sealer into the spool: each chunk is read straight into place and
    /// encrypted there, and memory stays at a few chunks whatever the clip's length.
    ///
    /// # Errors
    /// As [`Agent::seal_clip`], or `video` failing or not giving `len` bytes.
    pub fn seal_clip_from(
        &mut self,
        object_id: ObjectId,
        video: &mut dyn Read,
        len: u64,
        captured_at: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        let mut params = self.next_params(ObjectKind::Clip, captured_at, rng)?;
        params.object_id = object_id;
        let viewing = self.viewing_key()?;
        let mut file = self.spool.create(
            params.sequence,
            object_id,
            sealed_len(len, params.chunk_log2),
        )?;
        let mut prefix = Vec::new();
        let sealer = Sealer::new(params, &viewing, &self.identity.key, rng, &mut prefix)
            .map_err(|e| AgentError::Seal(e.to_string()))?;
        file.write(&prefix)?;
        let mut sink = SpoolSink {
            file: &mut file,
            failed: None,
        };
        let summary =
            sealer
                .seal_read(video, len, &mut sink)
                .map_err(|e| match sink.failed.take() {
                    Some(spool) => AgentError::from(spool),
                    None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        AgentError::Seal(format!("the clip ended before the {len} bytes expected"))
                    }
                    None => AgentError::Seal(format!("reading the clip: {e}")),
                })?;
        if video.read(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
            return Err(AgentError::Seal(format!(
                "the clip is longer than the {len} bytes expected"
            )));
        }
        let dropped = file.commit()?;
        self.advance(&params, summary.digest, dropped)?;
        Ok(object_id)
    }

    /// Seals `details` as the next event and puts it in the spool.
    ///
    /// # Errors
    /// As [`Agent::seal_clip`].
    pub fn seal_event(
        &mut self,
        details: &EventDetails,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        let params = self.next_params(ObjectKind::Event, details.started_at, rng)?;
        let viewing = self.viewing_key()?;
        let (sealed, summary) = seal_event(params, details, &viewing, &self.identity.key, rng)
            .map_err(|e| AgentError::Seal(e.to_string()))?;
        self.spool(&params, &sealed, summary.digest)?;
        Ok(params.object_id)
    }

    /// Refreshes the record, then seals and spools `video` as a clip; uploads are separate
    /// ([`Agent::upload_pending`]). When the server is unreachable the newest verified record
    /// is used.
    ///
    /// # Errors
    /// As [`Agent::refresh_record`] (except being offline) and [`Agent::seal_clip`].
    pub async fn record_clip(
        &mut self,
        video: &[u8],
        captured_at: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        self.refresh_online(rng).await?;
        self.seal_clip(video, captured_at, rng)
    }

    /// [`Agent::record_clip`] streaming from `video` ([`Agent::seal_clip_from`]), under an id
    /// chosen earlier (a continuous segment, which events name before it ends).
    ///
    /// # Errors
    /// As [`Agent::record_clip`] and [`Agent::seal_clip_from`].
    pub async fn record_clip_from(
        &mut self,
        object_id: ObjectId,
        video: &mut (dyn Read + Send),
        len: u64,
        captured_at: Timestamp,
        rng: &mut (impl CryptoRngCore + Send),
    ) -> Result<ObjectId, AgentError> {
        self.refresh_online(rng).await?;
        self.seal_clip_from(object_id, video, len, captured_at, rng)
    }

    /// Refreshes the record, then seals and spools an event.
    ///
    /// # Errors
    /// As [`Agent::record_clip`].
    pub async fn record_event(
        &mut self,
        details: &EventDetails,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        self.refresh_online(rng).await?;
        self.seal_event(details, rng)
    }

    /// [`Agent::refresh_record`], treating an unreachable server, or one that does not answer
    /// within [`RECORD_WAIT`], as "keep the newest verified record".
    async fn refresh_online(&mut self, rng: &mut impl CryptoRngCore) -> Result<(), AgentError> {
        let Ok(refreshed) = tokio::time::timeout(RECORD_WAIT, self.refresh_record(rng)).await
        else {
            // A server that does not answer in time counts as unreachable.
            self.status.online = false;
            return if self.record.is_some() {
                Ok(())
            } else {
                Err(AgentError::NoRecord)
            };
        };
        match refreshed {
            Ok(()) => Ok(()),
            Err(e) if e.is_offline() && self.record.is_some() => Ok(()),
            Err(AgentError::Refused(401, _)) => {
                self.credential_refused();
                Err(AgentError::Removed)
            }
            Err(e) => Err(e),
        }
    }

    /// Uploads everything in the spool, oldest first, and removes what the server acknowledged.
    /// Stops at the first failure that a retry may cure (unreachable, busy, server error) and
    /// returns it; objects the server refuses for good are moved aside and counted. The agent
    /// is borrowed throughout: a camera's uploader, which must not keep clips from being sealed
    /// meanwhile, takes the same steps holding the agent only to pick and settle each
    /// ([`Agent::next_upload`]).
    ///
    /// # Errors
    /// The failure that stopped the run; the spool keeps everything not acknowledged.
    pub async fn upload_pending(&mut self) -> Result<usize, AgentError> {
        let mut uploaded = 0;
        let result = loop {
            let upload = match self.next_upload() {
                Ok(Some(upload)) => upload,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let sent = upload.send().await;
            match self.settle_upload(&upload, sent) {
                Ok(n) => uploaded += n,
                Err(e) => break Err(e),
            }
        };
        self.end_upload_round(uploaded);
        result.map(|()| uploaded)
    }

    /// The next step in uploading the spool, its head signed now: the oldest objects that fit
    /// one batch request, or the oldest object alone (always so after an earlier attempt was
    /// cut, to resume it). `None` once the spool is empty.
    ///
    /// # Errors
    /// A spool that cannot be read, or a head that cannot be signed.
    pub fn next_upload(&mut self) -> Result<Option<Upload>, AgentError> {
        let entries = self.spool.entries()?;
        let Some(oldest) = entries.first() else {
            return Ok(None);
        };
        let batch = self.batch_from(&entries);
        let work = if batch.len() >= 2 {
            let last = batch.last().map_or(0, |e| e.sequence);
            Work::Batch {
                entries: batch.to_vec(),
                head: self.head(last)?,
            }
        } else {
            Work::Single {
                entry: oldest.clone(),
                resume: self.interrupted.contains(&oldest.object_id),
                head: self.head(oldest.sequence)?,
            }
        };
        Ok(Some(Upload {
            link: self.link(),
            work,
        }))
    }

    /// Takes what became of `upload`: how many objects the server acknowledged (removed from
    /// the spool; 0 when it refused them for good: a batch is then sent one by one, a single
    /// object moved aside), or the failure that should end this round of uploads.
    ///
    /// # Errors
    /// `sent`'s failure when a retry may cure it; the spool failing.
    pub fn settle_upload(
        &mut self,
        upload: &Upload,
        sent: Result<(), AgentError>,
    ) -> Result<usize, AgentError> {
        self.note_reached(&sent);
        let entries = upload.entries();
        let settled = match (sent, &upload.work) {
            (Ok(()), _) => {
                for entry in entries {
                    self.uploaded(entry)?;
                }
                Ok(entries.len())
            }
            (Err(AgentError::Refused(code, _)), Work::Batch { .. }) if permanent(code) => {
                // Send them one by one (resuming) from now on.
                for entry in entries {
                    self.interrupted.insert(entry.object_id);
                }
                Ok(0)
            }
            (Err(AgentError::Refused(code, why)), Work::Single { entry, .. })
                if permanent(code) =>
            {
                self.spool.reject(entry)?;
                self.chain.rejected += 1;
                self.chain.save(&self.dir)?;
                self.alert(format!(
                    "the server refused object {} ({code}: {why}); kept in spool/rejected",
                    entry.object_id
                ));
                Ok(0)
            }
            (Err(e), _) => {
                for entry in entries {
                    self.interrupted.insert(entry.object_id);
                }
                Err(e)
            }
        };
        self.update_status();
        settled
    }

    /// Ends a round of uploads that got `uploaded` objects acknowledged: keeps when the server
    /// last acknowledged one, once per round rather than per object (the status is current
    /// already: each settled step updates it).
    pub fn end_upload_round(&mut self, uploaded: usize) {
        if uploaded > 0
            && let Err(e) = self.chain.save(&self.dir)
        {
            self.alert(format!("could not save the chain's state: {e}"));
        }
    }

    /// Signs this camera's head (PROTOCOL.md §8.3): its newest sealed object, and that every
    /// object up to `delivered` has reached the server (acknowledged, or in the request the head
    /// rides on).
    fn head(&self, delivered: u64) -> Result<Vec<u8>, AgentError> {
        let sequence = self.chain.sequence;
        CameraHead {
            camera_id: self.identity.camera_id,
            sequence,
            digest: if sequence == 0 {
                keyhole_core::envelope::ObjectDigest::default()
            } else {
                self.chain.previous_digest()
            },
            delivered: delivered.min(sequence),
            clock: crate::now(),
            silent_after_s: self.settings.silent_after_s.max(1),
            record_version: self.record.as_ref().map_or(0, |r| r.body().version),
            roster_version: self.rosters.last().map_or(0, |r| r.body().version),
            live_challenge: self.live_gate.challenge(),
        }
        .sign(&self.identity.key)
        .map_err(|e| AgentError::Seal(format!("the camera's head: {e}")))
    }

    /// The camera's head to send on its own (between uploads), signed now, with the link to send
    /// it over ([`Link::send_head`]) without holding the agent: what the server has of its chain
    /// is everything before the oldest object still in the spool.
    ///
    /// # Errors
    /// A spool that cannot be read, or a head that cannot be signed.
    pub fn head_to_send(&self) -> Result<(Link, Vec<u8>), AgentError> {
        let delivered = match self.spool.entries()?.first() {
            Some(oldest) => oldest.sequence.saturating_sub(1),
            None => self.chain.sequence,
        };
        Ok((self.link(), self.head(delivered)?))
    }

    /// Sends the camera's head on its own ([`Agent::head_to_send`], then [`Link::send_head`]).
    ///
    /// # Errors
    /// An unreachable or refusing server.
    pub async fn send_head(&mut self) -> Result<(), AgentError> {
        let (link, head) = self.head_to_send()?;
        let sent = link.send_head(&self.identity.camera_id, &head).await;
        self.note_reached(&sent);
        sent
    }

    /// Notes whether a request sent without the agent reached the server (the status's
    /// `online`): an answer, even a refusal, says it did, an unreachable server that it did
    /// not; a failure before anything was sent (a spool file) says nothing.
    pub fn note_reached<T>(&mut self, sent: &Result<T, AgentError>) {
        match sent {
            Ok(_) | Err(AgentError::Refused(..)) => self.status.online = true,
            Err(AgentError::Http(_)) => self.status.online = false,
            Err(_) => {}
        }
    }

    fn uploaded(&mut self, entry: &Entry) -> Result<(), AgentError> {
        self.spool.remove(entry)?;
        self.interrupted.remove(&entry.object_id);
        self.status.uploaded += 1;
        let now = crate::now();
        self.status.last_upload = Some(now.to_string());
        self.chain.last_upload = Some(now.0);
        Ok(())
    }

    /// The leading entries that fit one batch request (none interrupted before).
    fn batch_from<'e>(&self, entries: &'e [Entry]) -> &'e [Entry] {
        let mut total = 0u64;
        let mut count = 0;
        for entry in entries.iter().take(MAX_BATCH_OBJECTS) {
            total += 4 + entry.len;
            if total > MAX_BATCH_BYTES || self.interrupted.contains(&entry.object_id) {
                break;
            }
            count += 1;
        }
        &entries[..count]
    }
}

/// How long sealing waits for the server's newest record before sealing to the newest one the
/// camera holds: a stalled network must not hold up clips (a hostile server could stall the
/// answer as well as withhold it, and gains nothing by it).
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The request header that carries the camera's head on an upload (hexadecimal).
pub(crate) const HEAD_HEADER: &str = "keyhole-head";

/// Largest batch request body (the server's limit).
const MAX_BATCH_BYTES: u64 = keyhole_wire::batch::MAX_BYTES as u64;
/// Most objects in one batch request.
const MAX_BATCH_OBJECTS: usize = keyhole_wire::batch::MAX_OBJECTS;
/// Bytes read from the spool per piece of an upload. Each read is a trip to tokio's blocking
/// pool; at the default 4 KiB that was a thousand trips for a 5 MB clip.
pub(crate) const UPLOAD_READ: usize = 128 << 10;

pub(crate) async fn open_spooled(entry: &Entry) -> Result<tokio::fs::File, StoreError> {
    tokio::fs::File::open(&entry.path)
        .await
        .map_err(|source| StoreError::Io {
            path: entry.path.clone(),
            source,
        })
}

/// Whether a refusal is for good (retrying the same bytes cannot succeed).
fn permanent(code: u16) -> bool {
    matches!(code, 400 | 404 | 411 | 413 | 415 | 422)
}

/// Checks a spooled object's camera signatures and returns its digest.
fn verify_sealed(
    bytes: &[u8],
    key: &CameraKey,
) -> Result<keyhole_core::envelope::ObjectDigest, AgentError> {
    let prefix = bytes.get(..PREFIX_LEN).unwrap_or(bytes);
    let mut verifier = ObjectVerifier::new(prefix, &key.public())
        .map_err(|e| AgentError::Seal(format!("a spooled object is damaged: {e}")))?;
    verifier.update(bytes.get(PREFIX_LEN..).unwrap_or_default());
    verifier
        .finish()
        .map_err(|e| AgentError::Seal(format!("a spooled object is damaged: {e}")))
}

/// Writes a sealed clip into its spool file for [`Sealer::seal_read`], keeping the spool's own
/// error, which `std::io::Write` would turn into words.
struct SpoolSink<'f> {
    file: &'f mut SpoolFile,
    failed: Option<StoreError>,
}

impl std::io::Write for SpoolSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.file.write(bytes) {
            Ok(()) => Ok(bytes.len()),
            Err(e) => {
                self.failed = Some(e);
                Err(std::io::Error::other("the spool write failed"))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
