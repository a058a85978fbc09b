//! The RTSP source: an IP camera's H.264 stream over RTSP (interleaved TCP), depacketized by
//! `retina` into Annex B access units with the parameter sets on every key frame.

use futures_util::StreamExt;
use keyhole_media::{AccessUnit, TIMESCALE, h264};
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use tokio::sync::mpsc;

use crate::source::SourceError;

/// `e` as one line for the log and the owner's alert: its first line, at most 300 characters,
/// with the camera's password (if the URL has one) masked.
fn one_line(e: impl std::fmt::Display, password: Option<&str>) -> SourceError {
    let text = e.to_string();
    let mut line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        line = line.replace(password, "***");
    }
    SourceError::Rtsp(line)
}

/// Streams `url`'s first H.264 video stream into `tx` until the camera ends the session or the
/// receiver goes away.
///
/// # Errors
/// A bad URL, a camera without H.264 video, or a failed session.
pub async fn stream(url: String, tx: mpsc::Sender<AccessUnit>) -> Result<(), SourceError> {
    let parsed = url::Url::parse(&url).map_err(|e| one_line(format!("bad URL: {e}"), None))?;
    let password = parsed.password().map(str::to_owned);
    let rtsp = |e: retina::Error| one_line(e, password.as_deref());
    let mut session = Session::describe(parsed, SessionOptions::default())
        .await
        .map_err(rtsp)?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
        .ok_or_else(|| one_line("the camera offers no H.264 video stream", None))?;
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
