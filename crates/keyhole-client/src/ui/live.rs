//! Live view in the page: the H.264 stream a live view delivers, turned into fragmented MP4.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use keyhole_media::h264::{AccessUnit, AnnexBReader, TIMESCALE, nal};
use keyhole_media::mp4;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::Viewer;

/// Receives the opened H.264 stream (Annex B, in pieces of any size) and sends the page an
/// initialization segment, then a fragment per picture, stamped with when it arrived. A page
/// too slow to keep up misses pictures up to the next key frame (never the camera waiting on
/// it); a page that left ends the view.
pub(super) struct FragmentSink {
    tx: Sender<Result<Vec<u8>, std::io::Error>>,
    reader: AnnexBReader,
    started: Option<Instant>,
    last_dts: Option<u64>,
    sequence: u32,
    /// Dropping pictures until the next key frame (before the first, or after a miss).
    skipping: bool,
}

impl FragmentSink {
    pub(super) fn new(tx: Sender<Result<Vec<u8>, std::io::Error>>) -> Self {
        Self {
            tx,
            // Times come from arrival, not from this.
            reader: AnnexBReader::new(1),
            started: None,
            last_dts: None,
            sequence: 0,
            skipping: true,
        }
    }

    fn picture(&mut self, mut au: AccessUnit) -> std::io::Result<()> {
        let mut init = None;
        if self.skipping {
            if !au.keyframe {
                return Ok(());
            }
            if self.sequence == 0 {
                let (Some(sps), Some(pps)) = (au.find(nal::SPS), au.find(nal::PPS)) else {
                    return Ok(());
                };
                init = Some(mp4::fragmented_init(sps, pps, None).map_err(std::io::Error::other)?);
            }
            self.skipping = false;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let now = u64::try_from(started.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(TIMESCALE))
            / 1_000_000;
        // Strictly increasing decode times, whatever the arrival times.
        au.dts = self.last_dts.map_or(now, |last| now.max(last + 1));
        let duration = self.last_dts.map_or(TIMESCALE / 15, |last| {
            u32::try_from(au.dts - last).unwrap_or(u32::MAX)
        });
        self.last_dts = Some(au.dts);
        self.sequence += 1;
        let mut bytes = init.unwrap_or_default();
        bytes.extend(mp4::fragment(self.sequence, &au, duration).map_err(std::io::Error::other)?);
        match self.tx.try_send(Ok(bytes)) {
            Ok(()) => Ok(()),
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
        for au in self.reader.push(buf) {
            self.picture(au)?;
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
/// picture), which the page plays through Media Source Extensions. The session is verified and
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
        let mut progress = |outcome: &crate::LiveOutcome| {
            viewer
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.clone(), outcome.lag_ms);
        };
        let watched = owner
            .watch_live_with(&camera, 30, Some(LIVE_LIMIT), &mut sink, &mut progress)
            .await;
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
