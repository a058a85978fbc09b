//! Live view through the relay.

use std::time::Duration;

use tokio::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use keyhole_core::envelope::{ObjectKind, PREFIX_LEN, TAG_LEN, verify_prefix};
use keyhole_core::live::FRAME_HEADER_LEN;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::extract::QueryParams;
use super::id16;
use crate::AppState;
use crate::auth::Caller;
use crate::cluster::RELAYED_HEADER;
use crate::error::ApiError;
use crate::relay::{Joined, REMOTE_INTEREST};

#[derive(Serialize)]
pub(super) struct Published {
    frames: u64,
}

/// The camera's side: the request body is the session prefix followed by frames
/// (`index ‖ length ‖ sealed fragment`), streamed for as long as the session lasts.
pub(super) async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Json<Published>, ApiError> {
    let camera_id = caller.camera()?;
    let (_, key) = super::objects::uploading_camera(&state, &camera_id).await?;
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut publisher = None;
    let mut max_body = 0usize;
    let mut frames = 0u64;
    loop {
        let chunk = tokio::select! {
            chunk = stream.next() => chunk,
            () = state.relay.closed() => None,
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| ApiError::bad(format!("live stream interrupted: {e}")))?;
        buf.extend_from_slice(&chunk);
        if publisher.is_none() {
            if buf.len() < PREFIX_LEN {
                continue;
            }
            let prefix = buf.split_to(PREFIX_LEN).freeze();
            let header = verify_prefix(&prefix, &key)
                .map_err(|e| ApiError::bad(format!("not a live session of this camera: {e}")))?;
            if header.kind != ObjectKind::Live || header.camera_id.0 != camera_id {
                return Err(ApiError::bad(
                    "the header is not a live session of this camera",
                ));
            }
            max_body = header.chunk_size() + TAG_LEN;
            publisher = Some(state.relay.publish(camera_id, prefix));
            if let Some(cluster) = &state.cluster {
                cluster.live(camera_id).await;
            }
        }
        while buf.len() >= FRAME_HEADER_LEN {
            let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
            if !(TAG_LEN..=max_body).contains(&len) {
                return Err(ApiError::bad("live frame length out of range"));
            }
            if buf.len() < FRAME_HEADER_LEN + len {
                break;
            }
            let frame: Bytes = buf.split_to(FRAME_HEADER_LEN + len).freeze();
            if let Some(p) = &publisher {
                p.send(frame);
            }
            frames += 1;
        }
    }
    if let Some(cluster) = state.cluster.as_ref().filter(|_| publisher.is_some()) {
        drop(publisher);
        cluster.ended(camera_id).await;
    }
    Ok(Json(Published { frames }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchQuery {
    /// How long to wait for the camera to start, in seconds (default 30, at most 120).
    wait_secs: Option<u64>,
    /// The viewer's nonce (16 bytes, hex), passed to the camera for its checkpoints to name.
    nonce: Option<String>,
    /// The viewer's proof that it holds the viewing key (32 bytes, hex; PROTOCOL.md §8.2.2),
    /// passed to the camera, which checks it.
    proof: Option<String>,
}

/// A device's side: the session prefix, then frames as they arrive; frames this viewer was too
/// slow for are skipped, which the viewer sees as gaps in the frame indexes. With several
/// servers, a session running on another one is fetched from it and passed on.
pub(super) async fn watch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<WatchQuery>,
) -> Result<Response, ApiError> {
    let camera_id = super::shares::reachable(&state, &caller, &camera_id).await?;
    let deadline = Instant::now() + Duration::from_secs(q.wait_secs.unwrap_or(30).min(120));
    let nonce = q.nonce.as_deref().map(|n| id16(n, "nonce")).transpose()?;
    let proof = q
        .proof
        .as_deref()
        .map(|p| {
            hex::decode(p)
                .ok()
                .filter(|p| p.len() == 32)
                .ok_or_else(|| ApiError::bad("proof must be 64 hex digits"))
        })
        .transpose()?;
    let request = nonce
        .zip(proof.clone())
        .map(|(n, p)| [&n[..], &p[..]].concat());
    // Counted from now until the viewer leaves: the camera starts streaming for it (if its
    // request proves it holds the key).
    let viewer = state.relay.viewer(camera_id, request);
    // A request from another server is answered from this server's sessions alone.
    let cluster = state
        .cluster
        .clone()
        .filter(|_| !headers.contains_key(RELAYED_HEADER));
    loop {
        if let Some(cluster) = &cluster {
            cluster.want(camera_id).await;
        }
        // Waits in slices shorter than the other servers' memory of a remote viewer.
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(REMOTE_INTEREST / 2);
        let joined = state
            .relay
            .subscribe(camera_id, slice, cluster.is_none())
            .await;
        match (joined, &cluster) {
            (Some(Joined::Here(prefix, rx)), _) => {
                return Ok(stream_response(local_stream(&state, prefix, rx, viewer)));
            }
            (Some(Joined::There(url)), Some(cluster)) => {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .ok_or(ApiError::Unauthorized)?;
                if let Some(remote) = cluster
                    .fetch(&url, camera_id, authorization, nonce.zip(proof.clone()))
                    .await
                {
                    let relay = state.relay.clone();
                    let frames = remote
                        .bytes_stream()
                        .map(|r| r.map_err(std::io::Error::other));
                    let frames = frames.take_until(async move { relay.closed().await });
                    // The guard moves into the stream: the viewer counts here for as long as
                    // it watches there.
                    let frames = frames.inspect(move |_| {
                        let _ = &viewer;
                    });
                    return Ok(stream_response(frames.boxed()));
                }
                state.relay.ended_elsewhere(camera_id, &url);
            }
            _ => {}
        }
        if Instant::now() >= deadline || state.relay.is_closing() {
            return Err(ApiError::NotFound);
        }
    }
}

type FrameStream = futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

fn stream_response(body: FrameStream) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// The prefix, then this server's frames until the session or the server ends.
fn local_stream(
    state: &AppState,
    prefix: Bytes,
    rx: tokio::sync::broadcast::Receiver<Bytes>,
    viewer: crate::relay::Viewer,
) -> FrameStream {
    let relay = state.relay.clone();
    let frames = futures_util::stream::unfold((rx, viewer), move |(mut rx, viewer)| {
        let relay = relay.clone();
        async move {
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    () = relay.closed() => return None,
                };
                match received {
                    Ok(frame) => return Some((Ok::<_, std::io::Error>(frame), (rx, viewer))),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    futures_util::stream::once(async move { Ok(prefix) })
        .chain(frames)
        .boxed()
}

#[derive(Serialize)]
pub(super) struct Wanted {
    wanted: bool,
    /// The requests this server's viewers of the camera sent (hex, nonce ‖ proof).
    requests: Vec<String>,
}

/// The camera's side: whether a device wants its live view, waiting up to `wait_secs` (default
/// 30, at most 120) for one to. A camera streams live only while this says yes.
pub(super) async fn wanted(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<WatchQuery>,
) -> Result<Json<Wanted>, ApiError> {
    let camera_id = caller.camera()?;
    let wait = Duration::from_secs(q.wait_secs.unwrap_or(30).min(120));
    let wanted = state.relay.wanted(camera_id, wait).await;
    Ok(Json(Wanted {
        wanted,
        requests: state
            .relay
            .requests(camera_id)
            .iter()
            .map(hex::encode)
            .collect(),
    }))
}
