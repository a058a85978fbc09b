//! What a paired camera keeps on disk, in its state folder:
//!
//! - `identity`: camera id, signing key, pinned account key, server and its certificate pin,
//!   upload token (mode 0600; the only secrets the camera has, none of which opens video);
//! - `record`: the newest camera record it verified, so a restart cannot be rolled back;
//! - `chain`: the sequence number and digest of the last object sealed, counters, and when
//!   the server last acknowledged an object;
//! - `spool/`: sealed objects not yet acknowledged by the server.
//!
//! Every file is replaced atomically (write to a temporary name, fsync, rename, fsync the
//! folder), so power loss leaves either the old or the new version.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use keyhole_core::envelope::ObjectDigest;
use keyhole_core::roster::{Roster, SignedRoster};
use keyhole_core::{AccountPublicKey, CameraId, CameraKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Why the state folder could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file is not what this camera wrote.
    #[error("{path}: damaged ({why})")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The camera has not been paired.
    #[error("this camera is not paired (no {0}); run `keyhole-camera pair <code>`")]
    NotPaired(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably, readable by the owner only.
///
/// # Errors
/// Any I/O failure; `path` then keeps its previous content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = AtomicFile::create(path)?;
    file.write(bytes)?;
    file.commit()
}

/// A file written beside its final path (`<path>.tmp`, readable by the owner only) that takes
/// that path, durably, only when committed; dropped before, it leaves nothing behind.
#[derive(Debug)]
pub struct AtomicFile {
    file: fs::File,
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing what will become `path`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&tmp).map_err(io(&tmp))?;
        Ok(Self {
            file,
            tmp,
            path: path.to_owned(),
            committed: false,
        })
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write_all(bytes).map_err(io(&self.tmp))
    }

    /// Syncs the file, renames it into place and syncs the folder.
    ///
    /// # Errors
    /// I/O failures; the path then keeps its previous content.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.file.sync_all().map_err(io(&self.tmp))?;
        fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        self.committed = true;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The camera's identity, made when it pairs.
pub struct Identity {
    /// The camera's id.
    pub camera_id: CameraId,
    /// The camera's signing key.
    pub key: CameraKey,
    /// The account key pinned from the pairing code: the only key the camera trusts.
    pub account: AccountPublicKey,
    /// The server's base URL.
    pub server_url: String,
    /// SHA-256 of the server's certificate, when it is self-signed.
    pub tls_pin: Option<[u8; 32]>,
    /// The camera's upload token.
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("camera_id", &self.camera_id)
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    camera_id: String,
    signing_key: String,
    account_key: String,
    server_url: String,
    tls_pin: Option<String>,
    token: String,
}

impl Identity {
    const FILE: &'static str = "identity";

    /// Saves the identity into `dir` (mode 0600).
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        let file = IdentityFile {
            camera_id: self.camera_id.to_string(),
            signing_key: hex::encode(*self.key.seed()),
            account_key: hex::encode(self.account.to_bytes()),
            server_url: self.server_url.clone(),
            tls_pin: self.tls_pin.map(hex::encode),
            token: self.token.to_string(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::Damaged {
            path: dir.join(Self::FILE),
            why: e.to_string(),
        });
        let text = Zeroizing::new(text?);
        let IdentityFile {
            signing_key, token, ..
        } = file;
        drop((Zeroizing::new(signing_key), Zeroizing::new(token)));
        write_atomic(&dir.join(Self::FILE), &text)
    }

    /// Loads the identity from `dir`.
    ///
    /// # Errors
    /// [`StoreError::NotPaired`] without one; [`StoreError::Damaged`] if it does not parse.
    pub fn load(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(Self::FILE);
        let text = match fs::read(&path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotPaired(path));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let damaged = |why: &str| StoreError::Damaged {
            path: path.clone(),
            why: why.to_owned(),
        };
        let file: IdentityFile =
            serde_json::from_slice(&text).map_err(|e| damaged(&e.to_string()))?;
        let seed = Zeroizing::new(hex32(&file.signing_key).ok_or_else(|| damaged("signing key"))?);
        let account = hex32(&file.account_key)
            .and_then(|b| AccountPublicKey::from_bytes(&b).ok())
            .ok_or_else(|| damaged("account key"))?;
        let tls_pin = match &file.tls_pin {
            Some(p) => Some(hex32(p).ok_or_else(|| damaged("certificate pin"))?),
            None => None,
        };
        let identity = Self {
            camera_id: file.camera_id.parse().map_err(|_| damaged("camera id"))?,
            key: CameraKey::from_seed(&seed),
            account,
            server_url: file.server_url.clone(),
            tls_pin,
            token: Zeroizing::new(file.token.clone()),
        };
        drop((Zeroizing::new(file.signing_key), Zeroizing::new(file.token)));
        Ok(identity)
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Where the camera's object chain stands, and what it has had to drop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    /// Sequence number of the last object sealed (0 before the first).
    pub sequence: u64,
    /// Digest of the last object sealed, hex (all zeros before the first).
    pub previous: String,
    /// Sealed objects dropped from a full spool before they were uploaded.
    pub dropped: u64,
    /// Objects the server refused for good (kept in `spool/rejected/`).
    pub rejected: u64,
    /// When the server last acknowledged an object (ms since 1970), for `status` while the
    /// agent is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_upload: Option<u64>,
}

impl Chain {
    const FILE: &'static str = "chain";

    /// The previous object's digest.
    #[must_use]
    pub fn previous_digest(&self) -> ObjectDigest {
        ObjectDigest(hex32(&self.previous).unwrap_or_default())
    }

    /// Loads the chain from `dir`, or a fresh one.
    ///
    /// # Errors
    /// I/O failures or a damaged file.
    pub fn load(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(Self::FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let chain: Self =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Damaged {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
                if hex32(&chain.previous).is_none() {
                    return Err(StoreError::Damaged {
                        path,
                        why: "previous digest".into(),
                    });
                }
                Ok(chain)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                previous: hex::encode([0u8; 32]),
                ..Self::default()
            }),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Saves the chain into `dir`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(Self::FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Damaged {
            path: path.clone(),
            why: e.to_string(),
        })?;
        write_atomic(&path, &bytes)
    }
}

/// Name of the file holding the newest verified camera record.
pub const RECORD_FILE: &str = "record";

/// Name of the file holding the roster chain the camera followed: every version from the
/// first (the pinned account key's), one hex line each.
pub const ROSTERS_FILE: &str = "rosters";

/// The roster chain saved in `dir`, verified again from the first version under `account`
/// (empty before the camera first followed it).
///
/// # Errors
/// An unreadable file, or a chain that does not verify.
pub fn load_rosters(dir: &Path, account: &AccountPublicKey) -> Result<Vec<Roster>, StoreError> {
    let path = dir.join(ROSTERS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    let damaged = |why: String| StoreError::Damaged {
        path: path.clone(),
        why,
    };
    let mut chain: Vec<Roster> = Vec::new();
    for line in text.lines() {
        let bytes = hex::decode(line).map_err(|e| damaged(e.to_string()))?;
        let signed = SignedRoster::decode(&bytes).map_err(|e| damaged(e.to_string()))?;
        let next = match chain.last() {
            Some(held) => held.accept(signed),
            None => signed.verify_first(account),
        }
        .map_err(|e| damaged(e.to_string()))?;
        chain.push(next);
    }
    Ok(chain)
}

/// Saves the roster chain in `dir`, atomically.
///
/// # Errors
/// Any I/O failure; the previous chain is then intact.
pub fn save_rosters(dir: &Path, chain: &[Roster]) -> Result<(), StoreError> {
    let mut text = String::new();
    for roster in chain {
        text.push_str(&hex::encode(roster.signed().encoded()));
        text.push('\n');
    }
    write_atomic(&dir.join(ROSTERS_FILE), text.as_bytes())
}
