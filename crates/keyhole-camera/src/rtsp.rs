//! The RTSP source: an IP camera's H.264 stream over RTSP (interleaved TCP), depacketized by
//! `retina` into Annex B access units with the parameter sets on every key frame, and its sound
//! when it has some: AAC kept as it comes, G.711 (PCMU, PCMA) encoded as Opus on the camera.

use std::sync::Arc;

use futures_util::StreamExt;
use keyhole_media::aac::AacConfig;
use keyhole_media::audio::{AudioConfig, AudioFrame};
use keyhole_media::{AccessUnit, Codec, TIMESCALE, h264};
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use tokio::sync::mpsc;

use keyhole_sound::OpusEncoder;

use crate::sound::{Media, Sound};
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

/// What becomes of the camera's sound.
enum Hearing {
    /// AAC, passed through with the stream's configuration.
    Aac(Arc<AudioConfig>),
    /// G.711 at 8 kHz (μ-law or A-law), encoded as Opus.
    G711 { mu_law: bool, encoder: OpusEncoder },
}

impl Hearing {
    /// How the stream `encoding` with `config` (AAC's `AudioSpecificConfig`) at `clock` Hz is
    /// kept, or why it is not.
    fn of(encoding: &str, config: &[u8], clock: u32) -> Result<Self, String> {
        match encoding.to_ascii_lowercase().as_str() {
            "mpeg4-generic" => AacConfig::parse(config)
                .map(|c| Self::Aac(Arc::new(AudioConfig::Aac(c))))
                .map_err(|e| e.to_string()),
            "pcmu" | "pcma" if clock == 8000 => Ok(Self::G711 {
                mu_law: encoding.eq_ignore_ascii_case("pcmu"),
                encoder: OpusEncoder::new(8000, 24_000).map_err(|e| e.to_string())?,
            }),
            "pcmu" | "pcma" => Err(format!("G.711 at {clock} Hz")),
            other => Err(format!("{other} sound")),
        }
    }

    /// The sound frames made of `data`, which starts at `pts`.
    fn hear(&mut self, pts: u64, data: &[u8]) -> Vec<Sound> {
        match self {
            Self::Aac(config) => vec![Sound {
                config: config.clone(),
                frame: AudioFrame {
                    pts,
                    data: data.to_vec(),
                },
            }],
            Self::G711 { mu_law, encoder } => {
                let decode = if *mu_law {
                    keyhole_sound::from_mu_law
                } else {
                    keyhole_sound::from_a_law
                };
                let pcm: Vec<i16> = data.iter().copied().map(decode).collect();
                // An encoder failure loses this stretch of sound, never the pictures.
                Sound::encode(encoder, pts, &pcm).unwrap_or_default()
            }
        }
    }
}

/// Streams `url`'s first H.264 or H.265 video stream, and (`with_sound`) its first AAC or G.711
/// sound stream, into `tx` until the camera ends the session or the receiver goes away. Sound in
/// another codec is left out, said once in the log.
///
/// # Errors
/// A bad URL, a camera without H.264 or H.265 video, or a failed session.
pub async fn stream(
    url: String,
    with_sound: bool,
    tx: mpsc::Sender<Media>,
) -> Result<(), SourceError> {
    let parsed = url::Url::parse(&url).map_err(|e| one_line(format!("bad URL: {e}"), None))?;
    let password = parsed.password().map(str::to_owned);
    let rtsp = |e: retina::Error| one_line(e, password.as_deref());
    let mut session = Session::describe(parsed, SessionOptions::default())
        .await
        .map_err(rtsp)?;
    let (video, codec) = session
        .streams()
        .iter()
        .enumerate()
        .find_map(|(i, s)| {
            let name = s.encoding_name();
            if s.media() != "video" {
                None
            } else if name.eq_ignore_ascii_case("h264") {
                Some((i, Codec::H264))
            } else if name.eq_ignore_ascii_case("h265") {
                Some((i, Codec::H265))
            } else {
                None
            }
        })
        .ok_or_else(|| one_line("the camera offers no H.264 or H.265 video stream", None))?;
    let clock = session.streams()[video].clock_rate_hz().max(1);
    let options = || {
        SetupOptions::default()
            .transport(Transport::Tcp(
                retina::client::TcpTransportOptions::default(),
            ))
            .frame_format(FrameFormat::SIMPLE)
    };
    session.setup(video, options()).await.map_err(rtsp)?;
    let mut audio = None;
    let sound = session
        .streams()
        .iter()
        .position(|s| s.media() == "audio")
        .filter(|_| with_sound);
    if let Some(index) = sound {
        let stream = &session.streams()[index];
        let config = match stream.parameters() {
            Some(retina::codec::ParametersRef::Audio(p)) => p.extra_data().to_vec(),
            _ => Vec::new(),
        };
        let audio_clock = stream.clock_rate_hz().max(1);
        match Hearing::of(stream.encoding_name(), &config, audio_clock) {
            Ok(hearing) => {
                session.setup(index, options()).await.map_err(rtsp)?;
                audio = Some((index, audio_clock, hearing));
            }
            Err(why) => eprintln!("keyhole-camera: the camera's sound is not kept ({why})"),
        }
    }
    let mut frames = session
        .play(PlayOptions::default())
        .await
        .map_err(rtsp)?
        .demuxed()
        .map_err(rtsp)?;
    let send = |media| {
        !matches!(
            tx.try_send(media),
            Err(mpsc::error::TrySendError::Closed(_))
        )
    };
    // Key frames sent without their parameter sets get the stream's newest.
    let mut sets = h264::ParameterSets::default();
    while let Some(item) = frames.next().await {
        let frame = match item.map_err(rtsp)? {
            CodecItem::VideoFrame(frame) => frame,
            CodecItem::AudioFrame(frame) => {
                if let Some((index, audio_clock, hearing)) = &mut audio
                    && frame.stream_id() == *index
                {
                    let elapsed = u64::try_from(frame.timestamp().elapsed()).unwrap_or(0);
                    let pts = elapsed * u64::from(TIMESCALE) / u64::from(*audio_clock);
                    for sound in hearing.hear(pts, frame.data()) {
                        if !send(Media::Sound(sound)) {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            _ => continue,
        };
        let elapsed = u64::try_from(frame.timestamp().elapsed()).unwrap_or(0);
        let dts = elapsed * u64::from(TIMESCALE) / u64::from(clock);
        let nals = h264::split_annex_b(frame.data())
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        let mut au = AccessUnit::of(codec, dts, nals);
        sets.fill(&mut au);
        if !send(Media::Picture(au)) {
            break;
        }
    }
    Ok(())
}
