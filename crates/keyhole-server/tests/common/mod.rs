//! Shared test harness: the server in process or as a real process, an account owner driving
//! it over HTTP, and sealed clips.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::path::Path;

use keyhole_core::device_proof::{Challenge, DeviceProof};
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, PREFIX_LEN, SealParams, Suite, seal_object,
};
use keyhole_core::live::{FRAME_HEADER_LEN, LiveOpener, LiveSealer};
use keyhole_core::log::{
    ENTRY_LEN, EntryBody, EntryKind, LogHash, LogHead, SignedEntry, statement_hash,
};
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::record::{CameraRecordBody, CameraState};
use keyhole_core::roster::{DeviceEntry, Roster, RosterBody, RosterHash, SignedRoster};
use keyhole_core::signer::SignerKey;
use keyhole_core::{
    AccountKey, CameraId, CameraKey, DeviceId, DeviceKeys, HpkeSecretKey, ObjectId, Timestamp,
};
use keyhole_testkit::TestServer;
use keyhole_testkit::process::ServerProcess;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The roster's place in the account log.
pub const ROSTER: (EntryKind, [u8; 16]) = (EntryKind::Roster, [0; 16]);

/// A camera's records' place in the account log.
pub fn camera_record(camera: CameraId) -> (EntryKind, [u8; 16]) {
    (EntryKind::CameraRecord, camera.0)
}

pub struct Server {
    pub base: String,
    running: Running,
}

enum Running {
    InProcess(Box<TestServer>),
    Process(ServerProcess),
}

impl Server {
    /// The server's API in this test process, on 127.0.0.1:0, plain HTTP.
    pub async fn start(dir: &Path) -> Self {
        let server = TestServer::start(dir).await;
        Self {
            base: server.url.clone(),
            running: Running::InProcess(Box::new(server)),
        }
    }

    /// The server's API in this test process with `config` (plain HTTP on 127.0.0.1:0).
    pub async fn start_with(config: keyhole_server::Config) -> Self {
        let server = TestServer::start_with(config, "127.0.0.1:0").await;
        Self {
            base: server.url.clone(),
            running: Running::InProcess(Box::new(server)),
        }
    }

    /// The `keyhole-server` binary as its own process, plain HTTP on 127.0.0.1:0.
    pub fn spawn(dir: &Path) -> Self {
        Self::spawn_on(dir, "127.0.0.1:0")
    }

    /// The binary on `addr` (a restart at the same URL).
    pub fn spawn_on(dir: &Path, addr: &str) -> Self {
        let server = ServerProcess::spawn_on(dir, addr);
        Self {
            base: server.url.clone(),
            running: Running::Process(server),
        }
    }

    /// The binary on `addr` with settings in `KEYHOLE_*` environment variables.
    pub fn spawn_with(dir: &Path, addr: &str, env: &[(String, String)]) -> Self {
        let server = ServerProcess::spawn_with(dir, addr, env);
        Self {
            base: server.url.clone(),
            running: Running::Process(server),
        }
    }

    /// The process id of a spawned server.
    pub fn pid(&self) -> u32 {
        match &self.running {
            Running::Process(server) => server.pid(),
            Running::InProcess(_) => panic!("an in-process server has no process of its own"),
        }
    }

    /// Kills a spawned server with SIGKILL: no shutdown, no flush.
    pub fn kill(self) {
        match self.running {
            Running::Process(server) => server.kill(),
            Running::InProcess(_) => panic!("only a spawned server can be killed"),
        }
    }

    pub async fn stop(self) {
        match self.running {
            Running::InProcess(server) => server.stop().await,
            Running::Process(server) => server.kill(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// One account's owner side: keys, a logged-in device and its HTTP client.
pub struct Owner {
    pub account: AccountKey,
    pub device: DeviceKeys,
    pub device_id: DeviceId,
    pub token: String,
    pub http: reqwest::Client,
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub async fn create_account(s: &Server, http: &reqwest::Client, name: &str) -> reqwest::Response {
    http.post(s.url("/v1/accounts"))
        .json(&json!({"username": name, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
}

pub async fn login(
    s: &Server,
    http: &reqwest::Client,
    name: &str,
    password: &str,
    device: &DeviceId,
) -> reqwest::Response {
    http.post(s.url("/v1/login"))
        .json(&json!({"username": name, "password": password, "device_id": device.to_string()}))
        .send()
        .await
        .unwrap()
}

impl Owner {
    pub async fn new(s: &Server, name: &str, seed: u64) -> Self {
        let http = reqwest::Client::new();
        assert_eq!(
            create_account(s, &http, name).await.status(),
            StatusCode::CREATED
        );
        let mut r = rng(seed);
        let device_id = DeviceId::random(&mut r);
        let resp = login(s, &http, name, "correct horse battery", &device_id).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let token = resp.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut owner = Self {
            account: AccountKey::generate(&mut r),
            device: DeviceKeys::generate(&mut r),
            device_id,
            token,
            http,
        };
        let roster = owner.roster(1, RosterHash([0; 32]));
        assert_eq!(
            owner.append(s, ROSTER, 1, roster.encoded()).await.status(),
            StatusCode::CREATED
        );
        // Listed now: an enrolled device's credential is issued against its own key.
        let login = owner.device_login(s).await;
        assert_eq!(login.status(), StatusCode::OK);
        owner.token = login.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        owner
    }

    /// The account log's newest entry, if any.
    pub async fn log_head(&self, s: &Server) -> Option<LogHead> {
        let all = self.get(s, "/v1/log").await.bytes().await.unwrap();
        let mut head: Option<LogHead> = None;
        for chunk in all.chunks(ENTRY_LEN) {
            let entry = SignedEntry::decode(chunk).unwrap();
            head = Some(match head {
                None => entry.verify_first(&self.account.public()).unwrap(),
                Some(h) => h.accept(entry, &self.first_roster()).unwrap(),
            });
        }
        head
    }

    /// The log entry after the current head recording `statement`, signed.
    pub async fn next_entry(
        &self,
        s: &Server,
        (kind, subject): (EntryKind, [u8; 16]),
        version: u64,
        statement: &[u8],
    ) -> SignedEntry {
        let now = Timestamp(1_795_735_205_000);
        let body = match self.log_head(s).await {
            Some(head) => head.successor(kind, subject, version, statement, now),
            None => EntryBody {
                account: self.account.public(),
                sequence: 1,
                previous: LogHash::default(),
                issued_at: now,
                kind,
                subject,
                version,
                statement: statement_hash(statement),
            },
        };
        let key = if body.sequence == 1 {
            SignerKey::Account(&self.account)
        } else {
            self.signer()
        };
        body.sign(key).unwrap()
    }

    /// This device's signing key, as it signs statements (the account key signs only roster
    /// version 1 and log entry 1, as on a real device).
    pub fn signer(&self) -> SignerKey<'_> {
        SignerKey::Device {
            id: self.device_id,
            key: &self.device.signing,
        }
    }

    /// Roster version 1, verified: it lists this device, which signs everything after it.
    pub fn first_roster(&self) -> Roster {
        self.roster(1, RosterHash([0; 32]))
            .verify_first(&self.account.public())
            .unwrap()
    }

    /// Writes a roster or camera record with the log entry recording it (`POST /v1/log`).
    pub async fn append(
        &self,
        s: &Server,
        subject: (EntryKind, [u8; 16]),
        version: u64,
        statement: &[u8],
    ) -> reqwest::Response {
        let entry = self.next_entry(s, subject, version, statement).await;
        self.post_log(s, entry.encoded(), statement).await
    }

    /// `POST /v1/log` with `entry` followed by `statement`, as given.
    pub async fn post_log(&self, s: &Server, entry: &[u8], statement: &[u8]) -> reqwest::Response {
        self.http
            .post(s.url("/v1/log"))
            .bearer_auth(&self.token)
            .body([entry, statement].concat())
            .send()
            .await
            .unwrap()
    }

    pub fn roster(&self, version: u64, previous: RosterHash) -> SignedRoster {
        RosterBody {
            account: self.account.public(),
            version,
            previous,
            issued_at: Timestamp(1_795_735_205_000),
            recovery_key: HpkeSecretKey::from_bytes(&[0x40; 32]).public(),
            devices: vec![DeviceEntry {
                id: self.device_id,
                name: "phone".into(),
                added_at: Timestamp(1_795_735_205_000),
                signing_key: self.device.signing.public(),
                hpke_key: self.device.hpke.public(),
            }],
        }
        .sign(if version == 1 {
            SignerKey::Account(&self.account)
        } else {
            self.signer()
        })
        .unwrap()
    }

    pub async fn put(&self, s: &Server, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.http
            .put(s.url(path))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A challenge for this device's next proven request.
    pub async fn challenge(&self, s: &Server) -> Challenge {
        let resp = self
            .http
            .post(s.url("/v1/challenges"))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        Challenge::from_hex(v["challenge"].as_str().unwrap()).unwrap()
    }

    /// The proof header of `method path body` under `challenge`.
    pub fn proof(&self, challenge: Challenge, method: &str, path: &str, body: &[u8]) -> String {
        let request = keyhole_core::device_proof::Request {
            method,
            target: path,
            body,
        };
        DeviceProof::sign(challenge, self.device_id, &self.device.signing, &request)
            .unwrap()
            .encode()
    }

    /// Sends `method path` with `body`, proven by this device under a fresh challenge.
    pub async fn proven(
        &self,
        s: &Server,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let proof = self.proof(self.challenge(s).await, method.as_str(), path, &body);
        self.http
            .request(method, s.url(path))
            .bearer_auth(&self.token)
            .header(keyhole_core::device_proof::HEADER, proof)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Logs this device in with its own key; the answer as the server gave it.
    pub async fn device_login(&self, s: &Server) -> reqwest::Response {
        let who = serde_json::to_vec(&json!({
            "account": hex::encode(self.account.public().to_bytes()),
            "device_id": self.device_id.to_string(),
        }))
        .unwrap();
        let resp = self
            .http
            .post(s.url("/v1/login/challenge"))
            .header("content-type", "application/json")
            .body(who.clone())
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::OK {
            return resp;
        }
        let v: Value = resp.json().await.unwrap();
        let challenge = Challenge::from_hex(v["challenge"].as_str().unwrap()).unwrap();
        let proof = self.proof(challenge, "POST", "/v1/login/device", &who);
        self.http
            .post(s.url("/v1/login/device"))
            .header(keyhole_core::device_proof::HEADER, proof)
            .body(who)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, s: &Server, path: &str) -> reqwest::Response {
        self.http
            .get(s.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// Starts watching `camera` live on `s`, waiting up to `wait_secs` for it to start.
    pub fn watch(
        &self,
        s: &Server,
        camera: CameraId,
        wait_secs: u64,
    ) -> tokio::task::JoinHandle<reqwest::Response> {
        let request = self
            .http
            .get(s.url(&format!("/v1/cameras/{camera}/live?wait_secs={wait_secs}")))
            .bearer_auth(&self.token);
        tokio::spawn(async move { request.send().await.unwrap() })
    }

    /// Pairs a camera end to end and signs its record; returns the camera's credential.
    pub async fn pair(
        &self,
        s: &Server,
        seed: u64,
    ) -> (CameraKey, CameraId, String, HpkeSecretKey) {
        let mut r = rng(seed);
        let code = PairingCode::new(&s.base, None, self.account.public(), &mut r).unwrap();
        let resp = self
            .http
            .post(s.url("/v1/pairing-tokens"))
            .bearer_auth(&self.token)
            .json(&json!({"token_id": code.token.to_string(), "ttl_secs": 600}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        // Camera side: reads the code out of band and registers.
        let camera = CameraKey::generate(&mut r);
        let camera_id = CameraId::random(&mut r);
        let proof = RegistrationProof::create(
            &PairingCode::parse(&code.to_text()).unwrap(),
            camera_id,
            &camera,
        );
        let resp = reqwest::Client::new()
            .post(s.url(&format!("/v1/pairing-tokens/{}/register", code.token)))
            .body(proof.encode())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let camera_token = resp.json::<Value>().await.unwrap()["camera_token"]
            .as_str()
            .unwrap()
            .to_owned();
        // Owner side: fetches the proof and checks it with the secret.
        let resp = self
            .get(
                s,
                &format!("/v1/pairing-tokens/{}/registration", code.token),
            )
            .await;
        let fetched = RegistrationProof::decode(&resp.bytes().await.unwrap()).unwrap();
        fetched.verify(&code).unwrap();
        let viewing = HpkeSecretKey::generate(&mut r);
        let record = CameraRecordBody {
            account: self.account.public(),
            camera_id,
            version: 1,
            issued_at: Timestamp(1_795_735_205_000),
            name: "Front door".into(),
            state: CameraState::Active,
            camera_key: fetched.camera_key,
            epoch: 1,
            viewing_key: viewing.public(),
        }
        .sign(self.signer())
        .unwrap();
        let resp = self
            .append(s, camera_record(camera_id), 1, record.encoded())
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        (camera, camera_id, camera_token, viewing)
    }
}

pub fn seal(
    camera: &CameraKey,
    camera_id: CameraId,
    viewing: &HpkeSecretKey,
    seq: u64,
    len: usize,
) -> (ObjectId, Vec<u8>) {
    let mut r = rng(1000 + seq + u64::from(camera_id.0[0]) * 100_000);
    let object_id = ObjectId::random(&mut r);
    let p = SealParams {
        kind: ObjectKind::Clip,
        suite: Suite::Aes256Gcm,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id,
        object_id,
        epoch: 1,
        sequence: seq,
        previous: ObjectDigest::default(),
        captured_at: Timestamp(1_795_735_205_000 + seq),
    };
    let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    (
        object_id,
        seal_object(p, &plain, &viewing.public(), camera, &mut r)
            .unwrap()
            .0,
    )
}

pub async fn upload(
    s: &Server,
    camera_token: &str,
    id: ObjectId,
    body: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::new()
        .put(s.url(&format!("/v1/objects/{id}")))
        .bearer_auth(camera_token)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The peak resident memory of process `pid` so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The embedded storage in `dir`, opened directly (the server stopped): for `check` and for
/// looking behind the API.
pub async fn open_storage(dir: &Path) -> keyhole_server::AppState {
    keyhole_server::AppState::open(keyhole_server::Config {
        data_dir: dir.to_owned(),
        ..keyhole_server::Config::default()
    })
    .await
    .unwrap()
}

/// A camera's objects as the API lists them to `token`.
pub async fn list_objects(s: &Server, token: &str, camera: &str) -> Vec<Value> {
    let resp = reqwest::Client::new()
        .get(s.url(&format!("/v1/cameras/{camera}/objects")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    resp.json::<Value>().await.unwrap()["objects"]
        .as_array()
        .unwrap()
        .clone()
}

/// The `object_id`s of listed objects, in order.
pub fn object_ids(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["object_id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn error_code(resp: reqwest::Response) -> String {
    resp.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Starts a `PUT` whose body the test feeds piece by piece through the returned sender; the
/// request stays open until the sender is dropped.
pub fn open_put(
    url: String,
    token: &str,
) -> (
    tokio::sync::mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    }));
    let token = token.to_owned();
    let task = tokio::spawn(async move {
        reqwest::Client::new()
            .put(url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
    });
    (tx, task)
}

/// Where an upload stands (`GET /v1/objects/{id}/upload`).
pub async fn status(s: &Server, token: &str, id: &str) -> Value {
    let url = s.url(&format!("/v1/objects/{id}/upload"));
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends the rest of an upload from `offset`.
pub async fn put_from(
    s: &Server,
    token: &str,
    id: &str,
    offset: usize,
    body: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::new()
        .put(s.url(&format!("/v1/objects/{id}")))
        .bearer_auth(token)
        .header("Upload-Offset", offset.to_string())
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Polls the upload status until the server holds `want` bytes (a condition, not a delay);
/// returns the last offset seen.
pub async fn wait_for_offset(s: &Server, token: &str, id: &str, want: u64) -> u64 {
    let mut seen = 0;
    for _ in 0..10_000 {
        seen = status(s, token, id).await["offset"].as_u64().unwrap();
        if seen == want {
            break;
        }
        tokio::task::yield_now().await;
    }
    seen
}

/// A sealed live session of five fragments: its prefix, the fragments, and the sealed frames.
pub fn live_session(
    camera: &CameraKey,
    camera_id: CameraId,
    viewing: &HpkeSecretKey,
) -> (Vec<u8>, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut prefix = Vec::new();
    let params = SealParams {
        kind: ObjectKind::Live,
        suite: Suite::ChaCha20Poly1305,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id,
        object_id: ObjectId([4; 16]),
        epoch: 1,
        sequence: 0,
        previous: ObjectDigest::default(),
        captured_at: Timestamp(1_795_735_205_000),
    };
    let mut sealer =
        LiveSealer::new(params, &viewing.public(), camera, &mut rng(5), &mut prefix).unwrap();
    let fragments: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i; 1000 + usize::from(i) * 3000])
        .collect();
    let frames = fragments
        .iter()
        .enumerate()
        .map(|(i, f)| sealer.seal_fragment(f, i == 4).unwrap())
        .collect();
    (prefix, fragments, frames)
}

/// The camera streams a sealed session of five frames to `on` (prefix first, frames only once
/// the viewer has the prefix); checks that `watch`, a viewer waiting for it, gets the prefix and
/// every frame in order, each opening with `viewing`, and that the server relayed all five.
/// Returns the session's prefix.
pub async fn stream_to_viewer(
    on: &Server,
    camera_token: &str,
    camera: &CameraKey,
    camera_id: CameraId,
    viewing: &HpkeSecretKey,
    watch: tokio::task::JoinHandle<reqwest::Response>,
) -> Vec<u8> {
    let (prefix, fragments, frames) = live_session(camera, camera_id, viewing);
    let (tx, publish) = open_put(on.url("/v1/live"), camera_token);
    tx.send(prefix.clone()).await.unwrap();
    let resp = watch.await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let got = read_prefix(&mut stream).await;
    assert_eq!(got, prefix);
    for f in &frames {
        tx.send(f.clone()).await.unwrap();
    }
    drop(tx);
    assert_eq!(open_frames(stream, &got, camera, viewing).await, fragments);
    let published: serde_json::Value = publish.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(published["frames"], 5);
    prefix
}

/// Reads a watched session's prefix.
pub async fn read_prefix(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut got = Vec::new();
    while got.len() < PREFIX_LEN {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    assert_eq!(
        got.len(),
        PREFIX_LEN,
        "no frame arrives before the camera sends one"
    );
    got
}

/// Opens the frames that follow `prefix` until the stream ends; checks none was skipped and the
/// last is marked last; returns their contents.
pub async fn open_frames(
    mut stream: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
    prefix: &[u8],
    camera: &CameraKey,
    viewing: &HpkeSecretKey,
) -> Vec<Vec<u8>> {
    use futures_util::StreamExt;
    let mut viewer = LiveOpener::new(prefix, &camera.public(), viewing).unwrap();
    let mut got = Vec::new();
    let mut opened = Vec::new();
    loop {
        while got.len() >= FRAME_HEADER_LEN {
            let len = u32::from_be_bytes(got[8..12].try_into().unwrap()) as usize;
            if got.len() < FRAME_HEADER_LEN + len {
                break;
            }
            let frame: Vec<u8> = got.drain(..FRAME_HEADER_LEN + len).collect();
            opened.push(viewer.open_frame(&frame).unwrap());
        }
        match stream.next().await {
            Some(chunk) => got.extend_from_slice(&chunk.unwrap()),
            None => break,
        }
    }
    assert!(opened.iter().all(|f| f.skipped == 0), "no frame skipped");
    assert!(
        opened.last().is_some_and(|f| f.last),
        "the last frame is marked"
    );
    opened.into_iter().map(|f| f.data).collect()
}

/// An open announcement channel (`GET /v1/announcements`), read as a device reads it.
pub struct Announcements {
    resp: reqwest::Response,
    reader: keyhole_wire::announce::Reader,
    ready: std::collections::VecDeque<keyhole_wire::announce::Message>,
}

impl Announcements {
    /// Opens `owner`'s channel on `s` and waits for the server to say it is in place.
    pub async fn open(owner: &Owner, s: &Server) -> Self {
        let resp = owner.get(s, "/v1/announcements").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut channel = Self {
            resp,
            reader: keyhole_wire::announce::Reader::new(),
            ready: std::collections::VecDeque::new(),
        };
        assert_eq!(
            channel.next().await,
            Some(keyhole_wire::announce::Message::Ready)
        );
        channel
    }

    /// The next message; `None` if the channel ended. Waits at most 30 s.
    pub async fn next(&mut self) -> Option<keyhole_wire::announce::Message> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Some(m);
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("an announcement within 30 s")
                .ok()??;
            self.ready.extend(self.reader.feed(&chunk).unwrap());
        }
    }
}
