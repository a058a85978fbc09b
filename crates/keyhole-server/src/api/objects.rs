//! Sealed objects: streaming upload (idempotent by object id, visible only once committed),
//! listing by camera, ranged download and deletion.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use keyhole_core::CameraPublicKey;
use keyhole_core::envelope::{Header, ObjectKind, ObjectSummary, ObjectVerifier, PREFIX_LEN};
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use super::{as_i64, id16};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{Inserted, ObjectRow};
use crate::{AppState, audit, now_ms};

#[derive(Serialize)]
pub(super) struct Uploaded {
    object_id: String,
    size: u64,
    /// The object digest (PROTOCOL.md §7.8) of what is stored, for the camera to compare with
    /// its own.
    digest: Option<String>,
    /// False when the object was already stored (a retried upload).
    created: bool,
}

/// Object ids with an upload in progress on this server, so two uploads of one id never race
/// to the same blob.
fn in_progress() -> &'static Mutex<HashSet<[u8; 16]>> {
    static SET: OnceLock<Mutex<HashSet<[u8; 16]>>> = OnceLock::new();
    SET.get_or_init(Mutex::default)
}

struct UploadSlot([u8; 16]);

impl UploadSlot {
    fn take(id: [u8; 16]) -> Result<Self, ApiError> {
        let mut set = in_progress()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !set.insert(id) {
            return Err(ApiError::Conflict(
                "an upload of this object is already in progress".into(),
            ));
        }
        Ok(Self(id))
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        in_progress()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// Checks an upload as its bytes arrive: the size limit, the header signature as soon as the
/// prefix is in, and at the end the camera's trailer signature over the whole object. Only an
/// object exactly as the camera sealed it passes.
struct Receiver<'a> {
    max: u64,
    camera_key: &'a CameraPublicKey,
    camera_id: &'a [u8; 16],
    object_id: &'a [u8; 16],
    prefix: Vec<u8>,
    verifier: Option<ObjectVerifier>,
    size: u64,
}

struct Received {
    header: Header,
    size: u64,
    summary: ObjectSummary,
}

impl<'a> Receiver<'a> {
    fn new(
        max: u64,
        camera_key: &'a CameraPublicKey,
        camera_id: &'a [u8; 16],
        object_id: &'a [u8; 16],
    ) -> Self {
        Self {
            max,
            camera_key,
            camera_id,
            object_id,
            prefix: Vec::with_capacity(PREFIX_LEN),
            verifier: None,
            size: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(ApiError::TooLarge(self.max));
        }
        if let Some(v) = self.verifier.as_mut() {
            v.update(chunk);
            return Ok(());
        }
        let need = (PREFIX_LEN - self.prefix.len()).min(chunk.len());
        self.prefix.extend_from_slice(&chunk[..need]);
        if self.prefix.len() < PREFIX_LEN {
            return Ok(());
        }
        let mut v = ObjectVerifier::new(&self.prefix, self.camera_key)
            .map_err(|e| ApiError::bad(format!("not a sealed object from this camera: {e}")))?;
        let h = v.header();
        if h.object_id.0 != *self.object_id || h.camera_id.0 != *self.camera_id {
            return Err(ApiError::bad(
                "the sealed header names another object or camera",
            ));
        }
        if h.kind == ObjectKind::Live {
            return Err(ApiError::bad(
                "live sessions go through the relay, not storage",
            ));
        }
        v.update(&chunk[need..]);
        self.verifier = Some(v);
        Ok(())
    }

    fn finish(self) -> Result<Received, ApiError> {
        let verifier = self
            .verifier
            .ok_or_else(|| ApiError::bad("upload ends inside the object's header"))?;
        let header = verifier.header().clone();
        let (_, summary) = verifier
            .finish_summary()
            .map_err(|e| ApiError::bad(format!("incomplete or altered object: {e}")))?;
        Ok(Received {
            header,
            size: self.size,
            summary,
        })
    }
}

/// The calling camera's row and signing key (uploads and live sessions).
pub(super) async fn uploading_camera(
    state: &AppState,
    camera_id: &[u8; 16],
) -> Result<(crate::store::CameraRow, CameraPublicKey), ApiError> {
    let camera = state
        .meta
        .camera(camera_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let key = CameraPublicKey::from_bytes(&camera.camera_key)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored camera key: {e}")))?;
    Ok((camera, key))
}

/// A retry of a committed upload: the stored object's summary (the camera compares the digest
/// with its own), or a conflict if another camera's object has this id.
async fn already_stored(
    state: &AppState,
    camera_id: &[u8; 16],
    object_id: &[u8; 16],
) -> Result<Option<Uploaded>, ApiError> {
    let Some(existing) = state.meta.object(object_id).await? else {
        return Ok(None);
    };
    if existing.camera_id != *camera_id {
        return Err(ApiError::Conflict(
            "another object with this id exists".into(),
        ));
    }
    Metrics::add(&state.metrics.uploads_repeated, 1);
    Ok(Some(uploaded(&existing, false)))
}

/// Where the partial upload of an object lives: per camera, so one camera cannot touch
/// another's upload.
fn upload_name(camera_id: &[u8; 16], object_id: &[u8; 16]) -> String {
    format!("{}-{}", hex::encode(camera_id), hex::encode(object_id))
}

/// Abandoned uploads one camera may leave to resume: an honest camera resumes the one it was
/// sending, so this only stops a camera (or its stolen credential) filling the disk with
/// partial objects, each up to `max_object_bytes`.
pub const MAX_ABANDONED_UPLOADS: usize = 16;

/// Refuses a new upload when its camera already left [`MAX_ABANDONED_UPLOADS`] partial uploads
/// unwritten for `abandoned_upload_secs`. Uploads in progress (and those just cut off by a
/// crash, which the camera is about to resume) are not abandoned; an object that has a partial
/// upload may always start over, since that adds nothing.
async fn abandoned_within_quota(
    state: &AppState,
    camera_id: &[u8; 16],
    name: &str,
) -> Result<(), ApiError> {
    if state.blobs.partial_len(name).await?.is_some() {
        return Ok(());
    }
    let idle = std::time::Duration::from_secs(state.config.abandoned_upload_secs);
    let abandoned = state
        .blobs
        .abandoned_count(&format!("{}-", hex::encode(camera_id)), idle)
        .await?;
    if abandoned >= MAX_ABANDONED_UPLOADS {
        return Err(ApiError::Conflict(format!(
            "this camera left {MAX_ABANDONED_UPLOADS} uploads unfinished: resume one \
             (Upload-Offset) before starting another; unfinished uploads are removed after a day"
        )));
    }
    Ok(())
}

/// The `Upload-Offset` request header: where this request's body continues a partial upload.
const UPLOAD_OFFSET: &str = "upload-offset";

/// Streams an object in, resuming a partial upload when `Upload-Offset` says so. A dropped
/// connection keeps what arrived, durably, for the camera to resume; a refused object leaves
/// nothing behind.
pub(super) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(object_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let camera_id = caller.camera()?;
    let object_id = id16(&object_id, "object id")?;
    let offset = match headers.get(UPLOAD_OFFSET) {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad("Upload-Offset must be a byte count"))?,
    };
    // Refused by its declared length before a byte is read; one sent without a length is
    // refused as it passes the limit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len.saturating_add(offset) > state.config.max_object_bytes) {
        return Err(ApiError::TooLarge(state.config.max_object_bytes));
    }
    let (camera, camera_key) = uploading_camera(&state, &camera_id).await?;
    let _slot = UploadSlot::take(object_id)?;
    if let Some(stored) = already_stored(&state, &camera_id, &object_id).await? {
        super::heads::keep_carried(&state, &camera_id, &camera_key, &headers).await?;
        return Ok((StatusCode::OK, Json(stored)));
    }
    let name = upload_name(&camera_id, &object_id);
    let mut rx = Receiver::new(
        state.config.max_object_bytes,
        &camera_key,
        &camera_id,
        &object_id,
    );
    let mut staged = if offset == 0 {
        abandoned_within_quota(&state, &camera_id, &name).await?;
        state.blobs.stage(&name).await?
    } else {
        let (staged, have) = state.blobs.resume(&name).await?.ok_or_else(|| {
            ApiError::Conflict("no partial upload of this object; start at offset 0".into())
        })?;
        if have != offset {
            staged.keep().await?;
            return Err(ApiError::Conflict(format!(
                "the partial upload holds {have} bytes; resume at that offset"
            )));
        }
        // Re-check what arrived before, so the verifier and digest cover the whole object.
        let mut earlier = state.blobs.read_partial(&name).await?;
        while let Some(chunk) = earlier.next().await {
            if let Err(e) = rx.feed(&chunk?) {
                staged.abort().await;
                return Err(e);
            }
        }
        staged
    };
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // The connection dropped: keep what arrived for the camera to resume.
                staged.keep().await?;
                return Err(ApiError::bad(format!(
                    "upload interrupted after {} bytes: {e}",
                    rx.size
                )));
            }
        };
        let fed = rx.feed(&chunk);
        let written = match fed {
            Ok(()) => staged.write(&chunk).await.map_err(ApiError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            staged.abort().await;
            Metrics::add(&state.metrics.uploads_refused, 1);
            return Err(e);
        }
    }
    let received = match rx.finish() {
        Ok(r) => r,
        Err(e) => {
            staged.abort().await;
            Metrics::add(&state.metrics.uploads_refused, 1);
            return Err(e);
        }
    };
    staged.commit(&object_id).await?;
    let (created, row) = record_object(&state, &camera, object_id, &received, offset).await?;
    super::heads::keep_carried(&state, &camera_id, &camera_key, &headers).await?;
    if created {
        state.announce(&camera, row.sequence).await;
        push_if_event(&state, &camera, &row);
    }
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(uploaded(&row, created)),
    ))
}

/// Adds the row for a committed object; returns whether it is new.
async fn record_object(
    state: &AppState,
    camera: &crate::store::CameraRow,
    object_id: [u8; 16],
    received: &Received,
    offset: u64,
) -> Result<(bool, ObjectRow), ApiError> {
    let camera_id = camera.camera_id;
    let h = &received.header;
    let row = ObjectRow {
        object_id,
        account_id: camera.account_id,
        camera_id,
        kind: match h.kind {
            ObjectKind::Clip => 1,
            ObjectKind::Event => 2,
            _ => 3,
        },
        sequence: as_i64(h.sequence, "sequence")?,
        epoch: i64::from(h.epoch),
        captured_at: as_i64(h.captured_at.0, "capture time")?,
        size: as_i64(received.size, "size")?,
        summary: received.summary.as_bytes().to_vec(),
        created_at: now_ms(),
    };
    let created = state.meta.insert_object(&row).await? == Inserted::New;
    if created {
        Metrics::add(&state.metrics.objects_stored, 1);
        Metrics::add(&state.metrics.object_bytes_stored, received.size);
    }
    tracing::info!(
        camera = hex::encode(camera_id),
        object = hex::encode(object_id),
        size = received.size,
        resumed_at = offset,
        "object stored"
    );
    Ok((created, row))
}

/// Largest body of a batch upload; larger objects go one by one, streamed and resumable.
pub const MAX_BATCH_BYTES: usize = keyhole_wire::batch::MAX_BYTES;

#[derive(Serialize)]
pub(super) struct BatchUploaded {
    objects: Vec<Uploaded>,
}

/// Several small sealed objects in one request (`u32 length ‖ object`, repeated), each checked
/// and stored exactly as a single upload would be: a battery camera sends a clip and its event
/// with one request. Objects before a refused one stay stored; a retry is idempotent.
pub(super) async fn upload_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<BatchUploaded>), ApiError> {
    let camera_id = caller.camera()?;
    let (camera, camera_key) = uploading_camera(&state, &camera_id).await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BATCH_BYTES as u64) {
        return Err(ApiError::TooLarge(MAX_BATCH_BYTES as u64));
    }
    let bytes = axum::body::to_bytes(body, MAX_BATCH_BYTES)
        .await
        .map_err(|e| ApiError::bad(format!("batch interrupted or over 8 MiB: {e}")))?;
    let mut objects = Vec::new();
    // The newest object stored, announced however the batch ends: those before a refused one
    // stay stored.
    let mut newest = None;
    let stored = store_batch(
        &state,
        &camera,
        &camera_key,
        &bytes,
        &mut objects,
        &mut newest,
    )
    .await;
    if let Some(sequence) = newest {
        state.announce(&camera, sequence).await;
    }
    stored?;
    super::heads::keep_carried(&state, &camera_id, &camera_key, &headers).await?;
    Ok((
        if newest.is_some() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(BatchUploaded { objects }),
    ))
}

/// Stores each object of a batch body in turn, adding what it answers to `objects` and
/// keeping in `newest` the highest sequence number newly stored.
async fn store_batch(
    state: &AppState,
    camera: &crate::store::CameraRow,
    camera_key: &CameraPublicKey,
    bytes: &[u8],
    objects: &mut Vec<Uploaded>,
    newest: &mut Option<i64>,
) -> Result<(), ApiError> {
    let camera_id = camera.camera_id;
    for object in keyhole_wire::batch::split(bytes).map_err(ApiError::bad)? {
        let object_id = Header::decode(object)
            .map_err(|e| ApiError::bad(format!("not a sealed object: {e}")))?
            .object_id
            .0;
        let _slot = UploadSlot::take(object_id)?;
        if let Some(stored) = already_stored(state, &camera_id, &object_id).await? {
            objects.push(stored);
            continue;
        }
        let mut rx = Receiver::new(
            state.config.max_object_bytes,
            camera_key,
            &camera_id,
            &object_id,
        );
        let received = rx.feed(object).and_then(|()| rx.finish());
        let received = match received {
            Ok(r) => r,
            Err(e) => {
                Metrics::add(&state.metrics.uploads_refused, 1);
                return Err(e);
            }
        };
        let mut staged = state
            .blobs
            .stage(&upload_name(&camera_id, &object_id))
            .await?;
        if let Err(e) = staged.write(object).await {
            staged.abort().await;
            return Err(e.into());
        }
        staged.commit(&object_id).await?;
        let (created, row) = record_object(state, camera, object_id, &received, 0).await?;
        if created {
            *newest = Some(newest.map_or(row.sequence, |n: i64| n.max(row.sequence)));
            push_if_event(state, camera, &row);
        }
        objects.push(uploaded(&row, created));
    }
    Ok(())
}

#[derive(Serialize)]
pub(super) struct UploadStatus {
    /// Whether the object is stored.
    stored: bool,
    /// Bytes of a partial upload to resume from (0 if none).
    offset: u64,
    /// Whether an upload of the object is still being received: a connection the camera saw
    /// drop may not have ended here yet, and until it has, the partial upload can still grow,
    /// so `offset` is not yet where to resume.
    in_progress: bool,
}

impl UploadSlot {
    /// Whether an upload of `id` holds its slot now.
    fn is_taken(id: &[u8; 16]) -> bool {
        in_progress()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }
}

/// Where a camera's upload of this object stands, so it can resume after a dropped connection.
pub(super) async fn upload_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(object_id): Path<String>,
) -> Result<Json<UploadStatus>, ApiError> {
    let camera_id = caller.camera()?;
    let object_id = id16(&object_id, "object id")?;
    if let Some(row) = state.meta.object(&object_id).await? {
        if row.camera_id != camera_id {
            return Err(ApiError::NotFound);
        }
        return Ok(Json(UploadStatus {
            stored: true,
            offset: u64::try_from(row.size).unwrap_or(0),
            in_progress: false,
        }));
    }
    // Asked first: a slot free now stays free until this camera's next upload takes it, and
    // the partial upload's length is then final.
    let in_progress = UploadSlot::is_taken(&object_id);
    let offset = state
        .blobs
        .partial_len(&upload_name(&camera_id, &object_id))
        .await?
        .unwrap_or(0);
    Ok(Json(UploadStatus {
        stored: false,
        offset,
        in_progress,
    }))
}

/// Pushes a newly stored event to the devices subscribed for it (`crate::push`).
fn push_if_event(state: &AppState, camera: &crate::store::CameraRow, row: &ObjectRow) {
    if row.kind == ObjectKind::Event.id() {
        state.push_event(camera, row.sequence);
    }
}

fn uploaded(row: &ObjectRow, created: bool) -> Uploaded {
    Uploaded {
        object_id: hex::encode(row.object_id),
        size: u64::try_from(row.size).unwrap_or(0),
        digest: ObjectSummary::decode(&row.summary)
            .ok()
            .map(|s| s.digest().to_string()),
        created,
    }
}

/// An object of a camera the calling device may view (its account's, or shared with it).
async fn viewable_object(
    state: &AppState,
    caller: &Caller,
    object_id: &str,
) -> Result<ObjectRow, ApiError> {
    caller.device()?;
    let id = id16(object_id, "object id")?;
    let row = state.meta.object(&id).await?.ok_or(ApiError::NotFound)?;
    super::shares::viewable(state, caller, &row.camera_id).await?;
    Ok(row)
}

/// An object the calling device's account owns.
async fn owned(state: &AppState, caller: &Caller, object_id: &str) -> Result<ObjectRow, ApiError> {
    caller.device()?;
    let id = id16(object_id, "object id")?;
    match state.meta.object(&id).await? {
        Some(row) if row.account_id == caller.0.account_id => Ok(row),
        _ => Err(ApiError::NotFound),
    }
}

/// The bytes a `Range` header selects from an object of `len` bytes.
fn byte_range(value: &str, len: u64) -> Result<std::ops::Range<u64>, ApiError> {
    use keyhole_wire::range::{RangeError, parse};
    parse(value, len).map_err(|e| match e {
        RangeError::Unsatisfiable => ApiError::RangeNotSatisfiable(len),
        other => ApiError::bad(other),
    })
}

pub(super) async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(object_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = viewable_object(&state, &caller, &object_id).await?;
    let len = u64::try_from(row.size).map_err(|e| ApiError::Internal(e.into()))?;
    let range = match headers.get(header::RANGE) {
        Some(v) => Some(byte_range(
            v.to_str().map_err(|_| ApiError::bad("malformed range"))?,
            len,
        )?),
        None => None,
    };
    let span = range.clone().unwrap_or(0..len);
    Metrics::add(&state.metrics.downloads, 1);
    let stream = state.blobs.read(&row.object_id, span.clone()).await?;
    let mut resp = Body::from_stream(stream).into_response();
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let v = format!("bytes {}-{}/{len}", span.start, span.end - 1);
        let v = v
            .parse()
            .map_err(|e: header::InvalidHeaderValue| ApiError::Internal(e.into()))?;
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(span.end - span.start),
    );
    Ok(resp)
}

pub(super) async fn remove(
    State(state): State<AppState>,
    Path(object_id): Path<String>,
    proven: super::proof::Proven,
) -> Result<StatusCode, ApiError> {
    let caller = &proven.caller;
    let row = owned(&state, caller, &object_id).await?;
    // Row first: a crash between the two leaves an orphan blob (reported by `check`), never a
    // listed object without its bytes.
    state.meta.delete_object(&row.object_id).await?;
    state.blobs.delete(&row.object_id).await?;
    let detail = format!(
        "object {} of camera {} (sequence {})",
        hex::encode(row.object_id),
        hex::encode(row.camera_id),
        row.sequence
    );
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(caller),
        "object-deleted",
        &detail,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only objects with a higher sequence number (default 0: from the start).
    after: Option<u64>,
    /// At most this many (default and maximum 1000).
    limit: Option<u64>,
    /// Only objects captured at or after this time (ms since the Unix epoch).
    since: Option<u64>,
    /// Only objects captured before this time (ms since the Unix epoch).
    until: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct Listed {
    object_id: String,
    kind: &'static str,
    sequence: i64,
    epoch: i64,
    captured_at: i64,
    size: i64,
    /// The object's summary (PROTOCOL.md §7.12) in base64, from which a device verifies its
    /// place in the chain without downloading it; absent for an object stored without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Listing {
    objects: Vec<Listed>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<i64>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Listing>, ApiError> {
    caller.device()?;
    let camera_id = id16(&camera_id, "camera id")?;
    super::shares::viewable(&state, &caller, &camera_id).await?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let captured = as_i64(q.since.unwrap_or(0), "since")?
        ..as_i64(q.until.unwrap_or(i64::MAX as u64), "until")?;
    let after = as_i64(q.after.unwrap_or(0), "after")?;
    let rows = state
        .meta
        .objects(&camera_id, after, captured, as_i64(limit, "limit")?)
        .await?;
    let next_after = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.sequence))
        .flatten();
    let objects = rows
        .into_iter()
        .map(|r| Listed {
            object_id: hex::encode(r.object_id),
            kind: match r.kind {
                1 => "clip",
                2 => "event",
                _ => "live",
            },
            sequence: r.sequence,
            epoch: r.epoch,
            captured_at: r.captured_at,
            size: r.size,
            summary: (!r.summary.is_empty()).then(|| STANDARD.encode(&r.summary)),
        })
        .collect();
    Ok(Json(Listing {
        objects,
        next_after,
    }))
}
