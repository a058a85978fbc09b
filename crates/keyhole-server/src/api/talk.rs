//! Talking back through a camera (PROTOCOL.md §8.4), relayed unopened.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;
use keyhole_core::talk::{HEADER_LEN, TalkHeader};
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use crate::AppState;
use crate::auth::Caller;
use crate::cluster::RELAYED_HEADER;
use crate::error::ApiError;
use crate::talk_relay::PICK_UP;

#[derive(Serialize)]
pub(super) struct Talked {
    /// Bytes passed to the camera.
    bytes: u64,
}

/// A device's side: the body is a talk session (header, then frames) streamed while the device
/// talks. Answered once the camera has been given all of it, or refused if the camera does not
/// pick it up within [`PICK_UP`], or while another device talks through it. With several
/// servers, a camera live on another one listens there, and the stream is passed on to it.
pub(super) async fn talk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(camera_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let camera_id = super::shares::reachable(&state, &caller, &camera_id).await?;
    if let Some(cluster) = state
        .cluster
        .as_ref()
        .filter(|_| !headers.contains_key(RELAYED_HEADER))
        && let Some(url) = state.relay.live_at(camera_id)
    {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let answer = cluster
            .forward_talk(&url, camera_id, authorization, body)
            .await
            .ok_or_else(not_heard)?;
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| ApiError::Conflict(format!("the camera's server: {e}")))?;
        return Ok((status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response());
    }
    let talking = state
        .talk
        .offer(camera_id)
        .map_err(|_| ApiError::Conflict("another device is talking through this camera".into()))?;
    let mut stream = body.into_data_stream();
    // The header, until it is whole and checked.
    let mut head = Some(BytesMut::new());
    let mut bytes = 0u64;
    loop {
        let chunk = tokio::select! {
            chunk = tokio::time::timeout(PICK_UP, stream.next()) => chunk
                .map_err(|_| ApiError::bad("the talk stream went quiet"))?,
            () = state.relay.closed() => return Err(ApiError::Conflict("the server is stopping".into())),
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| ApiError::bad(format!("talk stream interrupted: {e}")))?;
        // The header is checked before anything reaches the camera: the wrong camera's stream
        // is refused here rather than there.
        let chunk = match head.take() {
            Some(mut start) => {
                start.extend_from_slice(&chunk);
                if start.len() < HEADER_LEN {
                    head = Some(start);
                    continue;
                }
                let header = TalkHeader::decode(&start[..HEADER_LEN])
                    .map_err(|e| ApiError::bad(format!("not a talk session: {e}")))?;
                if header.camera_id.0 != camera_id {
                    return Err(ApiError::bad("the talk session is for another camera"));
                }
                start.freeze()
            }
            None => chunk,
        };
        bytes += chunk.len() as u64;
        if !talking.send(chunk).await {
            return Err(not_heard());
        }
    }
    if head.is_some() {
        return Err(ApiError::bad("the talk stream ended inside its header"));
    }
    // Answered when the camera was given all of it.
    if !talking.finish().await {
        return Err(not_heard());
    }
    Ok(Json(Talked { bytes }).into_response())
}

fn not_heard() -> ApiError {
    ApiError::Conflict(
        "the camera did not take the talk stream (is it online, with a speaker set up?), or \
         stopped reading it"
            .into(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenQuery {
    /// How long to wait for a talk stream, in seconds (default 30, at most 120).
    wait_secs: Option<u64>,
}

/// The camera's side: the next talk stream for it as the device sends it, or 204 if none came
/// within `wait_secs`.
pub(super) async fn listen(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListenQuery>,
) -> Result<Response, ApiError> {
    let camera_id = caller.camera()?;
    let wait = Duration::from_secs(q.wait_secs.unwrap_or(30).min(120));
    let taken = tokio::select! {
        taken = state.talk.take(camera_id, wait) => taken,
        () = state.relay.closed() => None,
    };
    let Some(listening) = taken else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let relay = state.relay.clone();
    let body = futures_util::stream::unfold(Some(listening), move |listening| {
        let relay = relay.clone();
        async move {
            let mut listening = listening?;
            tokio::select! {
                chunk = listening.from_device.recv() => match chunk {
                    Some(chunk) => Some((Ok::<_, std::io::Error>(chunk), Some(listening))),
                    None => {
                        // All of it was given to the camera.
                        let _ = listening.heard_out.send(());
                        None
                    }
                },
                () = relay.closed() => None,
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(body),
    )
        .into_response())
}
