//! The built-in synthetic camera: a deterministic scene (a gradient, a running clock and a box
//! that moves while "someone is there") encoded to real H.264 with OpenH264, so the demo and the
//! tests need neither a camera nor ffmpeg.

use keyhole_media::h264::{self, AccessUnit, TIMESCALE};
use openh264::OpenH264API;
use openh264::encoder::{Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode};
use openh264::formats::YUVBuffer;

use super::VideoError;

/// What the synthetic camera films.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSettings {
    /// Picture width (a multiple of 16).
    pub width: u32,
    /// Picture height (a multiple of 16).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Frames between key frames.
    pub keyframe_interval: u32,
}

impl Default for SyntheticSettings {
    fn default() -> Self {
        Self {
            width: 320,
            height: 240,
            fps: 15,
            keyframe_interval: 15,
        }
    }
}

/// A synthetic camera producing one encoded access unit per call.
pub struct SyntheticCamera {
    settings: SyntheticSettings,
    encoder: Encoder,
    frame: u64,
    box_x: u32,
    moving: bool,
    yuv: Vec<u8>,
    /// An SEI NAL unit carrying the marker, written into every key frame.
    marker: Option<Vec<u8>>,
    /// The next frame is to be a key frame.
    key_frame_wanted: bool,
}

/// The longest marker, in bytes (one SEI payload-size byte).
pub const MAX_MARKER: usize = 200;

impl std::fmt::Debug for SyntheticCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticCamera")
            .field("settings", &self.settings)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl SyntheticCamera {
    /// Sets up the scene and the encoder.
    ///
    /// # Errors
    /// A picture size that is not a non-zero multiple of 16, or an encoder that fails to start.
    pub fn new(settings: SyntheticSettings) -> Result<Self, VideoError> {
        let SyntheticSettings {
            width,
            height,
            fps,
            keyframe_interval,
        } = settings;
        if width == 0 || height == 0 || width % 16 != 0 || height % 16 != 0 || width > 3840 {
            return Err(VideoError::Unsupported(format!(
                "synthetic picture {width}x{height}: use multiples of 16 up to 3840 wide"
            )));
        }
        if fps == 0 || fps > 60 || keyframe_interval == 0 {
            return Err(VideoError::Unsupported(format!(
                "synthetic frame rate {fps} / key frame interval {keyframe_interval}"
            )));
        }
        #[allow(clippy::cast_precision_loss)]
        let config = EncoderConfig::new()
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(keyframe_interval))
            // A fixed quantizer: every frame is encoded, none skipped for a bitrate.
            .rate_control_mode(RateControlMode::Off)
            .skip_frames(false);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Codec(e.to_string()))?;
        let luma = (width * height) as usize;
        Ok(Self {
            settings,
            encoder,
            frame: 0,
            box_x: 0,
            moving: false,
            yuv: vec![0; luma + luma / 2],
            marker: None,
            key_frame_wanted: false,
        })
    }

    /// The settings the camera was made with.
    #[must_use]
    pub fn settings(&self) -> SyntheticSettings {
        self.settings
    }

    /// Makes the next frame a key frame, as a camera's sensor and encoder powering up do.
    pub fn force_key_frame(&mut self) {
        self.key_frame_wanted = true;
    }

    /// Starts or stops the box moving: the scene's "visitor".
    pub fn set_motion(&mut self, moving: bool) {
        self.moving = moving;
    }

    /// Writes `marker` into every key frame as an H.264 SEI user-data message: players ignore
    /// it, but it is plain bytes in the stream, so tests (and `keyhole-demo`) can search
    /// everything a server stored or received for the video's plaintext.
    ///
    /// # Errors
    /// A marker longer than [`MAX_MARKER`] bytes or not printable ASCII (which keeps it free of
    /// start-code-like byte sequences).
    pub fn set_marker(&mut self, marker: &[u8]) -> Result<(), VideoError> {
        if marker.len() > MAX_MARKER || !marker.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(VideoError::Unsupported(format!(
                "a synthetic marker is at most {MAX_MARKER} printable ASCII characters"
            )));
        }
        // SEI (type 6), payload user_data_unregistered (5): a 16-byte UUID, the marker, and
        // the RBSP stop bit.
        let mut sei = vec![6, 5];
        sei.push(u8::try_from(16 + marker.len()).unwrap_or(u8::MAX));
        sei.extend_from_slice(b"keyhole-marker..");
        sei.extend_from_slice(marker);
        sei.push(0x80);
        self.marker = Some(sei);
        Ok(())
    }

    /// Ticks between frames.
    #[must_use]
    pub fn frame_ticks(&self) -> u64 {
        u64::from(TIMESCALE / self.settings.fps)
    }

    /// Renders and encodes the next frame.
    ///
    /// # Errors
    /// The encoder failing.
    pub fn next_frame(&mut self) -> Result<AccessUnit, VideoError> {
        self.render();
        let (w, h) = (self.settings.width as usize, self.settings.height as usize);
        let buffer = YUVBuffer::from_vec(self.yuv.clone(), w, h);
        if std::mem::take(&mut self.key_frame_wanted)
            || self
                .frame
                .is_multiple_of(u64::from(self.settings.keyframe_interval))
        {
            self.encoder.force_intra_frame();
        }
        let bits = self
            .encoder
            .encode(&buffer)
            .map_err(|e| VideoError::Codec(e.to_string()))?
            .to_vec();
        let mut nals: Vec<Vec<u8>> = h264::split_annex_b(&bits)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        let key = nals.iter().any(|n| h264::nal_type(n) == 5);
        if let (Some(sei), true, Some(slice)) = (&self.marker, key, nals.len().checked_sub(1)) {
            nals.insert(slice, sei.clone());
        }
        let au = AccessUnit::new(self.frame * self.frame_ticks(), nals);
        self.frame += 1;
        if self.moving {
            let span = self.settings.width - self.settings.width / 6;
            self.box_x = (self.box_x + self.settings.width / 40 + 1) % span;
        }
        Ok(au)
    }

    fn render(&mut self) {
        let (w, h) = (self.settings.width as usize, self.settings.height as usize);
        let (y_plane, chroma) = self.yuv.split_at_mut(w * h);
        for (row, line) in y_plane.chunks_exact_mut(w).enumerate() {
            let shade = u8::try_from(40 + row * 100 / h).unwrap_or(140);
            line.fill(shade);
        }
        chroma.fill(128);
        // The visitor: a bright box a sixth of the picture wide.
        let (bw, bh) = (w / 6, h / 4);
        let (bx, by) = (self.box_x as usize, h / 2);
        fill(y_plane, w, bx, by, bw, bh, 220);
        let (u_plane, v_plane) = chroma.split_at_mut(w * h / 4);
        fill(u_plane, w / 2, bx / 2, by / 2, bw / 2, bh / 2, 90);
        fill(v_plane, w / 2, bx / 2, by / 2, bw / 2, bh / 2, 200);
        // The clock: seconds and frames since start, in seven-segment digits.
        let fps = u64::from(self.settings.fps);
        let seconds = self.frame / fps;
        let text = format!(
            "{:02}{:02}{:02}{:02}",
            seconds / 3600 % 100,
            seconds / 60 % 60,
            seconds % 60,
            self.frame % fps
        );
        let size = (h / 12).max(8);
        for (i, digit) in text.bytes().enumerate() {
            let x = size / 2 + i * (size * 3 / 4) + (i / 2) * size / 3;
            draw_digit(y_plane, w, x, size / 2, size, digit - b'0');
        }
    }
}

fn fill(plane: &mut [u8], stride: usize, x: usize, y: usize, w: usize, h: usize, v: u8) {
    for row in y..y + h {
        if let Some(line) = plane.get_mut(row * stride + x..row * stride + x + w) {
            line.fill(v);
        }
    }
}

/// Seven-segment digit `d` with its top-left corner at (x, y), `size` pixels tall.
fn draw_digit(plane: &mut [u8], stride: usize, x: usize, y: usize, size: usize, d: u8) {
    // Segments a..g as bits 0..6.
    const SEGMENTS: [u8; 10] = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];
    let on = SEGMENTS.get(usize::from(d)).copied().unwrap_or(0);
    let (w, t, half) = (size / 2, (size / 8).max(1), size / 2);
    let bars = [
        (x, y, w, t),                   // a
        (x + w - t, y, t, half),        // b
        (x + w - t, y + half, t, half), // c
        (x, y + size - t, w, t),        // d
        (x, y + half, t, half),         // e
        (x, y, t, half),                // f
        (x, y + half - t / 2, w, t),    // g
    ];
    for (i, &(bx, by, bw, bh)) in bars.iter().enumerate() {
        if on & (1 << i) != 0 {
            fill(plane, stride, bx, by, bw, bh, 235);
        }
    }
}
