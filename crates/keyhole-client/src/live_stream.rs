//! The opened plaintext of a live view, written out whole: the fragmented MP4 stream
//! (PROTOCOL.md §8.2) cut at its boxes, so what is written always plays, up to where it stops.
//! After frames that never arrived (this viewer fell behind at the relay), the stream is taken
//! up again at the next movie fragment, and pictures from the next key frame.

use std::io::Write;

use keyhole_media::mp4::{Mp4Error, Piece, Splitter};

/// The video's track in a live stream (the sound's is 2).
pub const VIDEO_TRACK: u32 = 1;

/// Writes a live view's stream, piece by piece.
#[derive(Debug)]
pub struct LiveStream {
    splitter: Splitter,
    /// Frames went missing: waiting for a frame that starts a movie fragment.
    lost: bool,
    /// Pictures wait for a key frame.
    waiting: bool,
}

impl Default for LiveStream {
    fn default() -> Self {
        Self {
            splitter: Splitter::new(),
            lost: false,
            waiting: false,
        }
    }
}

impl LiveStream {
    /// Takes the plaintext of the next opened frame, which came after `skipped` frames that
    /// never arrived; writes what it completes to `out` and returns how many bytes that was.
    ///
    /// # Errors
    /// A stream that is not fragmented MP4 (`InvalidData`), or a failed write.
    pub fn write(
        &mut self,
        plain: &[u8],
        skipped: u64,
        out: &mut (dyn Write + Send),
    ) -> std::io::Result<u64> {
        if skipped > 0 {
            self.splitter = Splitter::resumed();
            self.lost = true;
        }
        if self.lost {
            // Every movie fragment starts a frame of its own.
            if plain.get(4..8) != Some(b"moof".as_slice()) {
                return Ok(0);
            }
            self.lost = false;
            self.waiting = true;
        }
        let pieces = self
            .splitter
            .push(plain)
            .map_err(|e: Mp4Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut written = 0;
        for piece in pieces {
            if let Piece::Fragment { track, sync, .. } = &piece
                && self.waiting
            {
                if *track != VIDEO_TRACK || !*sync {
                    continue;
                }
                self.waiting = false;
            }
            out.write_all(piece.bytes())?;
            written += piece.bytes().len() as u64;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyhole_media::AccessUnit;
    use keyhole_media::audio::{AudioConfig, AudioFrame};
    use keyhole_media::mp4;
    use keyhole_media::opus::OpusConfig;

    const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    fn picture(n: u32, key: bool) -> Vec<u8> {
        let nals = if key {
            vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, 1]]
        } else {
            vec![vec![0x41, 0x9a, 2]]
        };
        mp4::fragment(n, &AccessUnit::new(u64::from(n) * 6000, nals), 6000).unwrap()
    }

    fn sound(n: u32, config: &AudioConfig) -> Vec<u8> {
        let frame = AudioFrame {
            pts: u64::from(n) * 1800,
            data: vec![31 << 3, 1],
        };
        mp4::audio_fragment(n, &frame, config).unwrap()
    }

    #[test]
    fn writes_whole_boxes_and_takes_the_stream_up_again_at_a_key_frame() {
        let config = AudioConfig::Opus(OpusConfig::new(1, 312, 48_000).unwrap());
        let init =
            mp4::fragmented_init(&mp4::VideoConfig::h264(&SPS, &PPS), Some(&config)).unwrap();
        let mut stream = LiveStream::default();
        let mut out = Vec::new();
        // The first frame: the initialization segment and a key frame, arriving in two halves.
        let first = [init.clone(), picture(1, true)].concat();
        let (a, b) = first.split_at(first.len() / 2);
        assert_eq!(
            stream.write(a, 0, &mut out).unwrap(),
            0,
            "nothing half-made"
        );
        assert_eq!(stream.write(b, 0, &mut out).unwrap(), first.len() as u64);
        let sound_2 = sound(2, &config);
        stream.write(&sound_2, 0, &mut out).unwrap();
        assert_eq!(out, [first.clone(), sound_2.clone()].concat());
        // Frames lost: the middle of a fragment is not taken up, nor sound or a picture before
        // the next key frame; the key frame is, and all after it.
        let picture_3 = picture(3, false);
        let written = out.len();
        stream.write(&picture_3[10..], 1, &mut out).unwrap();
        stream.write(&sound(4, &config), 0, &mut out).unwrap();
        stream.write(&picture(5, false), 0, &mut out).unwrap();
        assert_eq!(out.len(), written, "nothing until a key frame");
        let (key, after) = (picture(6, true), sound(7, &config));
        stream.write(&key, 0, &mut out).unwrap();
        stream.write(&after, 0, &mut out).unwrap();
        assert_eq!(out[written..], [key, after].concat());
        // Not MP4 at all.
        let mut other = LiveStream::default();
        let refused = other.write(&[0, 0, 0, 2, b'x', b'x', b'x', b'x'], 0, &mut Vec::new());
        assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    }
}
