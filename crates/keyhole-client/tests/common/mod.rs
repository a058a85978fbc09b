//! Shared by the client's tests: a camera agent running in this process, and a device joined
//! by approval.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::time::Duration;

use keyhole_camera::Agent;
use keyhole_camera::config::{Config, Profile, RecordMode};
use keyhole_camera::source::SourceConfig;

/// A paired camera running on its synthetic scene (with `marker` drawn into it), recording
/// only events, motion detection off; its control API answers at `control`, and its speaker
/// writes talk-back sound to `speaker` (16-bit PCM at 16 kHz).
pub struct RunningCamera {
    pub control: String,
    pub speaker: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), keyhole_camera::run::RunError>>,
}

impl RunningCamera {
    /// Starts `agent` (its state in `state_dir`), its control API on a listener bound here.
    pub async fn start(agent: Agent, state_dir: &Path, marker: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config {
            state_dir: state_dir.to_owned(),
            profile: Profile::Wired,
            source: SourceConfig::Synthetic {
                width: 320,
                height: 240,
                fps: 15,
                visit_every_s: None,
                marker: marker.map(str::to_owned),
                sound: true,
            },
            ..Config::default()
        };
        config.record.mode = Some(RecordMode::Events);
        config.motion.enabled = false;
        let speaker = state_dir.with_extension("speaker.pcm");
        config.talk.file = Some(speaker.clone());
        config.talk.rate = 16_000;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(keyhole_camera::run::run(config, agent, listener, async {
            stopped.await.ok();
        }));
        Self {
            control,
            speaker,
            stop,
            task,
        }
    }

    /// The camera's status once `ready` says so (within a minute).
    pub async fn status_when(
        &self,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status: serde_json::Value = reqwest::get(format!("{}/status", self.control))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ready(&status) {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "camera status: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the camera's speaker played so far.
    pub fn heard(&self) -> Vec<i16> {
        std::fs::read(&self.speaker)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// Stops the camera; how its run ended.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(ended) => ended.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A new device `name` joined to `user`'s account by approval from `approver` at `now`, as a
/// person does it: the request, both screens showing the same code, the approval, the grant.
pub async fn join_by_approval(
    approver: &mut keyhole_client::Owner,
    endpoint: &keyhole_http::Endpoint,
    (user, name): (&str, &str),
    now: keyhole_client::core::Timestamp,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> keyhole_client::Owner {
    let mut joining =
        keyhole_client::JoinRequest::start(endpoint, user, "correct horse battery", name, rng)
            .await
            .unwrap();
    let pending = approver.pending_enrollments().await.unwrap();
    let waiting = pending
        .iter()
        .find(|p| p.request.device_id == joining.device_id())
        .unwrap()
        .clone();
    let (code, approval) = tokio::join!(
        joining.exchange(),
        approver.answer_enrollment(&waiting, rng)
    );
    let approval = approval.unwrap();
    assert_eq!(code.unwrap(), approval.code());
    approver
        .approve_enrollment(approval, now, rng)
        .await
        .unwrap();
    joining.finish(rng).await.unwrap()
}

pub const PASSWORD: &str = "correct horse battery";

/// The time the accounts of these tests are set up at.
pub const NOW: keyhole_core::Timestamp = keyhole_core::Timestamp(1_795_735_205_000);

/// Ana's account, made on her phone, with a camera (its state under `dir`) paired into it: the
/// server's endpoint, the phone, the recovery phrase, the camera and its id.
pub async fn ana_with_camera(
    server: &keyhole_testkit::TestServer,
    dir: &std::path::Path,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> (
    keyhole_http::Endpoint,
    keyhole_client::Owner,
    keyhole_core::recovery::RecoveryPhrase,
    Agent,
    keyhole_core::CameraId,
) {
    let endpoint = keyhole_http::Endpoint {
        url: server.url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut phone, phrase) = keyhole_client::Owner::create(
        &endpoint,
        "ana",
        PASSWORD,
        "phone",
        keyhole_core::recovery::KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let code = phone.start_pairing(&server.url, None, rng).await.unwrap();
    let camera = Agent::pair(
        &code.to_text(),
        &dir.join("camera"),
        keyhole_camera::AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    let camera_id = phone
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    (endpoint, phone, phrase, camera, camera_id)
}

/// A device `name`, its keys made here, added to `owner`'s roster at [`NOW`] (nothing runs it):
/// its id and keys. The keys are drawn from `rng` before the id.
pub async fn add_device(
    owner: &mut keyhole_client::Owner,
    name: &str,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> (keyhole_core::DeviceId, keyhole_core::DeviceKeys) {
    let keys = keyhole_core::DeviceKeys::generate(rng);
    let id = keyhole_core::DeviceId::random(rng);
    owner
        .add_device(
            keyhole_core::roster::DeviceEntry {
                id,
                name: name.into(),
                added_at: NOW,
                signing_key: keys.signing.public(),
                hpke_key: keys.hpke.public(),
            },
            NOW,
            rng,
        )
        .await
        .unwrap();
    (id, keys)
}

/// `device`'s key store, saved under `dir` as the device keeps it, and opened again with its
/// passphrase by whoever holds the device: its contents.
pub fn kept_key_store(
    device: &keyhole_client::Owner,
    dir: &std::path::Path,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Vec<u8> {
    let store = dir.join(format!("{}.keys", device.device_id()));
    device
        .save_key_store(
            &store,
            "device passphrase",
            keyhole_core::recovery::KdfParams::MINIMUM,
            rng,
        )
        .unwrap();
    keyhole_core::keystore::KeyStore::decode(&std::fs::read(&store).unwrap())
        .unwrap()
        .open(b"device passphrase")
        .unwrap()
        .to_vec()
}

/// A password holder's credential, making raw API calls.
pub struct Intruder {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Intruder {
    /// A password login for `device`: its status and body.
    pub async fn try_log_in(
        url: &str,
        user: &str,
        password: &str,
        device: keyhole_core::DeviceId,
    ) -> (reqwest::StatusCode, String) {
        let resp = reqwest::Client::new()
            .post(format!("{url}/v1/login"))
            .json(&serde_json::json!({"username": user, "password": password, "device_id": device.to_string()}))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn log_in(
        url: &str,
        user: &str,
        password: &str,
        device: keyhole_core::DeviceId,
    ) -> Self {
        let (status, body) = Self::try_log_in(url, user, password, device).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        let login: serde_json::Value = serde_json::from_str(&body).unwrap();
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            token: login["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> (reqwest::StatusCode, String) {
        self.send_with(method, path, body, None).await
    }

    /// Sends `method path body` with this credential and, given one, a device proof header.
    async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        proof: Option<String>,
    ) -> (reqwest::StatusCode, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if body.starts_with(b"{") {
            request = request.header("content-type", "application/json");
        }
        if let Some(proof) = proof {
            request = request.header(keyhole_core::device_proof::HEADER, proof);
        }
        let resp = request.body(body).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: Vec<u8>) -> (reqwest::StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }
    /// A challenge for this credential's device (an enrolled device's credential only).
    pub async fn challenge(&self) -> keyhole_core::device_proof::Challenge {
        let (status, body) = self
            .post_json("/v1/challenges", &serde_json::Value::Null)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        keyhole_core::device_proof::Challenge::from_hex(v["challenge"].as_str().unwrap()).unwrap()
    }

    /// Sends `method path body` with this credential and a proof signed by `prover` (a device
    /// id and signing key) under a fresh challenge.
    pub async fn send_proven(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        prover: (
            keyhole_core::DeviceId,
            &keyhole_core::keys::DeviceSigningKey,
        ),
    ) -> (reqwest::StatusCode, String) {
        let request = keyhole_core::device_proof::Request {
            method: method.as_str(),
            target: path,
            body: &body,
        };
        let proof = keyhole_core::device_proof::DeviceProof::sign(
            self.challenge().await,
            prover.0,
            prover.1,
            &request,
        )
        .unwrap();
        self.send_with(method, path, body, Some(proof.encode()))
            .await
    }
}

/// The device signing key in `contents`, a key store as a device keeps it (`kept_key_store`).
pub fn kept_signing_key(contents: &[u8]) -> keyhole_core::keys::DeviceSigningKey {
    let contents: serde_json::Value = serde_json::from_slice(contents).unwrap();
    keyhole_core::keys::DeviceSigningKey::from_seed(
        &hex::decode(contents["device_signing_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

/// A credential for device `id` (listed by the account's roster with signing key `key`),
/// issued against its own key: what an enrolled device acts with.
pub async fn device_login(
    url: &str,
    account: &keyhole_core::AccountPublicKey,
    id: keyhole_core::DeviceId,
    key: &keyhole_core::keys::DeviceSigningKey,
) -> String {
    let http = reqwest::Client::new();
    let who = serde_json::to_vec(&serde_json::json!({
        "account": hex::encode(account.to_bytes()),
        "device_id": id.to_string(),
    }))
    .unwrap();
    let issued: serde_json::Value = http
        .post(format!("{url}/v1/login/challenge"))
        .header("content-type", "application/json")
        .body(who.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let challenge =
        keyhole_core::device_proof::Challenge::from_hex(issued["challenge"].as_str().unwrap())
            .unwrap();
    let request = keyhole_core::device_proof::Request {
        method: "POST",
        target: "/v1/login/device",
        body: &who,
    };
    let proof =
        keyhole_core::device_proof::DeviceProof::sign(challenge, id, key, &request).unwrap();
    let login: serde_json::Value = http
        .post(format!("{url}/v1/login/device"))
        .header(keyhole_core::device_proof::HEADER, proof.encode())
        .body(who)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_owned()
}
