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
