//! Adding a device by approval, against the real server: the joining and the approving device
//! show the same code, the new device is listed by a roster the approving device signs and gets
//! the whole history (no account key: no device holds one); a request for another account, a
//! grant the password holder seals, and a cancelled request enroll nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::core::enrollment::{DeviceGrant, Joining, answer};
use keyhole_client::core::recovery::KdfParams;
use keyhole_client::core::report::Checked;
use keyhole_client::core::{AccountKey, DeviceId, DeviceKeys, Timestamp};
use keyhole_client::{ClientError, JoinRequest, Owner};
use keyhole_http::Endpoint;
use keyhole_server::store::EnrollmentStep;
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

const NOW: Timestamp = Timestamp(1_795_735_205_000);
const PASSWORD: &str = "correct horse battery";

fn endpoint(server: &TestServer) -> Endpoint {
    Endpoint {
        url: server.url.clone(),
        pin: None,
        allow_plain_http: false,
    }
}

async fn owner(server: &TestServer, rng: &mut ChaCha20Rng) -> Owner {
    Owner::create(
        &endpoint(server),
        "ana",
        PASSWORD,
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap()
    .0
}

/// Someone holding the account password (or the server itself): a device credential, not
/// enrolled, making raw API calls.
struct Intruder {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Intruder {
    async fn log_in(server: &TestServer, device: DeviceId) -> Self {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(server.url("/v1/login"))
            .json(
                &json!({"username": "ana", "password": PASSWORD, "device_id": device.to_string()}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http,
            url: server.url.clone(),
            token: login["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> (reqwest::StatusCode, String) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> reqwest::Response {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_joins_by_approval_and_sees_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(21);
    let mut phone = owner(&server, rng).await;
    let code = phone.start_pairing(&server.url, None, rng).await.unwrap();
    let mut camera = Agent::pair(
        &code.to_text(),
        &dir.path().join("camera"),
        AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    let camera_id = phone
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    let clip = camera
        .record_clip(b"before the tablet", NOW, rng)
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();
    phone.sync_camera(&camera_id).await.unwrap();

    let mut tablet_rng = ChaCha20Rng::seed_from_u64(22);
    let mut joining = JoinRequest::start(
        &endpoint(&server),
        "ana",
        PASSWORD,
        "tablet",
        &mut tablet_rng,
    )
    .await
    .unwrap();
    let pending = phone.pending_enrollments().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].request.name, "tablet");
    assert_eq!(pending[0].request.device_id, joining.device_id());

    // Both screens show the same code.
    let (tablet_code, approval) = tokio::join!(
        joining.exchange(),
        phone.answer_enrollment(&pending[0], rng)
    );
    let (tablet_code, approval) = (tablet_code.unwrap(), approval.unwrap());
    assert_eq!(tablet_code, approval.code());
    assert_eq!(approval.device().1, "tablet");

    phone.approve_enrollment(approval, NOW, rng).await.unwrap();
    // Granted, though the tablet has not collected the grant yet: no longer waiting to join.
    assert!(phone.pending_enrollments().await.unwrap().is_empty());
    let mut tablet = joining.finish(&mut tablet_rng).await.unwrap();
    assert_eq!(tablet.account_code(), phone.account_code());
    assert_eq!(tablet.devices().len(), 2);
    assert!(phone.pending_enrollments().await.unwrap().is_empty());

    // The history opens on the tablet, and so does what the camera records next.
    let mut plain = Vec::new();
    let checked = tablet.export(&camera_id, &clip, &mut plain).await.unwrap();
    assert!(matches!(checked, Checked::Verified(_)));
    assert_eq!(plain, b"before the tablet");
    let next = camera.record_clip(b"after", NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    tablet.sync_camera(&camera_id).await.unwrap();
    plain.clear();
    tablet.export(&camera_id, &next, &mut plain).await.unwrap();
    assert_eq!(plain, b"after");

    // The tablet is a full device: it can revoke the phone.
    tablet
        .revoke_device(phone.device_id(), NOW, &mut tablet_rng)
        .await
        .unwrap();
    assert_eq!(tablet.devices().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_requests_and_grants_and_cancelled_requests_enroll_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(23);
    let phone = owner(&server, rng).await;

    // A request that names another account's key (the joining device was shown a roster the
    // server made up) is refused before anything is sent.
    let stranger = DeviceId::random(rng);
    let intruder = Intruder::log_in(&server, stranger).await;
    let fake_account = AccountKey::generate(rng);
    let request = Joining::new(
        fake_account.public(),
        stranger,
        "not yours",
        &DeviceKeys::generate(rng),
        rng,
    )
    .unwrap()
    .request()
    .encode();
    let created: Value = intruder
        .send(reqwest::Method::POST, "/v1/enrollments", request)
        .await
        .json()
        .await
        .unwrap();
    let pending = phone.pending_enrollments().await.unwrap();
    assert_eq!(pending.len(), 1);
    let refused = phone.answer_enrollment(&pending[0], rng).await.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("another account")),
        "{refused}"
    );
    intruder
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/v1/enrollments/{}",
                created["enrollment_id"].as_str().unwrap()
            ),
            vec![],
        )
        .await;

    // The password holder cannot play the approving device: its credential, for a device no
    // roster lists, may neither list the waiting requests nor answer one.
    let mut tablet_rng = ChaCha20Rng::seed_from_u64(24);
    let mut joining = JoinRequest::start(
        &endpoint(&server),
        "ana",
        PASSWORD,
        "tablet",
        &mut tablet_rng,
    )
    .await
    .unwrap();
    let (status, message) = intruder
        .try_send(reqwest::Method::GET, "/v1/enrollments", vec![])
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{message}");
    assert!(message.contains("not_enrolled"), "{message}");
    let waiting = phone.pending_enrollments().await.unwrap();
    let tablet_request = waiting
        .iter()
        .find(|p| p.request.name == "tablet")
        .unwrap()
        .clone();
    let id = tablet_request.enrollment_id.clone();
    let request = tablet_request.request;
    let n_a = answer(rng);
    let (status, message) = intruder
        .try_send(
            reqwest::Method::PUT,
            &format!("/v1/enrollments/{id}/answer"),
            n_a.to_vec(),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{message}");

    // The server itself answers and seals a grant naming the current roster: the joining
    // device, following the log from the account key it compared, is listed by no roster, so
    // it is not enrolled.
    let backdoor = server.backdoor().await;
    let account = backdoor
        .meta
        .account_by_username("ana")
        .await
        .unwrap()
        .unwrap()
        .0;
    let enrollment = hex::decode(&id).unwrap().try_into().unwrap();
    backdoor
        .meta
        .set_enrollment_step(&account, &enrollment, EnrollmentStep::Answer, &n_a, 0)
        .await
        .unwrap();
    let code = joining.exchange().await.unwrap();
    let relayed = backdoor
        .meta
        .enrollment(&account, &enrollment)
        .await
        .unwrap()
        .unwrap();
    let reveal: [u8; 32] = relayed.reveal.unwrap().try_into().unwrap();
    let transcript = request.check_reveal(&n_a, &reveal).unwrap();
    assert_eq!(transcript.code(), code, "the server sees every message");
    let forged = DeviceGrant::seal(1, &request, &transcript, rng).unwrap();
    backdoor
        .meta
        .set_enrollment_step(
            &account,
            &enrollment,
            EnrollmentStep::Grant,
            &forged.encode(),
            0,
        )
        .await
        .unwrap();
    let refused = joining.finish(&mut tablet_rng).await.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("does not list this device")),
        "{refused}"
    );

    // The user sees different codes and cancels on the joining device: the approving device,
    // even if its user confirms, enrolls nothing.
    let mut phone = phone;
    let mut joining = JoinRequest::start(
        &endpoint(&server),
        "ana",
        PASSWORD,
        "laptop",
        &mut tablet_rng,
    )
    .await
    .unwrap();
    let pending = phone.pending_enrollments().await.unwrap();
    let laptop = pending
        .iter()
        .find(|p| p.request.name == "laptop")
        .unwrap()
        .clone();
    let (code, approval) = tokio::join!(joining.exchange(), phone.answer_enrollment(&laptop, rng));
    assert_eq!(code.unwrap(), approval.as_ref().unwrap().code());
    joining.cancel().await.unwrap();
    let refused = phone
        .approve_enrollment(approval.unwrap(), NOW, rng)
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Enrollment(_)), "{refused}");
    assert_eq!(phone.devices().len(), 1, "nothing was enrolled");
    server.stop().await;
}
