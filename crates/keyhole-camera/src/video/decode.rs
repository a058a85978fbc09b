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

/// What is kept of a decoded picture.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// When asked for: the picture scaled down to [`THUMBNAIL_WIDTH`] (never up), RGB, three
    /// bytes per pixel, made straight from the decoder's planes (a full-size RGB copy of a
    /// 1080p picture would be 6 MB).
    pub small: Option<SmallPicture>,
    /// The luma grid of this picture.
    pub grid: LumaGrid,
}

/// A picture scaled down for a thumbnail.
#[derive(Debug, Clone)]
pub struct SmallPicture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGB, three bytes per pixel, row by row.
    pub rgb: Vec<u8>,
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

    /// Decodes one access unit; `want_small` also keeps a small RGB copy (for a thumbnail).
    /// `None` when the decoder has no picture yet (before the first key frame).
    ///
    /// # Errors
    /// Corrupt video the decoder refuses.
    pub fn decode(
        &mut self,
        au: &AccessUnit,
        want_small: bool,
    ) -> Result<Option<Picture>, VideoError> {
        Ok(self.decode_frame(au)?.map(|f| f.picture(want_small)))
    }

    /// Decodes one access unit and lends its picture until the next call, so what is kept of
    /// it can be decided afterwards (a thumbnail, once it is known that an event began here).
    ///
    /// # Errors
    /// Corrupt video the decoder refuses.
    pub fn decode_frame(&mut self, au: &AccessUnit) -> Result<Option<Frame<'_>>, VideoError> {
        // OpenH264 decodes H.264 only; an H.265 picture gives no frame.
        if au.codec != keyhole_media::Codec::H264 {
            return Ok(None);
        }
        let (cols, rows) = (self.cols, self.rows);
        let yuv = self
            .decoder
            .decode(&au.to_annex_b())
            .map_err(|e| VideoError::Codec(e.to_string()))?;
        Ok(yuv.map(|yuv| Frame { yuv, cols, rows }))
    }
}

/// A decoded picture, lent by [`FrameDecoder::decode_frame`].
pub struct Frame<'d> {
    yuv: DecodedYUV<'d>,
    cols: usize,
    rows: usize,
}

impl Frame<'_> {
    /// What is kept of it: the luma grid, and with `want_small` a small RGB copy.
    #[must_use]
    pub fn picture(&self, want_small: bool) -> Picture {
        picture(&self.yuv, self.cols, self.rows, want_small)
    }
}

fn picture(yuv: &DecodedYUV<'_>, cols: usize, rows: usize, want_small: bool) -> Picture {
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
    Picture {
        width,
        height,
        small: want_small.then(|| small_picture(yuv)),
        grid: LumaGrid { cols, rows, cells },
    }
}

/// The picture scaled down to [`THUMBNAIL_WIDTH`] by picking the nearest pixel, converted from
/// BT.601 limited-range YUV 4:2:0 (what H.264 cameras send) to RGB.
fn small_picture(yuv: &DecodedYUV<'_>) -> SmallPicture {
    let (w, h) = yuv.dimensions();
    let (y_stride, u_stride, v_stride) = yuv.strides();
    let (y, u, v) = (yuv.y(), yuv.u(), yuv.v());
    let width = THUMBNAIL_WIDTH.min(w).max(1);
    let height = (h * width / w.max(1)).max(1);
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in 0..height {
        let sy = row * h / height;
        for col in 0..width {
            let sx = col * w / width;
            let at = |plane: &[u8], stride: usize, x: usize, y: usize| {
                i32::from(plane.get(y * stride + x).copied().unwrap_or(128))
            };
            let c = at(y, y_stride, sx, sy) - 16;
            let d = at(u, u_stride, sx / 2, sy / 2) - 128;
            let e = at(v, v_stride, sx / 2, sy / 2) - 128;
            let clamp = |x: i32| u8::try_from(((x + 128) >> 8).clamp(0, 255)).unwrap_or(u8::MAX);
            rgb.extend_from_slice(&[
                clamp(298 * c + 409 * e),
                clamp(298 * c - 100 * d - 208 * e),
                clamp(298 * c + 516 * d),
            ]);
        }
    }
    SmallPicture { width, height, rgb }
}

/// A JPEG of `picture`'s small copy.
///
/// # Errors
/// A picture decoded without its small copy, or the encoder failing.
pub fn thumbnail_jpeg(picture: &Picture) -> Result<Vec<u8>, VideoError> {
    let small = picture
        .small
        .as_ref()
        .filter(|s| s.rgb.len() == s.width * s.height * 3)
        .ok_or_else(|| VideoError::Codec("no picture for a thumbnail".into()))?;
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 75);
    let (w, h) = (
        u16::try_from(small.width).map_err(|_| VideoError::Codec("thumbnail too wide".into()))?,
        u16::try_from(small.height).map_err(|_| VideoError::Codec("thumbnail too tall".into()))?,
    );
    encoder
        .encode(&small.rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| VideoError::Codec(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::synthetic::{SyntheticCamera, SyntheticSettings};

    #[test]
    fn the_small_copy_matches_the_full_picture() {
        let mut camera = SyntheticCamera::new(SyntheticSettings::default()).unwrap();
        let frame = camera.next_frame().unwrap();
        let mut decoder = FrameDecoder::new(4, 4).unwrap();
        let yuv = decoder
            .decoder
            .decode(&frame.to_annex_b())
            .unwrap()
            .unwrap();
        let (w, h) = yuv.dimensions();
        let mut full = vec![0; w * h * 3];
        yuv.write_rgb8(&mut full);
        let small = small_picture(&yuv);
        assert_eq!(small.width, THUMBNAIL_WIDTH.min(w));
        assert_eq!(small.height, h * small.width / w);
        let mut worst = 0;
        for row in 0..small.height {
            for col in 0..small.width {
                let (sx, sy) = (col * w / small.width, row * h / small.height);
                for c in 0..3 {
                    let a = i32::from(small.rgb[(row * small.width + col) * 3 + c]);
                    let b = i32::from(full[(sy * w + sx) * 3 + c]);
                    worst = worst.max((a - b).abs());
                }
            }
        }
        assert!(worst <= 4, "colours differ by up to {worst}");
        let picture = picture(&yuv, 4, 4, true);
        let jpeg = thumbnail_jpeg(&picture).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        assert!(thumbnail_jpeg(&super::picture(&yuv, 4, 4, false)).is_err());
    }
}
