//! Metadata storage behind a trait, so the embedded SQLite store and a PostgreSQL store serve
//! the same API. Stored signed objects are opaque bytes to the store.

mod sql;

pub use sql::{Held, SqlStore};

use async_trait::async_trait;

/// A 16-byte account id.
pub type AccountId = [u8; 16];

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write conflicts with what is stored; the message says how.
    #[error("{0}")]
    Conflict(String),
    /// The thing does not exist.
    #[error("not found")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Backend(e.into())
    }
}

/// What a credential stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An enrolled device of the account.
    Device([u8; 16]),
    /// A paired camera of the account.
    Camera([u8; 16]),
}

/// A stored credential (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    /// Whose it is.
    pub account_id: AccountId,
    /// What it stands for.
    pub subject: Subject,
    /// When it was issued.
    pub created_at: i64,
    /// Issued against the device's own key (a device-key login), not the password: only such
    /// a credential acts as an enrolled device.
    pub by_device_key: bool,
}

/// A paired camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraRow {
    /// The camera id from its registration proof.
    pub camera_id: [u8; 16],
    /// The owning account.
    pub account_id: AccountId,
    /// The camera's public signing key.
    pub camera_key: [u8; 32],
    /// The registration proof, as the camera sent it.
    pub registration: Vec<u8>,
    /// The pairing token it answered.
    pub token_id: [u8; 16],
    /// When it registered.
    pub registered_at: i64,
    /// When the owner removed it, if they did.
    pub removed_at: Option<i64>,
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing id; pass the last one seen to read on.
    pub id: i64,
    /// When (ms).
    pub at: i64,
    /// Who: `device:<id>`, `camera:<id>`, `anonymous` or `server`.
    pub actor: String,
    /// What, as a stable word (`roster`, `camera-removed`, …).
    pub action: String,
    /// Details for people.
    pub detail: String,
}

/// What deleting a camera's data removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Object rows deleted (their blobs are the caller's to delete).
    pub objects: Vec<[u8; 16]>,
    /// Bytes those objects held.
    pub bytes: i64,
    /// Key packages deleted.
    pub key_packages: u64,
    /// Camera records deleted.
    pub camera_records: u64,
}

/// A committed sealed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// The object id from the sealed header.
    pub object_id: [u8; 16],
    /// The owning account.
    pub account_id: AccountId,
    /// The camera that sealed it.
    pub camera_id: [u8; 16],
    /// 1 clip, 2 event, 3 live.
    pub kind: u8,
    /// Per-camera sequence number from the header.
    pub sequence: i64,
    /// Epoch from the header.
    pub epoch: i64,
    /// Capture time from the header (ms).
    pub captured_at: i64,
    /// Stored bytes.
    pub size: i64,
    /// The object's summary (PROTOCOL.md §7.12), recorded when its upload verified; empty for
    /// an object stored before summaries were kept.
    pub summary: Vec<u8>,
    /// When the server committed it.
    pub created_at: i64,
}

/// Outcome of inserting an object row.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The row is new.
    New,
    /// A row with this id and the same content already exists (a retried upload).
    AlreadyPresent,
}

/// One device enrollment by approval: the four messages, each written once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRow {
    /// Random id chosen by the server.
    pub enrollment_id: [u8; 16],
    /// The account being joined.
    pub account_id: AccountId,
    /// The joining device, as its credential names it.
    pub device_id: [u8; 16],
    /// When the request arrived (ms).
    pub created_at: i64,
    /// After this (ms) no step is accepted.
    pub expires_at: i64,
    /// The joining device's request.
    pub request: Vec<u8>,
    /// The approving device's nonce.
    pub answer: Option<Vec<u8>>,
    /// The joining device's nonce.
    pub reveal: Option<Vec<u8>>,
    /// The account key sealed to the joining device.
    pub grant: Option<Vec<u8>>,
    /// When it was finished or cancelled.
    pub closed_at: Option<i64>,
}

/// A step of an enrollment after the request, in the order they must come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStep {
    /// The approving device's nonce.
    Answer,
    /// The joining device's nonce; needs the answer.
    Reveal,
    /// The sealed account key; needs the reveal.
    Grant,
}

/// The statement a log entry records, stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged<'a> {
    /// A roster version.
    Roster {
        /// Its version.
        version: i64,
        /// Its signed encoding.
        body: &'a [u8],
    },
    /// A camera record version.
    CameraRecord {
        /// The camera.
        camera_id: [u8; 16],
        /// Its version.
        version: i64,
        /// Its signed encoding.
        body: &'a [u8],
    },
    /// A share statement version; its members replace the camera's.
    Share {
        /// The camera.
        camera_id: [u8; 16],
        /// Its version.
        version: i64,
        /// Its signed encoding.
        body: &'a [u8],
        /// Each member's account and expiry (ms), as the statement names them.
        members: &'a [(AccountId, Option<i64>)],
    },
    /// A camera's retention floor version: the server may delete its objects below the floor.
    Retention {
        /// The camera.
        camera_id: [u8; 16],
        /// Its version.
        version: i64,
        /// Its signed encoding.
        body: &'a [u8],
    },
    /// An acceptance statement version; its owners replace the account's share consents.
    Acceptance {
        /// Its version.
        version: i64,
        /// Its signed encoding.
        body: &'a [u8],
        /// The accounts it accepts shares from.
        owners: &'a [AccountId],
    },
}

/// One entry appended to an account's log, with the statement it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppend<'a> {
    /// The entry's sequence number.
    pub sequence: i64,
    /// The hash it names as its predecessor's.
    pub previous: [u8; 32],
    /// Its own hash (SHA-256 of `entry`).
    pub hash: [u8; 32],
    /// The signed entry.
    pub entry: &'a [u8],
    /// What it records.
    pub statement: Logged<'a>,
    /// With entry 1: the account key its roster names, to index (see `account_by_key`).
    pub account_key: Option<[u8; 32]>,
}

/// A device credential's Web Push subscription (RFC 8030): where its push service takes
/// messages for it, and the keys they are encrypted to (RFC 8291).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// SHA-256 of the device's bearer token: the subscription ends with the credential.
    pub token_hash: [u8; 32],
    /// The push resource URL its push service gave the device.
    pub endpoint: String,
    /// The device's P-256 public key for this subscription, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The device's authentication secret for this subscription (16 bytes).
    pub auth: Vec<u8>,
}

/// A subscription to push to, with the device it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The subscription.
    pub subscription: PushSubscription,
    /// The device's account.
    pub account_id: AccountId,
    /// The device.
    pub device_id: [u8; 16],
}

/// Most unexpired challenges one device may hold; older ones are dropped as new ones come.
pub const MAX_OPEN_CHALLENGES: i64 = 16;

/// The server's metadata.
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Creates an account. Conflict if the username is taken.
    async fn create_account(
        &self,
        id: AccountId,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// An account's id and password hash by username.
    async fn account_by_username(
        &self,
        username: &str,
    ) -> Result<Option<(AccountId, String)>, StoreError>;

    /// Replaces an account's password hash.
    async fn set_password(
        &self,
        account: &AccountId,
        password_hash: &str,
    ) -> Result<(), StoreError>;

    /// Stores a challenge issued to `device` of `account`, good until `expires_at`; drops that
    /// device's expired challenges, and its oldest beyond [`MAX_OPEN_CHALLENGES`].
    async fn create_challenge(
        &self,
        challenge: &[u8; 32],
        account: &AccountId,
        device: &[u8; 16],
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Takes (deletes) a challenge issued to `device` of `account` that has not expired:
    /// whether there was one. Each challenge is taken once.
    async fn take_challenge(
        &self,
        challenge: &[u8; 32],
        account: &AccountId,
        device: &[u8; 16],
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Stores a new credential.
    async fn insert_credential(&self, c: &Credential) -> Result<(), StoreError>;
    /// The unrevoked credential with this token hash.
    async fn credential(&self, token_hash: &[u8; 32]) -> Result<Option<Credential>, StoreError>;
    /// Revokes one credential.
    async fn revoke_credential(&self, token_hash: &[u8; 32], now: i64) -> Result<(), StoreError>;
    /// Revokes every credential of a subject; returns how many.
    async fn revoke_subject(
        &self,
        account: &AccountId,
        subject: Subject,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// Stores a roster version. Conflict unless it is newer than every stored version.
    async fn put_roster(
        &self,
        account: &AccountId,
        version: i64,
        body: &[u8],
    ) -> Result<(), StoreError>;
    /// A roster by version, or the latest.
    async fn roster(
        &self,
        account: &AccountId,
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Creates a pairing token.
    async fn create_pairing_token(
        &self,
        account: &AccountId,
        token_id: &[u8; 16],
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Atomically: uses the token (unexpired, unused), registers the camera and stores its
    /// credential. `camera.account_id` is ignored and taken from the token.
    async fn complete_pairing(
        &self,
        camera: &CameraRow,
        credential_hash: &[u8; 32],
        now: i64,
    ) -> Result<AccountId, StoreError>;
    /// A camera by id.
    async fn camera(&self, camera_id: &[u8; 16]) -> Result<Option<CameraRow>, StoreError>;
    /// The account's cameras.
    async fn cameras(&self, account: &AccountId) -> Result<Vec<CameraRow>, StoreError>;
    /// Keeps `body`, a camera head signed at `clock` by the camera's clock (PROTOCOL.md §8.3),
    /// unless the camera already has a head at least as late.
    async fn put_camera_head(
        &self,
        camera_id: &[u8; 16],
        clock: i64,
        body: &[u8],
    ) -> Result<(), StoreError>;
    /// The camera's newest head, if it sent one.
    async fn camera_head(&self, camera_id: &[u8; 16]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The camera that answered a pairing token of this account.
    async fn camera_by_token(
        &self,
        account: &AccountId,
        token_id: &[u8; 16],
    ) -> Result<Option<CameraRow>, StoreError>;

    /// Stores a camera record version. Conflict unless newer than every stored version.
    async fn put_camera_record(
        &self,
        camera_id: &[u8; 16],
        version: i64,
        body: &[u8],
    ) -> Result<(), StoreError>;
    /// A camera record by version, or the latest.
    async fn camera_record(
        &self,
        camera_id: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Appends an entry to an account's log and stores the statement it records, in one
    /// transaction. Conflict (saying why) unless the entry follows the stored head (sequence one
    /// more, `previous` its hash; sequence 1 on an empty log) and the statement is newer than
    /// every stored version of it.
    async fn append_log(&self, account: &AccountId, a: &LogAppend<'_>) -> Result<(), StoreError>;
    /// Log entries with sequence > `after`, oldest first.
    async fn log_entries(
        &self,
        account: &AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stores (or replaces) a device's head statement.
    async fn put_log_head(
        &self,
        account: &AccountId,
        device: &[u8; 16],
        body: &[u8],
    ) -> Result<(), StoreError>;
    /// Every device's head statement.
    async fn log_heads(&self, account: &AccountId) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The account whose first roster names this account key.
    async fn account_by_key(&self, key: &[u8; 32]) -> Result<Option<AccountId>, StoreError>;
    /// An account's key, from its first roster.
    async fn account_key(&self, account: &AccountId) -> Result<Option<[u8; 32]>, StoreError>;
    /// Whether `member` accepts shares from `owner` (its newest acceptance statement lists it).
    async fn share_consent(
        &self,
        member: &AccountId,
        owner: &AccountId,
    ) -> Result<bool, StoreError>;
    /// An account's acceptance statement by version, or the latest.
    async fn acceptance(
        &self,
        account: &AccountId,
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// A camera's share statement by version, or the latest.
    async fn share(
        &self,
        camera_id: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether the camera's newest share statement lets `member` view at `now` (ms).
    async fn share_member(
        &self,
        camera_id: &[u8; 16],
        member: &AccountId,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Stores (or replaces) a key package, sealed by device `sealer`.
    async fn put_key_package(
        &self,
        account: &AccountId,
        camera_id: &[u8; 16],
        epoch: i64,
        recipient: &[u8],
        body: &[u8],
        sealer: &[u8; 16],
    ) -> Result<(), StoreError>;
    /// The device that sealed the stored key package for this slot: `None` if there is none,
    /// `Some(None)` for one stored before sealers were recorded.
    async fn key_package_sealer(
        &self,
        account: &AccountId,
        camera_id: &[u8; 16],
        epoch: i64,
        recipient: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, StoreError>;
    /// Key packages for a recipient (device id, or empty for the recovery key).
    async fn key_packages(
        &self,
        account: &AccountId,
        recipient: &[u8],
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Stores (or replaces) the recovery backup.
    async fn put_recovery_backup(&self, account: &AccountId, body: &[u8])
    -> Result<(), StoreError>;
    /// The recovery backup.
    async fn recovery_backup(&self, account: &AccountId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a committed object; idempotent for the same id and content.
    async fn insert_object(&self, o: &ObjectRow) -> Result<Inserted, StoreError>;
    /// An object by id.
    async fn object(&self, object_id: &[u8; 16]) -> Result<Option<ObjectRow>, StoreError>;
    /// A camera's objects with sequence > `after` and capture time in `captured`, in sequence
    /// order.
    async fn objects(
        &self,
        camera_id: &[u8; 16],
        after: i64,
        captured: std::ops::Range<i64>,
        limit: i64,
    ) -> Result<Vec<ObjectRow>, StoreError>;
    /// A camera's object with the highest sequence number (the newest it sealed).
    async fn latest_object(&self, camera_id: &[u8; 16]) -> Result<Option<ObjectRow>, StoreError>;
    /// Every object, for `check`.
    async fn all_objects(&self) -> Result<Vec<ObjectRow>, StoreError>;
    /// Deletes an object row; whether it existed.
    async fn delete_object(&self, object_id: &[u8; 16]) -> Result<bool, StoreError>;

    /// Marks a camera removed and revokes its credentials; its data stays.
    async fn remove_camera(&self, camera_id: &[u8; 16], now: i64) -> Result<(), StoreError>;
    /// Deletes a camera and everything stored for it except blobs: object rows, camera records,
    /// key packages. Returns what went, so the caller can delete the blobs.
    async fn delete_camera(&self, camera_id: &[u8; 16]) -> Result<Deleted, StoreError>;

    /// Appends to an account's audit log.
    async fn audit(
        &self,
        account: &AccountId,
        at: i64,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError>;
    /// Audit entries with id > `after`, oldest first.
    async fn audit_log(
        &self,
        account: &AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Takes the lock `name`, shared by every server on this store, unless another server
    /// holds it (`None`). It is held until the guard is dropped or the server dies. For work
    /// that one server at a time should do, such as the retention sweep.
    async fn try_lock(&self, name: &str) -> Result<Option<Held>, StoreError>;

    /// A camera's retention floor (PROTOCOL.md §11.5) by version, or its newest.
    async fn retention_floor(
        &self,
        camera_id: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every camera's newest retention floor, as stored: what the retention sweep deletes below.
    async fn retention_floors(&self) -> Result<Vec<([u8; 16], Vec<u8>)>, StoreError>;

    /// Stores a new enrollment request. Conflict if the account already has `max_open` open,
    /// unexpired enrollments.
    async fn create_enrollment(&self, e: &EnrollmentRow, max_open: i64) -> Result<(), StoreError>;
    /// An account's enrollment by id (open or not).
    async fn enrollment(
        &self,
        account: &AccountId,
        enrollment_id: &[u8; 16],
    ) -> Result<Option<EnrollmentRow>, StoreError>;
    /// An account's open, unexpired enrollments, oldest first.
    async fn open_enrollments(
        &self,
        account: &AccountId,
        now: i64,
    ) -> Result<Vec<EnrollmentRow>, StoreError>;
    /// Writes one step of an open, unexpired enrollment, once, after the step before it.
    /// `NotFound` if there is no such enrollment; Conflict (saying why) otherwise.
    async fn set_enrollment_step(
        &self,
        account: &AccountId,
        enrollment_id: &[u8; 16],
        step: EnrollmentStep,
        body: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;
    /// Counts one attempt under `name` and returns how many it has had in the window that
    /// began at its first: a window older than `window_ms` starts over with this attempt. One
    /// atomic statement, so parallel attempts each get their own number.
    async fn count_attempt(&self, name: &str, now: i64, window_ms: i64) -> Result<i64, StoreError>;
    /// Forgets the attempts counted under `name`.
    async fn clear_attempts(&self, name: &str) -> Result<(), StoreError>;
    /// Forgets every count whose window began before `before`.
    async fn prune_attempts(&self, before: i64) -> Result<u64, StoreError>;
    /// The servers' VAPID private key: the one stored, or `candidate` stored now if there is
    /// none (every server sharing the database signs with the first one stored).
    async fn push_key(&self, candidate: &[u8; 32]) -> Result<[u8; 32], StoreError>;
    /// Keeps `s` as its credential's push subscription, replacing any before.
    async fn put_push_subscription(&self, s: &PushSubscription, now: i64)
    -> Result<(), StoreError>;
    /// Forgets a credential's push subscription; whether there was one.
    async fn delete_push_subscription(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError>;
    /// The subscriptions of live device credentials that may view `camera_id`: its owner's
    /// (`account`) and its share's members' as of `now`.
    async fn push_targets(
        &self,
        camera_id: &[u8; 16],
        account: &AccountId,
        now: i64,
    ) -> Result<Vec<PushTarget>, StoreError>;
    /// Closes an enrollment (finished or cancelled); whether it was open.
    async fn close_enrollment(
        &self,
        account: &AccountId,
        enrollment_id: &[u8; 16],
        now: i64,
    ) -> Result<bool, StoreError>;
}
