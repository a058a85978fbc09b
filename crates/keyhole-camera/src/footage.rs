//! Where a clip's pictures and sound wait between capture and sealing. A [`ClipFile`] keeps them
//! on disk as MP4 samples, in the order they came, with only their times and sizes in memory, so
//! a minute of 1080p video costs kilobytes of memory rather than tens of megabytes; the MP4 file
//! is its [`mp4::head`] followed by the samples, streamed into the sealer. A `Vec` keeps the
//! pictures in memory (tests of cutting).
//!
//! Plaintext video never rests on the camera's storage, where a stolen camera's flash would
//! keep it after deletion: each sample is encrypted with a [`ScratchKey`] drawn for the clip and
//! held only in memory, so a clip file left by a crash or found on a stolen card is noise.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyhole_core::ObjectId;
use keyhole_core::envelope::Suite;
use keyhole_core::scratch::{ScratchKey, TAG_LEN};
use keyhole_media::AccessUnit;
use keyhole_media::audio::AudioConfig;
use keyhole_media::mp4::{self, Mp4Error, Sample, TrackKind, VideoConfig};
use rand_core::OsRng;

use crate::sound::Sound;
use crate::store::StoreError;

/// What holds a clip's pictures and sound while it is recorded.
pub trait Footage {
    /// Adds the next picture.
    fn append(&mut self, au: &AccessUnit);
    /// Adds the next frame of sound, which starts no earlier than the clip's first picture.
    fn append_sound(&mut self, sound: &Sound);
}

/// Pictures only: sound is not kept.
impl Footage for Vec<AccessUnit> {
    fn append(&mut self, au: &AccessUnit) {
        self.push(au.clone());
    }

    fn append_sound(&mut self, _: &Sound) {}
}

/// Why a clip could not be turned into MP4.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FootageError {
    /// Writing or reading the clip file failed.
    #[error("could not record a clip: {0}")]
    Store(#[from] StoreError),
    /// The pictures do not make an MP4 file.
    #[error("could not cut a clip into MP4: {0}")]
    Mp4(#[from] Mp4Error),
}

/// A file that is removed when dropped.
#[derive(Debug)]
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A clip being recorded to disk. Capture never waits on it: a write failure is kept and
/// reported by [`ClipFile::finish`].
#[derive(Debug)]
pub struct ClipFile {
    path: RemovedOnDrop,
    key: ScratchKey,
    writer: Result<BufWriter<File>, Option<std::io::Error>>,
    samples: Vec<Sample>,
    /// The codec and parameter sets, from the first key frame that carries them.
    video: Option<VideoConfig>,
    /// The sound's configuration: that of its first frame (a clip keeps one sound stream).
    sound: Option<Arc<AudioConfig>>,
    buf: Vec<u8>,
}

impl ClipFile {
    /// Starts a clip file in `dir`, which must exist, encrypted with `suite`.
    #[must_use]
    pub fn create(dir: &Path, suite: Suite) -> Self {
        let path = dir.join(format!("{}.clip", ObjectId::random(&mut OsRng)));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let writer = options
            .open(&path)
            .map(|f| BufWriter::with_capacity(64 << 10, f))
            .map_err(Some);
        Self {
            path: RemovedOnDrop(path),
            key: ScratchKey::new(suite, &mut OsRng),
            writer,
            samples: Vec::new(),
            video: None,
            sound: None,
            buf: Vec::new(),
        }
    }

    /// Removes clip files a stopped camera left in `dir` (creating it if missing).
    ///
    /// # Errors
    /// I/O failures.
    pub fn clear(dir: &Path) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: dir.to_owned(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        for item in fs::read_dir(dir).map_err(io)? {
            let path = item.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "clip") {
                fs::remove_file(&path).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Ends the clip: flushes it and lays out its MP4 file.
    ///
    /// # Errors
    /// A write that failed while recording, or pictures that do not make an MP4 file.
    pub fn finish(self) -> Result<FinishedClip, FootageError> {
        let io = |source| StoreError::Io {
            path: self.path.0.clone(),
            source,
        };
        // Flushed to the page cache, not synced: a clip file is worthless after a crash (its key
        // lived only in memory) and is read back at once, so an fsync would only wear the flash.
        match self.writer {
            Ok(writer) => drop(writer.into_inner().map_err(|e| io(e.into_error()))?),
            Err(e) => {
                return Err(io(e.unwrap_or_else(|| std::io::Error::other("write failed"))).into());
            }
        }
        let video = self
            .video
            .ok_or(Mp4Error::MissingParameterSet("sequence"))?;
        let head = mp4::head(&self.samples, &video, self.sound.as_deref())?;
        Ok(FinishedClip {
            path: self.path,
            key: self.key,
            head,
            samples: self.samples,
            video,
        })
    }
}

impl Footage for ClipFile {
    fn append(&mut self, au: &AccessUnit) {
        if self.writer.is_err() {
            return;
        }
        if self.video.is_none() {
            self.video = VideoConfig::find(std::slice::from_ref(au)).ok();
        }
        self.buf.clear();
        let sample = mp4::append_sample(au, &mut self.buf).and_then(|_| Sample::video(au));
        self.write(sample);
    }

    fn append_sound(&mut self, sound: &Sound) {
        let config = self.sound.get_or_insert_with(|| sound.config.clone());
        // A source whose sound changes mid-clip: the rest waits for the next clip.
        if *config != sound.config {
            return;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&sound.frame.data);
        let sample = Sample::audio(&sound.frame, &sound.config);
        self.write(sample);
    }
}

impl ClipFile {
    /// Seals the sample in `buf` as number `samples.len()` and writes it; a failure is kept
    /// for [`ClipFile::finish`].
    fn write(&mut self, sample: Result<Sample, Mp4Error>) {
        let Ok(writer) = &mut self.writer else {
            return;
        };
        let index = self.samples.len();
        let written = sample
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|sample| {
                self.key.seal(index as u64, &mut self.buf);
                writer.write_all(&self.buf).map(|()| sample)
            });
        match written {
            Ok(sample) => self.samples.push(sample),
            Err(e) => self.writer = Err(Some(e)),
        }
    }
}

/// A recorded clip on disk, ready to be read as an MP4 file; the file is removed when this is
/// dropped.
#[derive(Debug)]
pub struct FinishedClip {
    path: RemovedOnDrop,
    key: ScratchKey,
    head: Vec<u8>,
    samples: Vec<Sample>,
    video: VideoConfig,
}

impl FinishedClip {
    /// The samples' tracks, times, sizes and kinds, in the order they were recorded.
    #[must_use]
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Bytes of the MP4 file.
    #[must_use]
    pub fn mp4_len(&self) -> u64 {
        self.head.len() as u64 + self.samples.iter().map(|s| u64::from(s.size)).sum::<u64>()
    }

    /// The MP4 file, read from disk and decrypted as it goes.
    ///
    /// # Errors
    /// The clip file could not be opened.
    pub fn mp4(&self) -> Result<impl Read + Send + '_, StoreError> {
        Ok(Mp4Reader {
            clip: self,
            file: BufReader::new(self.open()?),
            next: 0,
            buf: self.head.clone(),
            at: 0,
        })
    }

    /// The pictures from sample number `from` on, read back from disk, each key frame preceded
    /// by the parameter sets; sound is passed over. Reading stops at the first failure.
    ///
    /// # Errors
    /// The clip file could not be opened or read.
    pub fn pictures(
        &self,
        from: usize,
    ) -> Result<impl Iterator<Item = AccessUnit> + '_, StoreError> {
        let mut file = BufReader::new(self.open()?);
        let skip: u64 = self
            .samples
            .iter()
            .take(from)
            .map(|s| u64::from(s.size) + TAG_LEN as u64)
            .sum();
        file.seek(std::io::SeekFrom::Start(skip))
            .map_err(|source| StoreError::Io {
                path: self.path.0.clone(),
                source,
            })?;
        let mut index = from;
        let samples = self.samples.iter().skip(from).map_while(move |sample| {
            let at = index;
            index += 1;
            if sample.track == TrackKind::Audio {
                let skip = i64::from(sample.size) + TAG_LEN as i64;
                return file.seek_relative(skip).ok().map(|()| None);
            }
            let mut bytes = Vec::new();
            self.read_sample(&mut file, at, &mut bytes).ok()?;
            let mut nals = Vec::new();
            if sample.keyframe {
                nals.extend(self.video.parameter_sets());
            }
            let mut rest = bytes.as_slice();
            while let Some((len, after)) = rest.split_first_chunk::<4>() {
                let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
                nals.push(after.get(..len)?.to_vec());
                rest = &after[len..];
            }
            let mut au = AccessUnit::of(self.video.codec(), sample.dts, nals);
            au.pts_offset = sample.pts_offset;
            au.keyframe = sample.keyframe;
            Some(Some(au))
        });
        Ok(samples.flatten())
    }

    /// Reads and decrypts sample `index` from `file`, positioned at it, into `buf`.
    fn read_sample(
        &self,
        file: &mut impl Read,
        index: usize,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let size = self
            .samples
            .get(index)
            .and_then(|s| usize::try_from(s.size).ok())
            .ok_or_else(|| std::io::Error::other("no such picture"))?;
        buf.resize(size + TAG_LEN, 0);
        file.read_exact(buf)?;
        self.key
            .open(index as u64, buf)
            .map_err(|_| std::io::Error::other("a recorded clip was altered on disk"))
    }

    fn open(&self) -> Result<File, StoreError> {
        File::open(&self.path.0).map_err(|source| StoreError::Io {
            path: self.path.0.clone(),
            source,
        })
    }
}

/// [`FinishedClip::mp4`]: the head, then each sample decrypted in turn.
struct Mp4Reader<'c> {
    clip: &'c FinishedClip,
    file: BufReader<File>,
    /// The next sample to load.
    next: usize,
    buf: Vec<u8>,
    at: usize,
}

impl Read for Mp4Reader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            if self.next == self.clip.samples.len() {
                return Ok(0);
            }
            self.clip
                .read_sample(&mut self.file, self.next, &mut self.buf)?;
            self.next += 1;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    fn pictures() -> Vec<AccessUnit> {
        (0..30u8)
            .map(|i| {
                let mut nals = Vec::new();
                if i % 10 == 0 {
                    nals.extend([SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, i]]);
                } else {
                    nals.push([&[0x41, 0x9a, i, i][..], b"picture bytes"].concat());
                }
                AccessUnit::new(u64::from(i) * 6000, nals)
            })
            .collect()
    }

    #[test]
    fn a_clip_file_is_the_same_mp4_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let aus = pictures();
        let mut clip = ClipFile::create(dir.path(), Suite::ChaCha20Poly1305);
        for au in &aus {
            clip.append(au);
        }
        let finished = clip.finish().unwrap();
        let on_disk = fs::read(&finished.path.0).unwrap();
        let secret = &aus[1].nals[0];
        assert!(
            !on_disk
                .windows(secret.len())
                .any(|w| w == secret.as_slice()),
            "no plaintext picture on disk"
        );
        let mut video = Vec::new();
        finished.mp4().unwrap().read_to_end(&mut video).unwrap();
        assert_eq!(video, mp4::write(&aus, None).unwrap());
        assert_eq!(finished.mp4_len(), video.len() as u64);
        let back: Vec<AccessUnit> = finished.pictures(10).unwrap().collect();
        assert_eq!(back, aus[10..]);
        let path = finished.path.0.clone();
        assert!(path.exists());
        drop(finished);
        assert!(!path.exists(), "removed once sealed");
    }

    #[test]
    fn an_altered_clip_file_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut clip = ClipFile::create(dir.path(), Suite::Aes256Gcm);
        for au in &pictures() {
            clip.append(au);
        }
        let finished = clip.finish().unwrap();
        let mut bytes = fs::read(&finished.path.0).unwrap();
        bytes[5] ^= 1; // inside the first picture
        fs::write(&finished.path.0, &bytes).unwrap();
        let mut video = Vec::new();
        let err = finished.mp4().unwrap().read_to_end(&mut video).unwrap_err();
        assert!(err.to_string().contains("altered"), "{err}");
        assert_eq!(finished.pictures(0).unwrap().count(), 0);
        assert_eq!(
            finished.pictures(10).unwrap().count(),
            20,
            "later samples still open"
        );
    }

    #[test]
    fn a_failed_clip_is_reported_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let mut clip = ClipFile::create(&missing, Suite::Aes256Gcm);
        clip.append(&pictures()[0]);
        assert!(matches!(clip.finish(), Err(FootageError::Store(_))));
        let mut clip = ClipFile::create(dir.path(), Suite::ChaCha20Poly1305);
        clip.append(&pictures()[1]);
        assert!(matches!(
            clip.finish(),
            Err(FootageError::Mp4(Mp4Error::MissingParameterSet(_)))
        ));
        fs::write(dir.path().join("left.clip"), b"x").unwrap();
        ClipFile::clear(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
