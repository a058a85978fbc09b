//! Credentials: bearer tokens (only their SHA-256 is stored), the request extractor that turns
//! a token into a [`Credential`] and its standing, and the limits on password logins and
//! account creation (passwords themselves are `crate::password`'s).
//!
//! A device credential's standing comes from how it was issued and from the account's roster,
//! read on every request: a credential issued against the device's own key (a device-key login)
//! for a device the newest roster lists is *enrolled* and may do what devices do; any other
//! device credential — a password login (for a device not approved yet, or recovering), or one
//! whose device was revoked since — may only join or recover (`Caller::joining`). Rosters are
//! written only by devices the roster before lists (or the account key), and a device-key login
//! needs the key that roster lists, so the password alone never makes an enrolled credential.

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

/// The window the login and account-creation limits count in.
const LOGIN_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Password logins for one user name from one source per window.
pub const LOGINS_PER_USER_AND_SOURCE: i64 = 10;
/// Password logins for one user name from anywhere per window: what many sources together get.
pub const LOGINS_PER_USER: i64 = 100;
/// Password logins from one source, for any user names, per window.
pub const LOGINS_PER_SOURCE: i64 = 30;
/// The window account creations are counted in.
const ACCOUNTS_WINDOW_MS: i64 = 60 * 60 * 1000;
/// Accounts one source may create per window.
pub const ACCOUNTS_PER_SOURCE: i64 = 10;

/// Where a request came from, as the limits count it: an IPv4 address, or an IPv6 address's
/// /64 (what one home or host is given).
#[must_use]
pub fn source(peer: std::net::IpAddr) -> String {
    match peer {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Counts a password login for `username` from `source` before its password is checked, so
/// parallel guesses each use up a try: whether it is within the limits. Counted in the
/// database, shared by every server on it and kept across restarts.
///
/// # Errors
/// Storage failures.
pub async fn login_allowed(
    state: &AppState,
    username: &str,
    source: &str,
) -> Result<bool, ApiError> {
    let now = crate::now_ms();
    for (name, most) in [
        (
            format!("login {username} {source}"),
            LOGINS_PER_USER_AND_SOURCE,
        ),
        (format!("login {username}"), LOGINS_PER_USER),
        (format!("login from {source}"), LOGINS_PER_SOURCE),
    ] {
        if state
            .meta
            .count_attempt(&name, now, LOGIN_WINDOW_MS)
            .await?
            > most
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives back the user name's tries after a login with the right password.
///
/// # Errors
/// Storage failures.
pub async fn login_succeeded(
    state: &AppState,
    username: &str,
    source: &str,
) -> Result<(), ApiError> {
    state
        .meta
        .clear_attempts(&format!("login {username} {source}"))
        .await?;
    state
        .meta
        .clear_attempts(&format!("login {username}"))
        .await?;
    Ok(())
}

/// Counts an account creation from `source`: whether it is within the limit.
///
/// # Errors
/// Storage failures.
pub async fn account_creation_allowed(state: &AppState, source: &str) -> Result<bool, ApiError> {
    let tries = state
        .meta
        .count_attempt(
            &format!("accounts from {source}"),
            crate::now_ms(),
            ACCOUNTS_WINDOW_MS,
        )
        .await?;
    Ok(tries <= ACCOUNTS_PER_SOURCE)
}

/// Forgets counts whose windows have passed.
///
/// # Errors
/// Storage failures.
pub async fn prune_attempts(state: &AppState) -> Result<u64, ApiError> {
    let before = crate::now_ms().saturating_sub(LOGIN_WINDOW_MS.max(ACCOUNTS_WINDOW_MS));
    Ok(state.meta.prune_attempts(before).await?)
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
