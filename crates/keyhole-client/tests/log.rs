//! The account log against a hostile server: two devices of one account, the second behind a
//! proxy that keeps a second history for it. A server that lets both devices write the same log
//! entry (a fork), or hides an entry from one device, is found by comparing the devices' signed
//! heads, and each device says so (through the library, the viewer and the command line).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::sync::{Arc, Mutex};

use keyhole_client::{ClientError, JoinRequest, Owner};
use keyhole_core::log::ENTRY_LEN;
use keyhole_core::recovery::KdfParams;
use keyhole_core::roster::DeviceEntry;
use keyhole_core::{DeviceId, DeviceKeys, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use keyhole_testkit::hostile::HostileProxy;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::{Method, StatusCode};

const NOW: Timestamp = Timestamp(1_795_735_205_000);
const PASSWORD: &str = "correct horse battery";

fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        pin: None,
        allow_plain_http: false,
    }
}

/// The sequence number of an encoded log entry (PROTOCOL.md 15.1: bytes 37..45).
fn sequence(entry: &[u8]) -> u64 {
    u64::from_be_bytes(entry[37..45].try_into().unwrap())
}

/// The `after` parameter of a `GET /v1/log` path.
fn after(path: &str) -> u64 {
    path.split_once("after=").map_or(0, |(_, rest)| {
        rest.split('&').next().unwrap().parse().unwrap()
    })
}

/// A device the owner adds by hand (its keys exchanged out of band).
fn device(name: &str, rng: &mut ChaCha20Rng) -> DeviceEntry {
    let keys = DeviceKeys::generate(rng);
    DeviceEntry {
        id: DeviceId::random(rng),
        name: name.into(),
        added_at: NOW,
        signing_key: keys.signing.public(),
        hpke_key: keys.hpke.public(),
    }
}

/// Ana's account: her phone on the server directly, her tablet (joined by approval) through
/// `tablet_view`.
async fn phone_and_tablet(server: &TestServer, tablet_view: &HostileProxy) -> (Owner, Owner) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut phone, _) = Owner::create(
        &endpoint(&server.url),
        "ana",
        PASSWORD,
        "phone",
        KdfParams::MINIMUM,
        NOW,
        &mut rng,
    )
    .await
    .unwrap();
    let mut tablet_rng = ChaCha20Rng::seed_from_u64(2);
    let mut joining = JoinRequest::start(
        &endpoint(&tablet_view.url),
        "ana",
        PASSWORD,
        "tablet",
        &mut tablet_rng,
    )
    .await
    .unwrap();
    let pending = phone.pending_enrollments().await.unwrap();
    let (code, approval) = tokio::join!(
        joining.exchange(),
        phone.answer_enrollment(&pending[0], &mut rng)
    );
    assert_eq!(code.unwrap(), approval.as_ref().unwrap().code());
    let (joined, approved) = tokio::join!(
        joining.finish(&mut tablet_rng),
        phone.approve_enrollment(approval.unwrap(), NOW, &mut rng)
    );
    approved.unwrap();
    let mut tablet = joined.unwrap();
    // Both verify the same history and say so.
    tablet.sync().await.unwrap();
    phone.sync().await.unwrap();
    tablet.sync().await.unwrap();
    (phone, tablet)
}

const PASSPHRASE: &str = "a long passphrase";

/// A running `keyhole ui`, stopped when dropped.
struct Viewer(std::process::Child);

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Requests to a viewer, with the cookie its link sets.
struct ViewerApi {
    origin: String,
    cookie: String,
    http: reqwest::Client,
}

impl ViewerApi {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.origin))
            .header("cookie", &self.cookie)
    }
}

/// `keyhole ui` on `store`, signed in through the link it prints.
async fn viewer(store: &std::path::Path) -> (Viewer, ViewerApi) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyhole"))
        .arg("--store")
        .arg(store)
        .args(["ui", "--no-open"])
        .env("KEYHOLE_PASSPHRASE", PASSPHRASE)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Viewer(child);
    let first = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || lines.for_each(drop));
        first
    })
    .await
    .unwrap();
    let link = first.strip_prefix("keyhole ui: ").unwrap().to_owned();
    let url = reqwest::Url::parse(&link).unwrap();
    let (name, port) = (url.host_str().unwrap(), url.port().unwrap());
    let origin = format!("http://{name}:{port}");
    // The viewer's own name under .localhost, as browsers resolve it.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let entry = http.get(&link).send().await.unwrap();
    let cookie = entry.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (
        running,
        ViewerApi {
            origin,
            cookie,
            http,
        },
    )
}

/// The whole log as the server holds it.
async fn log(owner: &Owner) -> Vec<u8> {
    owner.api().get_bytes("/v1/log").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_forks_the_log_is_found_by_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let tablet_view = HostileProxy::start(&server.url).await;
    let (mut phone, mut tablet) = phone_and_tablet(&server, &tablet_view).await;
    let mut rng = ChaCha20Rng::seed_from_u64(3);

    // The phone's viewer runs (it syncs as it starts, before any fork).
    let store = dir.path().join("phone.keys");
    phone
        .save_key_store(&store, PASSPHRASE, KdfParams::MINIMUM, &mut rng)
        .unwrap();
    let (_viewer, viewer_api) = viewer(&store).await;

    // From here the server keeps a second history for the tablet: the entries both saw, then
    // whatever the tablet appends, which it takes without storing.
    let shared = log(&phone).await;
    let fork_at = (shared.len() / ENTRY_LEN) as u64 + 1;
    let second: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = second.clone();
    tablet_view.answer(move |method, path, body| {
        let path_only = path.split('?').next().unwrap();
        match (method, path_only) {
            (&Method::POST, "/v1/log") => {
                kept.lock().unwrap().push(body[..ENTRY_LEN].to_vec());
                Some((StatusCode::CREATED, Vec::new()))
            }
            (&Method::GET, "/v1/log") => {
                let from = after(path);
                let mut entries: Vec<u8> = shared
                    .chunks(ENTRY_LEN)
                    .chain(kept.lock().unwrap().iter().map(Vec::as_slice))
                    .filter(|e| sequence(e) > from)
                    .flatten()
                    .copied()
                    .collect();
                entries.truncate(1000 * ENTRY_LEN);
                Some((StatusCode::OK, entries))
            }
            _ => None,
        }
    });

    // Each device adds a different device: both write entry `fork_at`.
    phone
        .add_device(device("laptop", &mut rng), NOW, &mut rng)
        .await
        .unwrap();
    tablet
        .add_device(device("watch", &mut rng), NOW, &mut rng)
        .await
        .unwrap();
    assert_eq!(
        second.lock().unwrap().len(),
        1,
        "the tablet's entry was kept apart"
    );
    assert_eq!(sequence(&second.lock().unwrap()[0]), fork_at);
    assert_eq!(
        sequence(&log(&phone).await[(fork_at as usize - 1) * ENTRY_LEN..]),
        fork_at
    );

    // The tablet posts its head; the phone, comparing, finds the fork.
    tablet.sync().await.unwrap();
    let found = phone.sync().await.unwrap_err();
    assert!(
        matches!(&found, ClientError::Forked(m)
            if m.contains("\"tablet\"") && m.contains(&format!("entry {fork_at}"))),
        "{found}"
    );
    assert!(found.to_string().contains("different histories"), "{found}");
    // So does the viewer, when asked to check again (the page shows the error as its alert)...
    let checked = viewer_api
        .get("/api/timeline?refresh=true")
        .send()
        .await
        .unwrap();
    assert!(!checked.status().is_success());
    let said: serde_json::Value = checked.json().await.unwrap();
    let said = said["error"].as_str().unwrap();
    assert!(
        said.contains("different histories") && said.contains("\"tablet\""),
        "{said}"
    );
    // ...and the command line, which fails.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyhole"))
            .arg("--store")
            .arg(&store)
            .arg("devices")
            .env("KEYHOLE_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("different histories") && said.contains("\"tablet\""),
        "{said}"
    );
    // And the tablet, once the phone's head is posted, finds it too.
    let found = tablet.sync().await.unwrap_err();
    assert!(
        matches!(&found, ClientError::Forked(m) if m.contains("\"phone\"")),
        "{found}"
    );
    assert!(tablet_view.applied() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_entry_hidden_from_one_device_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let tablet_view = HostileProxy::start(&server.url).await;
    let (mut phone, mut tablet) = phone_and_tablet(&server, &tablet_view).await;
    let mut rng = ChaCha20Rng::seed_from_u64(4);

    // The phone adds a laptop; the server shows the tablet the log without that entry.
    let seen = (log(&phone).await.len() / ENTRY_LEN) as u64;
    phone
        .add_device(device("laptop", &mut rng), NOW, &mut rng)
        .await
        .unwrap();
    phone.sync().await.unwrap();
    tablet_view.rewrite(
        |m, p| *m == Method::GET && p.starts_with("/v1/log?"),
        move |body| {
            let kept: Vec<u8> = body
                .chunks(ENTRY_LEN)
                .filter(|e| sequence(e) <= seen)
                .flatten()
                .copied()
                .collect();
            *body = kept;
        },
    );
    let found = tablet.sync().await.unwrap_err();
    assert!(
        matches!(&found, ClientError::Untrusted(m)
            if m.contains("entries the server does not show this device")),
        "{found}"
    );
    assert!(tablet_view.applied() >= 1);
    assert_eq!(
        tablet.devices().len(),
        2,
        "the tablet did not take the hidden roster"
    );

    // Shown the whole log again, the tablet takes the laptop's roster.
    tablet_view.clear();
    tablet.sync().await.unwrap();
    assert_eq!(tablet.devices().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_reports_are_withheld_shows_as_not_heard_from() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let tablet_view = HostileProxy::start(&server.url).await;
    let (mut phone, mut tablet) = phone_and_tablet(&server, &tablet_view).await;
    let phone_id = phone.device_id();
    let tablet_id = tablet.device_id();
    // Each knows when the other last reported the history it verified.
    phone.sync().await.unwrap();
    let heard = phone.devices_heard();
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].0, tablet_id);
    assert!(heard[0].1.is_some());

    // A server that keeps the phone's reports from the tablet: the tablet cannot compare, and
    // shows the phone as not heard from, for its user to notice.
    tablet_view.rewrite(|m, p| *m == Method::GET && p == "/v1/log/heads", Vec::clear);
    tablet.sync().await.unwrap();
    assert_eq!(tablet.devices_heard(), vec![(phone_id, None)]);
    assert!(tablet_view.applied() >= 1);
}
