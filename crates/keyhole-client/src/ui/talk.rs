//! Push-to-talk on the live page: the page sends the microphone's sound here as raw PCM while
//! the button is held, and this device encodes, seals and sends it to the camera exactly as
//! `keyhole talk` does, naming the camera time its live view here saw (PROTOCOL.md §8.4).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Viewer, failed_text};

/// Bytes of PCM the page may have in flight to a talk before it waits.
const PIPE: usize = 1 << 18;
/// How long a talk waits for the page's live view to show the camera's time.
const WAIT_SECS: u64 = 10;

/// One talk from the page: where its sound goes, and the task sending it on.
pub(super) struct PageTalk {
    sound: tokio::io::DuplexStream,
    sending: tokio::task::JoinHandle<Result<crate::talk::TalkOutcome, String>>,
}

#[derive(Deserialize)]
pub(super) struct StartRequest {
    /// Samples a second of the PCM to come.
    rate: u32,
}

/// Starts talking through `camera`, whose live view the page is showing.
pub(super) async fn start(
    State(viewer): State<Arc<Viewer>>,
    Path(id): Path<String>,
    axum::Json(request): axum::Json<StartRequest>,
) -> Response {
    let Some(camera) = viewer.camera(&id).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(seen) = viewer.camera_time(&id) else {
        return failed_text(
            StatusCode::CONFLICT,
            "Talking needs the camera's live view: open it first.",
        );
    };
    let mut talks = viewer.talks.lock().await;
    if talks.contains_key(&id) {
        return failed_text(StatusCode::CONFLICT, "This page is talking already.");
    }
    let (sound, mut heard) = tokio::io::duplex(PIPE);
    let owner = viewer.clone();
    let sending = tokio::spawn(async move {
        let owner = owner.owner.read().await;
        owner
            .talk_seeing(&camera, &mut heard, request.rate, &seen, WAIT_SECS)
            .await
            .map_err(|e| e.to_string())
    });
    talks.insert(id, PageTalk { sound, sending });
    StatusCode::NO_CONTENT.into_response()
}

/// The next piece of sound: raw signed 16-bit little-endian mono PCM.
pub(super) async fn sound(
    State(viewer): State<Arc<Viewer>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut talks = viewer.talks.lock().await;
    let Some(talk) = talks.get_mut(&id) else {
        return failed_text(StatusCode::CONFLICT, "Not talking: press the button again.");
    };
    // A talk that failed stops taking sound; its error comes with the end.
    if talk.sending.is_finished() || talk.sound.write_all(&body).await.is_err() {
        return failed_text(
            StatusCode::CONFLICT,
            "The talk stopped: release the button.",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Ends the talk: what the camera was sent, or why it failed.
pub(super) async fn end(State(viewer): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let Some(talk) = viewer.talks.lock().await.remove(&id) else {
        return failed_text(StatusCode::CONFLICT, "Not talking.");
    };
    drop(talk.sound);
    match talk.sending.await {
        Ok(Ok(outcome)) => axum::Json(serde_json::json!({
            "packets": outcome.packets,
            "said_ms": outcome.packets * 20,
        }))
        .into_response(),
        Ok(Err(e)) => failed_text(StatusCode::BAD_GATEWAY, &e),
        Err(e) => failed_text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
