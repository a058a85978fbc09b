//! Decoding for motion detection and thumbnails: OpenH264 turns access units back into pictures,
//! from which we keep a small grey image and, for the frame that triggered an event, a JPEG.

use keyhole_media::AccessUnit;
use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig};
use openh264::formats::YUVSource;

use super::VideoError;

/// Width of the thumbnail sealed with each event, in pixels.
pub const THUMBNAIL_WIDTH: usize = 320;

/// A picture reduced to a small grid of luma averages, for motion detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaGrid {
    /// Cells across.
    pub cols: usize,
    /// Cells down.
    pub rows: usize,
    /// Mean luma per cell, row by row.
    pub cells: Vec<u8>,
}

/// A decoded picture kept in its planes (Y, then U and V at half resolution).
#[derive(Debug, Clone)]
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Full-resolution RGB, three bytes per pixel.
    pub rgb: Vec<u8>,
    /// The luma grid of this picture.
    pub grid: LumaGrid,
}

/// Stateful H.264 decoder (P-frames need the pictures before them).
pub struct FrameDecoder {
    decoder: Decoder,
    cols: usize,
    rows: usize,
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder").finish_non_exhaustive()
    }
}

impl FrameDecoder {
    /// A decoder reducing pictures to a `cols` × `rows` luma grid.
    ///
    /// # Errors
    /// The decoder failing to start.
    pub fn new(cols: usize, rows: usize) -> Result<Self, VideoError> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| VideoError::Codec(e.to_string()))?;
        Ok(Self {
            decoder,
            cols: cols.max(1),
            rows: rows.max(1),
        })
    }

    /// Decodes one access unit; `want_rgb` also converts it to RGB (for a thumbnail). `None`
    /// when the decoder has no picture yet (before the first key frame).
    ///
    /// # Errors
    /// Corrupt video the decoder refuses.
    pub fn decode(
        &mut self,
        au: &AccessUnit,
        want_rgb: bool,
    ) -> Result<Option<Picture>, VideoError> {
        let (cols, rows) = (self.cols, self.rows);
        let Some(yuv) = self
            .decoder
            .decode(&au.to_annex_b())
            .map_err(|e| VideoError::Codec(e.to_string()))?
        else {
            return Ok(None);
        };
        Ok(Some(picture(&yuv, cols, rows, want_rgb)))
    }
}

fn picture(yuv: &DecodedYUV<'_>, cols: usize, rows: usize, want_rgb: bool) -> Picture {
    let (width, height) = yuv.dimensions();
    let (stride, _, _) = yuv.strides();
    let y = yuv.y();
    let mut sums = vec![0u64; cols * rows];
    let mut counts = vec![0u64; cols * rows];
    // Sample every second pixel of every second row: enough for a 64-cell-wide grid.
    for row in (0..height).step_by(2) {
        let cell_row = row * rows / height.max(1);
        for col in (0..width).step_by(2) {
            let cell = cell_row * cols + col * cols / width.max(1);
            if let (Some(v), Some(s), Some(c)) = (
                y.get(row * stride + col),
                sums.get_mut(cell),
                counts.get_mut(cell),
            ) {
                *s += u64::from(*v);
                *c += 1;
            }
        }
    }
    let cells = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| u8::try_from(s / (*c).max(1)).unwrap_or(u8::MAX))
        .collect();
    let rgb = if want_rgb {
        let mut rgb = vec![0; width * height * 3];
        yuv.write_rgb8(&mut rgb);
        rgb
    } else {
        Vec::new()
    };
    Picture {
        width,
        height,
        rgb,
        grid: LumaGrid { cols, rows, cells },
    }
}

/// A JPEG of `picture` scaled down to [`THUMBNAIL_WIDTH`] (never up).
///
/// # Errors
/// A picture without RGB data, or the encoder failing.
pub fn thumbnail_jpeg(picture: &Picture) -> Result<Vec<u8>, VideoError> {
    let (w, h) = (picture.width, picture.height);
    if w == 0 || h == 0 || picture.rgb.len() != w * h * 3 {
        return Err(VideoError::Codec("no picture for a thumbnail".into()));
    }
    let tw = THUMBNAIL_WIDTH.min(w);
    let th = (h * tw / w).max(1);
    let mut small = Vec::with_capacity(tw * th * 3);
    for row in 0..th {
        let src_row = row * h / th;
        for col in 0..tw {
            let at = (src_row * w + col * w / tw) * 3;
            small.extend_from_slice(&picture.rgb[at..at + 3]);
        }
    }
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 75);
    let (tw16, th16) = (
        u16::try_from(tw).map_err(|_| VideoError::Codec("thumbnail too wide".into()))?,
        u16::try_from(th).map_err(|_| VideoError::Codec("thumbnail too tall".into()))?,
    );
    encoder
        .encode(&small, tw16, th16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| VideoError::Codec(e.to_string()))?;
    Ok(out)
}
