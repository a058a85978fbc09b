//! The device's key store file: the whole state of an enrolled device, sealed under the user's
//! passphrase (PROTOCOL.md §13), written atomically with mode 0600. The contents are a JSON
//! object; every key in it is hex, every signed roster or record base64 of its encoding (the
//! account log: its entries concatenated), and all of it is verified again when the store is
//! opened. It holds the device's own keys and the viewing keys — never the account key, which
//! lives only behind the recovery phrase (PROTOCOL.md §4.3).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use keyhole_core::acceptance::SignedAcceptance;
use keyhole_core::envelope::ObjectDigest;
use keyhole_core::keys::DeviceSigningKey;
use keyhole_core::keystore::KeyStore;
use keyhole_core::record::{CameraRecord, SignedCameraRecord};
use keyhole_core::recovery::KdfParams;
use keyhole_core::report::HighWater;
use keyhole_core::retention::SignedRetentionFloor;
use keyhole_core::roster::{Roster, SignedRoster};
use keyhole_core::share::SignedShare;
use keyhole_core::{AccountPublicKey, CameraId, DeviceId, DeviceKeys, HpkeSecretKey};
use keyhole_http::Endpoint;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::ClientError;
use crate::account_log::AccountLog;
use crate::api::Api;
use crate::heads::HeldHead;
use crate::owner::{CameraKeys, Owner};
use crate::retention::retention_subject;
use crate::share::Sharing;
use crate::sync::camera_subject;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The version of [`Contents`] this code writes and reads.
const VERSION: u32 = 2;

/// The key store's contents, version 2.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    version: u32,
    server_url: String,
    server_pin: Option<String>,
    allow_plain_http: bool,
    device_id: String,
    token: String,
    /// The account's public key (hex): the root the log and every roster are verified from.
    account: String,
    device_signing_key: String,
    device_hpke_key: String,
    cameras: Vec<CameraContents>,
    /// Every account log entry this device verified, concatenated, base64.
    log: String,
    /// Every roster version the log records, oldest first (base64).
    rosters: Vec<String>,
    /// The account's newest acceptance statement (base64), if any.
    #[serde(default)]
    acceptance: Option<String>,

    /// Each shared camera's newest share statement: camera id → statement (base64).
    #[serde(default)]
    shares: BTreeMap<String, String>,
    /// The roster chains of the other accounts this device follows (members, owners): account
    /// key (hex) → every version, oldest first (base64).
    #[serde(default)]
    rosters_of: BTreeMap<String, Vec<String>>,
    /// Per shared camera and epoch, the member devices its key was sealed to, each as
    /// "<account key hex>/<device id>".
    #[serde(default)]
    sealed: BTreeMap<String, BTreeMap<u32, Vec<String>>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraContents {
    camera_id: String,
    records: Vec<String>,
    viewing_keys: BTreeMap<u32, String>,
    /// For a camera shared with this account: its owner's account key (hex).
    #[serde(default)]
    owner: Option<String>,
    /// The newest object this device verified: its sequence and digest (hex).
    #[serde(default)]
    verified: Option<(u64, String)>,
    /// The newest head the camera signed that this device verified (hex).
    #[serde(default)]
    head: Option<String>,
    /// The newest retention floor the log records for it (base64).
    #[serde(default)]
    floor: Option<String>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        self.token.zeroize();
        self.device_signing_key.zeroize();
        self.device_hpke_key.zeroize();
        for camera in &mut self.cameras {
            for key in camera.viewing_keys.values_mut() {
                key.zeroize();
            }
        }
    }
}

fn bad(what: &str) -> ClientError {
    ClientError::Untrusted(format!("the key store's {what} does not verify"))
}

fn hex32(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, out.as_mut()).map_err(|_| bad(what))?;
    Ok(out)
}

/// A roster chain from the first version (signed by `account`), each version accepted as the
/// successor of the one before.
fn roster_chain(
    account: &AccountPublicKey,
    encoded: &[String],
    what: &str,
) -> Result<Vec<Roster>, ClientError> {
    let mut chain: Vec<Roster> = Vec::with_capacity(encoded.len());
    for roster in encoded {
        let signed = B64
            .decode(roster)
            .ok()
            .and_then(|b| SignedRoster::decode(&b).ok())
            .ok_or_else(|| bad(what))?;
        let next = match chain.last() {
            Some(held) => held.accept(signed),
            None => signed.verify_first(account),
        }
        .map_err(|_| bad(what))?;
        chain.push(next);
    }
    Ok(chain)
}

/// The sharing state in `c`, each roster and statement verified again (this account's own
/// statements against the roster in force where `log` records them).
fn sharing(c: &Contents, log: &AccountLog) -> Result<Sharing, ClientError> {
    let mut sharing = Sharing::default();
    if let Some(statement) = &c.acceptance {
        let signed = B64
            .decode(statement)
            .ok()
            .and_then(|b| SignedAcceptance::decode(&b).ok())
            .ok_or_else(|| bad("acceptance"))?;
        let roster = log
            .roster_when(
                (keyhole_core::log::EntryKind::Acceptance, [0; 16]),
                signed.unverified_body().version,
            )
            .ok_or_else(|| bad("acceptance"))?;
        let acceptance = signed.verify(roster).map_err(|_| bad("acceptance"))?;
        sharing.acceptance = Some(acceptance);
    }
    for (account, chain) in &c.rosters_of {
        let key = AccountPublicKey::from_bytes(&*hex32(account, "other account's roster")?)
            .map_err(|_| bad("other account's roster"))?;
        let chain = roster_chain(&key, chain, "other account's roster")?;
        sharing.rosters.insert(key.to_bytes(), chain);
    }
    for (camera, statement) in &c.shares {
        let id: CameraId = camera.parse().map_err(|_| bad("share"))?;
        let signed = B64
            .decode(statement)
            .ok()
            .and_then(|b| SignedShare::decode(&b).ok())
            .ok_or_else(|| bad("share"))?;
        let roster = log
            .roster_when(
                (keyhole_core::log::EntryKind::Share, id.0),
                signed.unverified_body().version,
            )
            .ok_or_else(|| bad("share"))?;
        let share = signed.verify(roster, &id).map_err(|_| bad("share"))?;
        sharing.shares.insert(id, share);
    }
    for (camera, epochs) in &c.sealed {
        let id: CameraId = camera.parse().map_err(|_| bad("sealed list"))?;
        for (epoch, devices) in epochs {
            for device in devices {
                let (account, device) = device.split_once('/').ok_or_else(|| bad("sealed list"))?;
                let device: DeviceId = device.parse().map_err(|_| bad("sealed list"))?;
                let account = *hex32(account, "sealed list")?;
                let listed = sharing.sealed.entry(id).or_default().entry(*epoch);
                listed.or_default().insert((account, device));
            }
        }
    }
    Ok(sharing)
}

impl Owner {
    /// Seals this device's whole state under `passphrase`.
    ///
    /// # Errors
    /// Parameters out of bounds.
    pub fn to_key_store(
        &self,
        passphrase: &str,
        params: KdfParams,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, ClientError> {
        let contents = Contents {
            version: VERSION,
            server_url: self.endpoint.url.clone(),
            server_pin: self.endpoint.pin.map(hex::encode),
            allow_plain_http: self.endpoint.allow_plain_http,
            device_id: self.device_id.to_string(),
            token: self.api.token().unwrap_or_default().to_owned(),
            account: hex::encode(self.account().to_bytes()),
            device_signing_key: hex::encode(*self.device.signing.seed()),
            device_hpke_key: hex::encode(*self.device.hpke.to_bytes()),
            cameras: self
                .cameras
                .iter()
                .map(|(id, keys)| CameraContents {
                    camera_id: id.to_string(),
                    records: keys
                        .records
                        .iter()
                        .map(|r| B64.encode(r.signed().encoded()))
                        .collect(),
                    viewing_keys: keys
                        .viewing
                        .iter()
                        .map(|(epoch, key)| (*epoch, hex::encode(*key.to_bytes())))
                        .collect(),
                    owner: keys.owner.map(|k| hex::encode(k.to_bytes())),
                    verified: keys.verified.map(|v| (v.sequence, hex::encode(v.digest.0))),
                    head: keys.head.as_ref().map(|h| hex::encode(&h.bytes)),
                    floor: keys
                        .floor
                        .as_ref()
                        .map(|f| B64.encode(f.signed().encoded())),
                })
                .collect(),
            log: B64.encode(self.log.encoded()),
            rosters: self
                .log
                .rosters()
                .map(|r| B64.encode(r.signed().encoded()))
                .collect(),
            rosters_of: self
                .sharing
                .rosters
                .iter()
                .map(|(key, chain)| {
                    let chain = chain.iter().map(|r| B64.encode(r.signed().encoded()));
                    (hex::encode(key), chain.collect())
                })
                .collect(),
            acceptance: self
                .sharing
                .acceptance
                .as_ref()
                .map(|a| B64.encode(a.signed().encoded())),
            shares: self
                .sharing
                .shares
                .iter()
                .map(|(id, s)| (id.to_string(), B64.encode(s.signed().encoded())))
                .collect(),
            sealed: self
                .sharing
                .sealed
                .iter()
                .map(|(id, epochs)| {
                    let epochs = epochs
                        .iter()
                        .map(|(epoch, devices)| {
                            let devices = devices
                                .iter()
                                .map(|(account, device)| {
                                    format!("{}/{device}", hex::encode(account))
                                })
                                .collect();
                            (*epoch, devices)
                        })
                        .collect();
                    (id.to_string(), epochs)
                })
                .collect(),
        };
        let json = Zeroizing::new(
            serde_json::to_vec(&contents).map_err(|e| ClientError::Untrusted(e.to_string()))?,
        );
        Ok(KeyStore::seal(passphrase.as_bytes(), &json, params, rng)?.encode())
    }

    /// Opens a key store sealed by [`Owner::to_key_store`], verifying the account log from its
    /// first entry, every roster, and every camera record against the roster in force for it
    /// again.
    ///
    /// # Errors
    /// A wrong passphrase, a damaged store, or contents that do not verify.
    pub fn from_key_store(bytes: &[u8], passphrase: &str) -> Result<Self, ClientError> {
        let json = KeyStore::decode(bytes)?.open(passphrase.as_bytes())?;
        let c: Contents = serde_json::from_slice(&json).map_err(|_| bad("contents"))?;
        if c.version != VERSION {
            return Err(ClientError::Untrusted(format!(
                "the key store is format version {}, this program reads version {VERSION}: set \
                 this device up again (keyhole join, or keyhole recover)",
                c.version
            )));
        }
        let endpoint = Endpoint {
            url: c.server_url.clone(),
            pin: match &c.server_pin {
                Some(p) => Some(*hex32(p, "server pin")?),
                None => None,
            },
            allow_plain_http: c.allow_plain_http,
        };
        let account = AccountPublicKey::from_bytes(&*hex32(&c.account, "account key")?)
            .map_err(|_| bad("account key"))?;
        let device = DeviceKeys {
            signing: DeviceSigningKey::from_seed(&*hex32(&c.device_signing_key, "device key")?),
            hpke: HpkeSecretKey::from_bytes(&*hex32(&c.device_hpke_key, "device key")?),
        };
        let log_bytes = B64.decode(&c.log).map_err(|_| bad("account log"))?;
        let rosters = c
            .rosters
            .iter()
            .map(|r| B64.decode(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("roster"))?;
        let log =
            AccountLog::decode(&account, &log_bytes, &rosters).map_err(|_| bad("account log"))?;
        let sharing = sharing(&c, &log)?;
        let device_id = c.device_id.parse().map_err(|_| bad("device id"))?;
        let mut cameras = BTreeMap::new();
        for camera in &c.cameras {
            let id: CameraId = camera.camera_id.parse().map_err(|_| bad("camera id"))?;
            let owner = match &camera.owner {
                Some(k) => Some(
                    AccountPublicKey::from_bytes(&*hex32(k, "camera owner")?)
                        .map_err(|_| bad("camera owner"))?,
                ),
                None => None,
            };
            let owner_chain = match &owner {
                Some(key) => sharing
                    .rosters
                    .get(&key.to_bytes())
                    .map(Vec::as_slice)
                    .ok_or_else(|| bad("owner roster"))?,
                None => &[],
            };
            let mut records: Vec<CameraRecord> = Vec::new();
            for (i, encoded) in camera.records.iter().enumerate() {
                let signed = B64
                    .decode(encoded)
                    .ok()
                    .and_then(|b| SignedCameraRecord::decode(&b).ok())
                    .ok_or_else(|| bad("camera record"))?;
                let version = signed.unverified_body().version;
                let roster = match owner {
                    Some(_) => crate::share::owner_roster_for(
                        owner_chain,
                        i + 1 == camera.records.len(),
                        signed.signer(),
                    ),
                    None => log.roster_when(camera_subject(&id), version).cloned(),
                }
                .ok_or_else(|| bad("camera record"))?;
                let record = match records.last() {
                    Some(previous) => previous.accept(signed, &roster),
                    None => signed.verify_first(&roster, &id),
                }
                .map_err(|_| bad("camera record"))?;
                records.push(record);
            }
            let mut viewing = BTreeMap::new();
            for (epoch, key) in &camera.viewing_keys {
                viewing.insert(
                    *epoch,
                    HpkeSecretKey::from_bytes(&*hex32(key, "viewing key")?),
                );
            }
            let head = match (&camera.head, records.first()) {
                (Some(head), Some(first)) => Some(
                    HeldHead::verify(
                        hex::decode(head).map_err(|_| bad("camera head"))?,
                        &id,
                        &first.body().camera_key,
                    )
                    .map_err(|_| bad("camera head"))?,
                ),
                _ => None,
            };
            let floor = match &camera.floor {
                Some(floor) => {
                    let signed = B64
                        .decode(floor)
                        .ok()
                        .and_then(|b| SignedRetentionFloor::decode(&b).ok())
                        .ok_or_else(|| bad("retention floor"))?;
                    let roster = log
                        .roster_when(retention_subject(&id), signed.unverified_body().version)
                        .ok_or_else(|| bad("retention floor"))?;
                    Some(
                        signed
                            .verify_about(roster, &id)
                            .map_err(|_| bad("retention floor"))?,
                    )
                }
                None => None,
            };
            cameras.insert(
                id,
                CameraKeys {
                    records,
                    viewing,
                    owner,
                    verified: match &camera.verified {
                        Some((sequence, digest)) => Some(HighWater {
                            sequence: *sequence,
                            digest: ObjectDigest(*hex32(digest, "verified object")?),
                        }),
                        None => None,
                    },
                    head,
                    floor,
                },
            );
        }
        let api = Api::new(&endpoint)?.with_token(c.token.clone());
        Ok(Self {
            endpoint,
            api,
            device,
            device_id,
            cameras,
            log,
            sharing,
            heard: BTreeMap::new(),
            damaged_packages: Vec::new(),
        })
    }

    /// Writes the key store to `path` atomically, readable by the owner only.
    ///
    /// # Errors
    /// As [`Owner::to_key_store`], or an I/O failure (the old file is then intact).
    pub fn save_key_store(
        &self,
        path: &Path,
        passphrase: &str,
        params: KdfParams,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let sealed = self.to_key_store(passphrase, params, rng)?;
        crate::private_file::replace(path, &sealed)?;
        Ok(())
    }

    /// Reads and opens the key store at `path`.
    ///
    /// # Errors
    /// As [`Owner::from_key_store`], or an unreadable file.
    pub fn load_key_store(path: &Path, passphrase: &str) -> Result<Self, ClientError> {
        Self::from_key_store(&std::fs::read(path)?, passphrase)
    }
}
