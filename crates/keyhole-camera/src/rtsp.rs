//! The RTSP source: an IP camera's H.264 stream over RTSP (interleaved TCP), depacketized by
//! `retina` into Annex B access units with the parameter sets on every key frame.

use futures_util::StreamExt;
use keyhole_media::{AccessUnit, TIMESCALE, h264};
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use tokio::sync::mpsc;

use crate::source::SourceError;

fn rtsp(e: impl std::fmt::Display) -> SourceError {
    SourceError::Rtsp(e.to_string())
}

/// Streams `url`'s first H.264 video stream into `tx` until the camera ends the session or the
/// receiver goes away.
///
/// # Errors
/// A bad URL, a camera without H.264 video, or a failed session.
pub async fn stream(url: String, tx: mpsc::Sender<AccessUnit>) -> Result<(), SourceError> {
    let parsed = url::Url::parse(&url).map_err(|e| rtsp(format!("bad URL: {e}")))?;
    let mut session = Session::describe(parsed, SessionOptions::default())
        .await
        .map_err(rtsp)?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
        .ok_or_else(|| rtsp("the camera offers no H.264 video stream"))?;
    let clock = session.streams()[video].clock_rate_hz().max(1);
    session
        .setup(
            video,
            SetupOptions::default()
                .transport(Transport::Tcp(
                    retina::client::TcpTransportOptions::default(),
                ))
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(rtsp)?;
    let mut frames = session
        .play(PlayOptions::default())
        .await
        .map_err(rtsp)?
        .demuxed()
        .map_err(rtsp)?;
    while let Some(item) = frames.next().await {
        let CodecItem::VideoFrame(frame) = item.map_err(rtsp)? else {
            continue;
        };
        let elapsed = u64::try_from(frame.timestamp().elapsed()).unwrap_or(0);
        let dts = elapsed * u64::from(TIMESCALE) / u64::from(clock);
        let nals = h264::split_annex_b(frame.data())
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        let au = AccessUnit::new(dts, nals);
        if matches!(tx.try_send(au), Err(mpsc::error::TrySendError::Closed(_))) {
            break;
        }
    }
    Ok(())
}
