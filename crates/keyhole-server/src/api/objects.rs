//! Sealed objects: streaming upload (idempotent by object id, visible only once committed),
//! listing by camera, ranged download and deletion.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use keyhole_core::CameraPublicKey;
use keyhole_core::envelope::{Header, ObjectKind, ObjectVerifier, PREFIX_LEN};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{as_i64, id16};
use crate::auth::Caller;
use crate::blobs::StagedBlob;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{Inserted, ObjectRow};
use crate::{AppState, audit, now_ms};

#[derive(Serialize)]
pub(super) struct Uploaded {
    object_id: String,
    size: u64,
    sha256: String,
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

struct Received {
    header: Header,
    size: u64,
    sha256: [u8; 32],
}

/// Streams the body into `staged`, checking the header signature as soon as the header has
/// arrived and the camera's trailer signature over the whole object at the end. Only an object
/// exactly as the camera sealed it is accepted.
async fn receive(
    state: &AppState,
    staged: &mut dyn StagedBlob,
    body: Body,
    camera_key: &CameraPublicKey,
    camera_id: &[u8; 16],
    object_id: &[u8; 16],
) -> Result<Received, ApiError> {
    let max = state.config.max_object_bytes;
    let mut stream = body.into_data_stream();
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    let mut verifier: Option<ObjectVerifier> = None;
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("upload interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(ApiError::TooLarge(max));
        }
        hasher.update(&chunk);
        staged.write(&chunk).await?;
        let rest = match verifier.as_mut() {
            Some(v) => {
                v.update(&chunk);
                continue;
            }
            None => {
                let need = PREFIX_LEN - prefix.len();
                prefix.extend_from_slice(&chunk[..need.min(chunk.len())]);
                &chunk[need.min(chunk.len())..]
            }
        };
        if prefix.len() == PREFIX_LEN {
            let mut v = ObjectVerifier::new(&prefix, camera_key)
                .map_err(|e| ApiError::bad(format!("not a sealed object from this camera: {e}")))?;
            let h = v.header();
            if h.object_id.0 != *object_id || h.camera_id.0 != *camera_id {
                return Err(ApiError::bad(
                    "the sealed header names another object or camera",
                ));
            }
            if h.kind == ObjectKind::Live {
                return Err(ApiError::bad(
                    "live sessions go through the relay, not storage",
                ));
            }
            v.update(rest);
            verifier = Some(v);
        }
    }
    let verifier =
        verifier.ok_or_else(|| ApiError::bad("upload ends inside the object's header"))?;
    let header = verifier.header().clone();
    verifier
        .finish()
        .map_err(|e| ApiError::bad(format!("incomplete or altered object: {e}")))?;
    Ok(Received {
        header,
        size,
        sha256: hasher.finalize().into(),
    })
}

pub(super) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(object_id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let camera_id = caller.camera()?;
    let object_id = id16(&object_id, "object id")?;
    let camera = state
        .meta
        .camera(&camera_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let camera_key = CameraPublicKey::from_bytes(&camera.camera_key)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored camera key: {e}")))?;
    let _slot = UploadSlot::take(object_id)?;
    if let Some(existing) = state.meta.object(&object_id).await? {
        // A retry of a committed upload: the camera compares the digest with its own.
        if existing.camera_id != camera_id {
            return Err(ApiError::Conflict(
                "another object with this id exists".into(),
            ));
        }
        Metrics::add(&state.metrics.uploads_repeated, 1);
        return Ok((StatusCode::OK, Json(uploaded(&existing, false))));
    }
    let mut staged = state.blobs.stage().await?;
    let received = match receive(
        &state,
        staged.as_mut(),
        body,
        &camera_key,
        &camera_id,
        &object_id,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            staged.abort().await;
            Metrics::add(&state.metrics.uploads_refused, 1);
            return Err(e);
        }
    };
    staged.commit(&object_id).await?;
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
        sha256: received.sha256,
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
        "object stored"
    );
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(uploaded(&row, created)),
    ))
}

fn uploaded(row: &ObjectRow, created: bool) -> Uploaded {
    Uploaded {
        object_id: hex::encode(row.object_id),
        size: u64::try_from(row.size).unwrap_or(0),
        sha256: hex::encode(row.sha256),
        created,
    }
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

/// Parses a single `bytes=` range against an object of `len` bytes.
fn parse_range(value: &str, len: u64) -> Result<std::ops::Range<u64>, ApiError> {
    let spec = value
        .strip_prefix("bytes=")
        .ok_or_else(|| ApiError::bad("only byte ranges are supported"))?;
    if spec.contains(',') {
        return Err(ApiError::bad("only one range per request is supported"));
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| ApiError::bad("malformed range"))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| ApiError::bad("malformed range"))
    };
    let range = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => len.saturating_sub(num(b)?)..len,
        (false, true) => num(a)?..len,
        (false, false) => num(a)?..num(b)?.saturating_add(1).min(len),
        (true, true) => return Err(ApiError::bad("malformed range")),
    };
    if range.start >= range.end {
        return Err(ApiError::RangeNotSatisfiable(len));
    }
    Ok(range)
}

pub(super) async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(object_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = owned(&state, &caller, &object_id).await?;
    let len = u64::try_from(row.size).map_err(|e| ApiError::Internal(e.into()))?;
    let range = match headers.get(header::RANGE) {
        Some(v) => Some(parse_range(
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
    caller: Caller,
    Path(object_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = owned(&state, &caller, &object_id).await?;
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
        &audit::actor(&caller),
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
}

#[derive(Serialize)]
pub(super) struct Listed {
    object_id: String,
    kind: &'static str,
    sequence: i64,
    epoch: i64,
    captured_at: i64,
    size: i64,
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
    Query(q): Query<ListQuery>,
) -> Result<Json<Listing>, ApiError> {
    caller.device()?;
    let camera_id = id16(&camera_id, "camera id")?;
    match state.meta.camera(&camera_id).await? {
        Some(c) if c.account_id == caller.0.account_id => {}
        _ => return Err(ApiError::NotFound),
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let after = as_i64(q.after.unwrap_or(0), "after")?;
    let rows = state
        .meta
        .objects(&camera_id, after, as_i64(limit, "limit")?)
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
        })
        .collect();
    Ok(Json(Listing {
        objects,
        next_after,
    }))
}
