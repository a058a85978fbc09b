//! Credentials: bearer tokens (only their SHA-256 is stored), Argon2id password hashes, the
//! request extractor that turns a token into a [`Credential`] and its standing, and login rate
//! limiting.
//!
//! A device credential's standing comes from how it was issued and from the account's roster,
//! read on every request: a credential issued against the device's own key (a device-key login)
//! for a device the newest roster lists is *enrolled* and may do what devices do; any other
//! device credential — a password login (for a device not approved yet, or recovering), or one
//! whose device was revoked since — may only join or recover (`Caller::joining`). Rosters are
//! written only by devices the roster before lists (or the account key), and a device-key login
//! needs the key that roster lists, so the password alone never makes an enrolled credential.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::store::{AccountId, Credential, Subject};

/// A new bearer token and the hash the server keeps.
#[must_use]
pub fn new_token() -> (String, [u8; 32]) {
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token. Tokens carry 256 random bits, so a fast hash is enough: the table of
/// hashes is useless to someone who steals it, and lookups by hash do not leak the token.
#[must_use]
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Hashes a password with Argon2id (RFC 9106 second recommended parameters as set by the
/// `argon2` crate's defaults), off the async threads.
///
/// # Errors
/// If hashing fails.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

/// Checks a password against a stored hash (constant-time inside Argon2). With no stored hash,
/// checks against a fixed dummy so unknown usernames take as long as known ones.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut OsRng);
                    Argon2::default()
                        .hash_password(b"no such account", &salt)
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let ok = PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// Counts failed logins per username; too many in a window locks that username for the rest
/// of the window.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const WINDOW: Duration = Duration::from_secs(300);
const MAX_FAILURES: u32 = 10;

impl LoginLimiter {
    /// Whether a login for `username` may be tried now.
    pub fn allowed(&self, username: &str) -> bool {
        let map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(username)
            .is_none_or(|(n, since)| *n < MAX_FAILURES || since.elapsed() > WINDOW)
    }

    /// Records a failed login.
    pub fn failed(&self, username: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(username.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() > WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| since.elapsed() <= WINDOW);
        }
    }

    /// Clears the count after a successful login.
    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(username);
    }
}

/// The authenticated caller of a request, and whether it is an enrolled device: a device-key
/// credential of a device the account's newest roster lists (always false for a camera).
#[derive(Debug, Clone)]
pub struct Caller(pub Credential, pub bool);

impl Caller {
    /// The device id of an enrolled device: `Forbidden` for a camera, `NotEnrolled` for a
    /// device the account's roster does not list.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] or [`ApiError::NotEnrolled`].
    pub fn device(&self) -> Result<[u8; 16], ApiError> {
        let id = self.joining()?;
        if self.1 {
            Ok(id)
        } else {
            Err(ApiError::NotEnrolled)
        }
    }

    /// The device id of any device credential, enrolled or not: for what joining and recovery
    /// need (enrolling, reading the roster chain, the log and the recovery backup, writing the
    /// roster the account key signs).
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for a camera.
    pub fn joining(&self) -> Result<[u8; 16], ApiError> {
        match self.0.subject {
            Subject::Device(id) => Ok(id),
            Subject::Camera(_) => Err(ApiError::Forbidden),
        }
    }

    /// Whether the caller is an enrolled device.
    #[must_use]
    pub fn enrolled(&self) -> bool {
        self.1
    }

    /// The camera id, or `Forbidden` for a device.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] if the caller is a device.
    pub fn camera(&self) -> Result<[u8; 16], ApiError> {
        match self.0.subject {
            Subject::Camera(id) => Ok(id),
            Subject::Device(_) => Err(ApiError::Forbidden),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::of_token(state, bearer(&parts.headers)?).await
    }
}

/// The bearer token of a request.
///
/// # Errors
/// [`ApiError::Unauthorized`] if there is none.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)
}

impl Caller {
    /// Who presents `token`, as of now (a long-lived response checks again from time to time).
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] for a token that is not (or no longer) valid; storage
    /// failures.
    pub async fn of_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let credential = state
            .meta
            .credential(&token_hash(token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // Enrolled only by the device's own key: a password login's credential stays joining
        // even once a roster lists its device (the device then logs in with its key).
        let enrolled = match credential.subject {
            Subject::Device(id) => {
                credential.by_device_key && listed(state, &credential.account_id, &id).await?
            }
            Subject::Camera(_) => false,
        };
        Ok(Self(credential, enrolled))
    }
}

/// Whether the account's newest stored roster lists device `id`. The server checked the roster
/// chain when it stored each version, so the newest stored is the one in force.
///
/// # Errors
/// Storage failures.
pub async fn listed(
    state: &AppState,
    account: &AccountId,
    id: &[u8; 16],
) -> Result<bool, ApiError> {
    let Some(roster) = state.meta.roster(account, None).await? else {
        return Ok(false);
    };
    let roster = keyhole_core::roster::SignedRoster::decode(&roster)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored roster: {e}")))?;
    Ok(roster
        .unverified_body()
        .devices
        .iter()
        .any(|d| d.id.0 == *id))
}
