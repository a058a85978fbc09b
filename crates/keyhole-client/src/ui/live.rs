//! Live view in the page: the fragmented MP4 stream a live view delivers, passed on to the page
//! piece by piece.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use keyhole_media::mp4::{Piece, Splitter};
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::Viewer;
use crate::live_stream::VIDEO_TRACK;

/// Receives the opened stream (whole boxes, from [`crate::live_stream::LiveStream`]) and sends
/// the page the initialization segment with the first fragment, then each fragment. A page too
/// slow to keep up misses fragments up to the next key frame (never the camera waiting on it);
/// a page that left ends the view.
pub(super) struct FragmentSink {
    tx: Sender<Result<Vec<u8>, std::io::Error>>,
    splitter: Splitter,
    /// The initialization segment, until it goes with the first key frame.
    init: Option<Vec<u8>>,
    /// Dropping fragments until the next key frame (before the first, or after a miss).
    skipping: bool,
}

impl FragmentSink {
    pub(super) fn new(tx: Sender<Result<Vec<u8>, std::io::Error>>) -> Self {
        Self {
            tx,
            splitter: Splitter::new(),
            init: None,
            skipping: true,
        }
    }

    fn piece(&mut self, piece: Piece) -> std::io::Result<()> {
        let (bytes, key) = match piece {
            Piece::Init(bytes) => {
                self.init = Some(bytes);
                return Ok(());
            }
            Piece::Fragment { bytes, track, sync } => (bytes, track == VIDEO_TRACK && sync),
        };
        if self.skipping && !key {
            return Ok(());
        }
        let bytes = match &self.init {
            Some(init) if self.skipping => [init.as_slice(), &bytes].concat(),
            _ => bytes,
        };
        match self.tx.try_send(Ok(bytes)) {
            Ok(()) => {
                self.skipping = false;
                self.init = None;
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.skipping = true;
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the page stopped watching",
            )),
        }
    }
}

impl std::io::Write for FragmentSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let pieces = self
            .splitter
            .push(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        for piece in pieces {
            self.piece(piece)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How far behind the camera the page's live view is (as of the camera's last checkpoint), for
/// the page to show.
pub(super) async fn status(
    State(viewer): State<Arc<Viewer>>,
    Path(camera): Path<String>,
) -> Response {
    let lag = viewer
        .live
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&camera)
        .copied()
        .flatten();
    axum::Json(serde_json::json!({
        "lag_ms": lag,
        "delayed": lag.is_some_and(|l| l > crate::owner::LIVE_LAG_LIMIT_MS),
    }))
    .into_response()
}

/// Longest a live view from the viewer lasts; the page asks again to go on.
const LIVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Live view as a fragmented MP4 stream (an initialization segment, then one fragment per
/// picture or sound frame), which the page plays through Media Source Extensions. The session is verified and
/// opened here frame by frame, exactly as `keyhole live` does.
pub(super) async fn live(
    State(viewer): State<Arc<Viewer>>,
    Path(camera): Path<String>,
) -> Response {
    let Some(camera) = viewer.camera(&camera).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(256);
    tokio::spawn(async move {
        let mut sink = FragmentSink::new(tx.clone());
        let owner = viewer.owner.read().await;
        let key = camera.to_string();
        // The camera's time this view sees, for talking back while it runs.
        let time = Arc::new(crate::talk::CameraTime::default());
        viewer
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone(), time.clone());
        let mut progress = |outcome: &crate::LiveOutcome| {
            time.saw(outcome);
            viewer
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.clone(), outcome.lag_ms);
        };
        let watched = owner
            .watch_live_with(&camera, 30, Some(LIVE_LIMIT), &mut sink, &mut progress)
            .await;
        {
            let mut times = viewer
                .times
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if times.get(&key).is_some_and(|t| Arc::ptr_eq(t, &time)) {
                times.remove(&key);
            }
        }
        // The page shows a failed stream as stopped, not ended; a viewer that left is not
        // told anything.
        match watched {
            Err(e) => {
                let _ = tx.try_send(Err(std::io::Error::other(e.to_string())));
            }
            Ok(outcome) if outcome.cut => {
                let _ = tx.try_send(Err(std::io::Error::other(
                    "the live view was cut off before the camera ended it",
                )));
            }
            Ok(_) => {}
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(header::CONTENT_TYPE, "video/mp4")],
        Body::from_stream(body),
    )
        .into_response()
}
