//! Adding a device by approval (PROTOCOL section 14): the joining device's side
//! ([`JoinRequest`]) and the enrolled device's side ([`Owner::pending_enrollments`],
//! [`Owner::answer_enrollment`], [`Owner::approve_enrollment`]).
//!
//! The user compares the same six-digit code on both screens and confirms on each; until both
//! have, nothing is enrolled. Both sides poll the server for the other's message.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyhole_core::enrollment::{
    DeviceGrant, EnrollmentRequest, Joining, NONCE_LEN, ShortCode, Transcript, answer,
};
use keyhole_core::roster::{Roster, SignedRoster};
use keyhole_core::{AccountPublicKey, DeviceId, DeviceKeys, Timestamp};
use keyhole_http::Endpoint;
use rand_core::CryptoRngCore;
use serde::Deserialize;

use crate::ClientError;
use crate::api::Api;
use crate::owner::{Owner, log_in, start_log, untrusted};

/// How often a waiting device asks the server for the other device's message.
const POLL: Duration = Duration::from_millis(250);
/// The longest a device waits for the other, whatever the server says: a little more than the
/// server's ten-minute expiry.
const MAX_WAIT: Duration = Duration::from_secs(11 * 60);

#[derive(Deserialize)]
struct Created {
    enrollment_id: String,
}

/// An enrollment as the server relays it (`GET /v1/enrollments/{id}`).
#[derive(Deserialize)]
struct Relayed {
    enrollment_id: String,
    request: String,
    answer: Option<String>,
    reveal: Option<String>,
    grant: Option<String>,
    closed: bool,
    expired: bool,
}

impl Relayed {
    fn request(&self) -> Result<EnrollmentRequest, ClientError> {
        EnrollmentRequest::decode(&decode64(&self.request)?).map_err(untrusted)
    }
}

fn decode64(s: &str) -> Result<Vec<u8>, ClientError> {
    STANDARD.decode(s).map_err(untrusted)
}

fn nonce(s: &str) -> Result<[u8; NONCE_LEN], ClientError> {
    decode64(s)?
        .try_into()
        .map_err(|_| untrusted("a relayed nonce has the wrong length"))
}

/// Which message a device waits for.
#[derive(Clone, Copy)]
enum Awaited {
    Answer,
    Reveal,
    Grant,
}

/// Polls the enrollment until `awaited` has arrived; an enrollment the other device cancelled
/// or that expired is an error saying so.
async fn wait_for(api: &Api, id: &str, awaited: Awaited) -> Result<(Relayed, String), ClientError> {
    let deadline = std::time::Instant::now() + MAX_WAIT;
    loop {
        let relayed: Relayed = api.get_json(&format!("/v1/enrollments/{id}")).await?;
        let field = match awaited {
            Awaited::Answer => &relayed.answer,
            Awaited::Reveal => &relayed.reveal,
            Awaited::Grant => &relayed.grant,
        };
        if let Some(value) = field.clone() {
            return Ok((relayed, value));
        }
        if relayed.closed {
            return Err(ClientError::Enrollment(
                "the other device cancelled the enrollment".into(),
            ));
        }
        if relayed.expired || std::time::Instant::now() > deadline {
            return Err(ClientError::Enrollment(
                "the enrollment expired before the other device answered; start again".into(),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A new device asking to join an account: logged in with the password, its keys made, its
/// request sent. Show [`JoinRequest::exchange`]'s code, and once the user confirms it matches
/// the approving device's, [`JoinRequest::finish`].
#[derive(Debug)]
pub struct JoinRequest {
    endpoint: Endpoint,
    api: Api,
    device_id: DeviceId,
    device: DeviceKeys,
    joining: Joining,
    account: AccountPublicKey,
    enrollment_id: String,
    transcript: Option<Transcript>,
}

impl JoinRequest {
    /// Logs in, reads the account key from the account's roster, and asks to be enrolled as
    /// `device_name`.
    ///
    /// # Errors
    /// A wrong password, a roster that does not verify under the key it names, server errors.
    pub async fn start(
        endpoint: &Endpoint,
        username: &str,
        password: &str,
        device_name: &str,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, ClientError> {
        let device_id = DeviceId::random(rng);
        let api = log_in(endpoint, username, password, device_id).await?;
        // Which account key this is, the code comparison settles: a roster of another account
        // gives a different code on the two screens.
        // The account key as the server shows it; the code compared on both screens covers it,
        // so a key the server substitutes gives codes that differ.
        let first = SignedRoster::decode(&api.get_bytes("/v1/roster?version=1").await?)
            .map_err(untrusted)?;
        let account = first.unverified_body().account;
        first.verify_first(&account).map_err(untrusted)?;
        let device = DeviceKeys::generate(rng);
        let joining =
            Joining::new(account, device_id, device_name, &device, rng).map_err(untrusted)?;
        let created: Created = api
            .post_bytes("/v1/enrollments", joining.request().encode())
            .await?;
        Ok(Self {
            endpoint: endpoint.clone(),
            api,
            device_id,
            device,
            joining,
            account,
            enrollment_id: created.enrollment_id,
            transcript: None,
        })
    }

    /// This device's id.
    #[must_use]
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// Waits for an enrolled device to answer, reveals this device's nonce, and returns the code
    /// to show.
    ///
    /// # Errors
    /// The other device cancelled, the enrollment expired, or server errors.
    pub async fn exchange(&mut self) -> Result<ShortCode, ClientError> {
        let (_, answer) = wait_for(&self.api, &self.enrollment_id, Awaited::Answer).await?;
        let (reveal, transcript) = self.joining.reveal(&nonce(&answer)?);
        self.api
            .put_bytes(
                &format!("/v1/enrollments/{}/reveal", self.enrollment_id),
                reveal.to_vec(),
            )
            .await?;
        self.transcript = Some(transcript);
        Ok(transcript.code())
    }

    /// After the user confirmed the codes match: waits for the grant, takes the account key
    /// only if it is the one the compared request named, accepts the roster that enrolls this
    /// device, and opens its key packages (the whole history).
    ///
    /// # Errors
    /// [`ClientError::Untrusted`] for a forged grant or roster; the other device cancelled; the
    /// enrollment expired; server errors.
    pub async fn finish(self, rng: &mut impl CryptoRngCore) -> Result<Owner, ClientError> {
        let transcript = self
            .transcript
            .ok_or_else(|| ClientError::Enrollment("compare the code first".into()))?;
        let (_, grant) = wait_for(&self.api, &self.enrollment_id, Awaited::Grant).await?;
        let grant = DeviceGrant::decode(&decode64(&grant)?).map_err(untrusted)?;
        let version = grant
            .open(&self.device.hpke, &transcript)
            .map_err(untrusted)?;
        let log = start_log(&self.api, &self.account).await?;
        let mut owner = Owner {
            endpoint: self.endpoint,
            api: self.api,
            device: self.device,
            device_id: self.device_id,
            cameras: BTreeMap::new(),
            log,
            sharing: crate::share::Sharing::default(),
            heard: BTreeMap::new(),
            damaged_packages: Vec::new(),
        };
        // The account log, followed from entry 1 under the compared account key, must list
        // this device with its keys by the roster version the grant names.
        owner.refresh().await?;
        let listed = owner.roster().body().version >= version
            && owner.roster().device(&owner.device_id).is_some_and(|d| {
                d.signing_key == owner.device.signing.public()
                    && d.hpke_key == owner.device.hpke.public()
            });
        if !listed {
            return Err(untrusted(
                "the account's roster does not list this device with its keys",
            ));
        }
        owner
            .api
            .delete(&format!("/v1/enrollments/{}", self.enrollment_id))
            .await?;
        // Listed: the password's credential gives way to one issued against its own key.
        owner.log_in_with_device_key().await?;
        owner
            .adopt_key_packages("/v1/key-packages", None, rng)
            .await?;
        Ok(owner)
    }

    /// Withdraws the request (the user saw different codes, or gave up).
    ///
    /// # Errors
    /// Server errors.
    pub async fn cancel(self) -> Result<(), ClientError> {
        self.api
            .delete(&format!("/v1/enrollments/{}", self.enrollment_id))
            .await?;
        Ok(())
    }
}

/// The roster versions at `path` (an account's: a member's, or a shared camera's owner's) after
/// `held`, each accepted as the successor of the one before — from version 1, which `account`
/// must have signed, when none is held. Oldest first; empty when nothing is newer.
pub(crate) async fn follow_rosters(
    api: &Api,
    path: &str,
    account: &AccountPublicKey,
    held: Option<&Roster>,
) -> Result<Vec<Roster>, ClientError> {
    let latest = SignedRoster::decode(&api.get_bytes(path).await?).map_err(untrusted)?;
    let newest = latest.unverified_body().version;
    let mut accepted: Vec<Roster> = Vec::new();
    let from = held.map_or(1, |r| r.body().version.saturating_add(1));
    for version in from..newest {
        let bytes = api.get_bytes(&format!("{path}?version={version}")).await?;
        let offered = SignedRoster::decode(&bytes).map_err(untrusted)?;
        let next = match accepted.last().or(held) {
            Some(trusted) => trusted.accept(offered),
            None => offered.verify_first(account),
        }
        .map_err(untrusted)?;
        accepted.push(next);
    }
    let next = match accepted.last().or(held) {
        Some(trusted) => trusted.accept(latest),
        None => latest.verify_first(account),
    }
    .map_err(untrusted)?;
    if held.is_none_or(|h| h.body().version < next.body().version) {
        accepted.push(next);
    }
    Ok(accepted)
}

/// A device waiting to be approved, as an enrolled device sees it.
#[derive(Debug, Clone)]
pub struct PendingEnrollment {
    /// The server's id for this enrollment.
    pub enrollment_id: String,
    /// What the joining device sent: its id, name and keys.
    pub request: EnrollmentRequest,
}

/// An enrollment answered by this device, with the code to compare.
#[derive(Debug)]
pub struct Approval {
    enrollment_id: String,
    request: EnrollmentRequest,
    transcript: Transcript,
}

impl Approval {
    /// The server's id for the enrollment this answers.
    #[must_use]
    pub fn enrollment_id(&self) -> &str {
        &self.enrollment_id
    }

    /// The code to show; the user compares it with the joining device's.
    #[must_use]
    pub fn code(&self) -> ShortCode {
        self.transcript.code()
    }

    /// The joining device's id and name.
    #[must_use]
    pub fn device(&self) -> (DeviceId, &str) {
        (self.request.device_id, &self.request.name)
    }
}

impl Owner {
    /// Devices waiting to join this account. Left out: requests from this device itself, and
    /// devices already granted or enrolled (their enrollment stays open until the joining device
    /// collects the grant).
    ///
    /// # Errors
    /// Server errors, or a request that does not parse.
    pub async fn pending_enrollments(&self) -> Result<Vec<PendingEnrollment>, ClientError> {
        let relayed: Vec<Relayed> = self.api.get_json("/v1/enrollments").await?;
        let mut pending = Vec::with_capacity(relayed.len());
        for r in relayed.into_iter().filter(|r| r.grant.is_none()) {
            let request = r.request()?;
            let enrolled = self.roster().device(&request.device_id).is_some();
            if request.device_id != self.device_id && !enrolled {
                pending.push(PendingEnrollment {
                    enrollment_id: r.enrollment_id,
                    request,
                });
            }
        }
        Ok(pending)
    }

    /// Answers a waiting device: refuses a request naming another account key (the server
    /// showed the joining device another account) or an enrolled device id, sends this device's
    /// nonce, waits for the joining device's, and checks it against its commitment.
    ///
    /// # Errors
    /// [`ClientError::Untrusted`] for the refusals above or a nonce that does not open the
    /// commitment; the joining device cancelled; the enrollment expired; server errors.
    pub async fn answer_enrollment(
        &self,
        pending: &PendingEnrollment,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Approval, ClientError> {
        let request = &pending.request;
        if request.account != *self.account() {
            return Err(untrusted(
                "the joining device was shown another account's key (the server substituted it)",
            ));
        }
        if self.roster().device(&request.device_id).is_some() {
            return Err(untrusted("that device id is already enrolled"));
        }
        let id = &pending.enrollment_id;
        let n_a = answer(rng);
        self.api
            .put_bytes(&format!("/v1/enrollments/{id}/answer"), n_a.to_vec())
            .await?;
        let (relayed, reveal) = wait_for(&self.api, id, Awaited::Reveal).await?;
        // The request is the one this device answered, not whatever the server relays now.
        if relayed.request()? != *request {
            return Err(untrusted("the server changed the enrollment request"));
        }
        let transcript = request
            .check_reveal(&n_a, &nonce(&reveal)?)
            .map_err(untrusted)?;
        Ok(Approval {
            enrollment_id: id.clone(),
            request: request.clone(),
            transcript,
        })
    }

    /// After the user confirmed the codes match: enrolls the device (a new roster listing it,
    /// signed by this device, and key packages for every viewing key this device holds) and
    /// tells it which roster version lists it. No account key travels: no device holds one.
    ///
    /// # Errors
    /// The joining device cancelled first; server errors.
    pub async fn approve_enrollment(
        &mut self,
        approval: Approval,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let id = &approval.enrollment_id;
        let relayed: Relayed = self.api.get_json(&format!("/v1/enrollments/{id}")).await?;
        if relayed.closed {
            return Err(ClientError::Enrollment(
                "the joining device cancelled the enrollment".into(),
            ));
        }
        self.add_device(approval.request.entry(now), now, rng)
            .await?;
        let grant = DeviceGrant::seal(
            self.roster().body().version,
            &approval.request,
            &approval.transcript,
            rng,
        )
        .map_err(untrusted)?;
        self.api
            .put_bytes(&format!("/v1/enrollments/{id}/grant"), grant.encode())
            .await?;
        Ok(())
    }

    /// Refuses a waiting device (the codes differed, or the user does not know it).
    ///
    /// # Errors
    /// Server errors.
    pub async fn reject_enrollment(&self, enrollment_id: &str) -> Result<(), ClientError> {
        self.api
            .delete(&format!("/v1/enrollments/{enrollment_id}"))
            .await?;
        Ok(())
    }
}
