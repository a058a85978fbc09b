//! Keyhole's camera agent: captures video, seals it to the viewing key of a camera record the
//! owner signed, and uploads it. It holds its own signing key and no key that opens video.
//!
//! This first part is the agent's core loop without capture: pair from a pairing code (pinning
//! the account key and, for a self-signed server, its certificate), fetch and verify the camera
//! record before every seal, and seal each clip or event into the camera's chain.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, SealParams, Suite, seal_object,
};
use keyhole_core::event::{EventDetails, seal_event};
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::record::{CameraRecord, CameraState, SignedCameraRecord};
use keyhole_core::{AccountPublicKey, CameraId, CameraKey, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use rand_core::CryptoRngCore;

pub use keyhole_core as core;

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
    /// The owner removed this camera.
    #[error("this camera was removed by its owner")]
    Removed,
}

/// A paired camera.
pub struct Agent {
    http: reqwest::Client,
    server: String,
    token: String,
    account: AccountPublicKey,
    camera_id: CameraId,
    key: CameraKey,
    record: Option<CameraRecord>,
    sequence: u64,
    previous: ObjectDigest,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("camera_id", &self.camera_id)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

async fn ok(resp: reqwest::Response) -> Result<reqwest::Response, AgentError> {
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
    /// proof, and pins the account key (and the server's certificate when the code carries it).
    ///
    /// # Errors
    /// A bad code, an unreachable server, or a refused registration.
    pub async fn pair(code_text: &str, rng: &mut impl CryptoRngCore) -> Result<Self, AgentError> {
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
        let body: serde_json::Value = resp.json().await?;
        let token = body["camera_token"]
            .as_str()
            .ok_or_else(|| AgentError::Refused(200, "no camera token in the answer".into()))?
            .to_owned();
        Ok(Self {
            http,
            server: code.server_url,
            token,
            account: code.account,
            camera_id,
            key,
            record: None,
            sequence: 0,
            previous: ObjectDigest::default(),
        })
    }

    /// The camera's id.
    #[must_use]
    pub fn camera_id(&self) -> CameraId {
        self.camera_id
    }

    /// Fetches the camera record and accepts it only if the pinned account signed it and it is
    /// not older than any record seen before.
    async fn refresh_record(&mut self) -> Result<&CameraRecord, AgentError> {
        let url = format!("{}/v1/cameras/{}/record", self.server, self.camera_id);
        let bytes = ok(self.http.get(url).bearer_auth(&self.token).send().await?)
            .await?
            .bytes()
            .await?;
        let signed = SignedCameraRecord::decode(&bytes)
            .map_err(|e| AgentError::UntrustedRecord(e.to_string()))?;
        let accepted = match &self.record {
            Some(trusted) => trusted.accept(signed),
            None => signed.verify_first(&self.account, &self.camera_id),
        }
        .map_err(|e| AgentError::UntrustedRecord(e.to_string()))?;
        if accepted.body().camera_key != self.key.public() {
            return Err(AgentError::UntrustedRecord(
                "the record names another camera key".into(),
            ));
        }
        if accepted.body().state == CameraState::Removed {
            return Err(AgentError::Removed);
        }
        Ok(self.record.insert(accepted))
    }

    async fn upload(
        &mut self,
        sealed: Vec<u8>,
        object_id: ObjectId,
        digest: ObjectDigest,
    ) -> Result<(), AgentError> {
        let url = format!("{}/v1/objects/{object_id}", self.server);
        ok(self
            .http
            .put(url)
            .bearer_auth(&self.token)
            .body(sealed)
            .send()
            .await?)
        .await?;
        self.previous = digest;
        Ok(())
    }

    fn next_params(
        &mut self,
        kind: ObjectKind,
        captured_at: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<SealParams, AgentError> {
        let record = self
            .record
            .as_ref()
            .ok_or_else(|| AgentError::UntrustedRecord("no record yet".into()))?;
        self.sequence += 1;
        Ok(SealParams {
            kind,
            suite: Suite::Aes256Gcm,
            chunk_log2: DEFAULT_CHUNK_LOG2,
            camera_id: self.camera_id,
            object_id: ObjectId::random(rng),
            epoch: record.body().epoch,
            sequence: self.sequence,
            previous: self.previous,
            captured_at,
        })
    }

    /// Seals `video` as the next clip and uploads it; returns its id.
    ///
    /// There is no spool yet: if the upload fails, the sealed clip is lost and its sequence
    /// number stays unused, which the owner's verification report shows as a gap.
    ///
    /// # Errors
    /// An unverified record (nothing is sealed), or an upload failure.
    pub async fn record_clip(
        &mut self,
        video: &[u8],
        captured_at: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        self.refresh_record().await?;
        let params = self.next_params(ObjectKind::Clip, captured_at, rng)?;
        let viewing = self
            .record
            .as_ref()
            .map(|r| r.body().viewing_key)
            .ok_or(AgentError::Removed)?;
        let (sealed, summary) = seal_object(params, video, &viewing, &self.key, rng)
            .map_err(|e| AgentError::UntrustedRecord(e.to_string()))?;
        self.upload(sealed, params.object_id, summary.digest)
            .await?;
        Ok(params.object_id)
    }

    /// Seals `details` as the next event and uploads it; returns its id.
    ///
    /// # Errors
    /// As [`Agent::record_clip`].
    pub async fn record_event(
        &mut self,
        details: &EventDetails,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ObjectId, AgentError> {
        self.refresh_record().await?;
        let params = self.next_params(ObjectKind::Event, details.started_at, rng)?;
        let viewing = self
            .record
            .as_ref()
            .map(|r| r.body().viewing_key)
            .ok_or(AgentError::Removed)?;
        let (sealed, summary) = seal_event(params, details, &viewing, &self.key, rng)
            .map_err(|e| AgentError::UntrustedRecord(e.to_string()))?;
        self.upload(sealed, params.object_id, summary.digest)
            .await?;
        Ok(params.object_id)
    }
}
