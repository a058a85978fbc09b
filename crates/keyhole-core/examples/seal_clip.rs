//! Does a camera's per-clip work on a clip file `count` times, with fixed keys and a seeded RNG
//! so that every run executes the same instructions: `seal` streams the file through the sealer
//! (64 KiB reads) into a sealed file; `record` first writes it to a scratch file in 64 KiB
//! pieces under a [`ScratchKey`] and seals from that, as the camera agent records a clip to
//! disk and seals it. Under an instruction counter, runs with `count` 0 and 1 give the cost of
//! one clip (scripts/arm-instructions.sh).
//!
//! Usage: `seal_clip <seal|record> <clip.mp4> <aes|chacha> <count> <work folder>`

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, SealParams, Sealer, Suite,
};
use keyhole_core::scratch::{ScratchKey, TAG_LEN};
use keyhole_core::{CameraId, CameraKey, HpkeSecretKey, ObjectId, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PIECE: usize = 64 << 10;

type Error = Box<dyn std::error::Error>;
/// Fills its argument with the next plaintext piece; false at the end.
type NextPiece = dyn FnMut(&mut Vec<u8>) -> Result<bool, Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, clip, suite, count, dir] = args.as_slice() else {
        eprintln!("usage: seal_clip <seal|record> <clip.mp4> <aes|chacha> <count> <work folder>");
        return ExitCode::from(2);
    };
    let record = match mode.as_str() {
        "seal" => false,
        "record" => true,
        other => {
            eprintln!("unknown mode {other:?}: seal or record");
            return ExitCode::from(2);
        }
    };
    let suite = match suite.as_str() {
        "aes" => Suite::Aes256Gcm,
        "chacha" => Suite::ChaCha20Poly1305,
        other => {
            eprintln!("unknown suite {other:?}: aes or chacha");
            return ExitCode::from(2);
        }
    };
    let Ok(count) = count.parse::<u64>() else {
        eprintln!("count must be a number");
        return ExitCode::from(2);
    };
    match run(record, Path::new(clip), suite, count, Path::new(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seal_clip: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(record: bool, clip: &Path, suite: Suite, count: u64, dir: &Path) -> Result<(), Error> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let camera = CameraKey::generate(&mut rng);
    let viewing = HpkeSecretKey::generate(&mut rng).public();
    let (scratch, sealed) = (dir.join("scratch"), dir.join("sealed"));
    let mut piece = Vec::with_capacity(PIECE + TAG_LEN);
    let mut out = Vec::with_capacity(2 * PIECE);
    for sequence in 1..=count {
        let mut input = BufReader::new(File::open(clip)?);
        let mut next_piece: Box<NextPiece> = if record {
            // The clip goes to disk encrypted first; piece sizes stay in memory, as the
            // agent keeps its samples' sizes.
            let key = ScratchKey::new(suite, &mut rng);
            let mut lens = Vec::new();
            let mut file = File::create(&scratch)?;
            loop {
                piece.resize(PIECE, 0);
                let n = fill(&mut input, &mut piece)?;
                if n == 0 {
                    break;
                }
                piece.truncate(n);
                key.seal(lens.len() as u64, &mut piece);
                file.write_all(&piece)?;
                lens.push(n);
            }
            drop(file);
            let mut input = BufReader::new(File::open(&scratch)?);
            let mut lens = (0u64..).zip(lens);
            Box::new(move |piece| {
                let Some((number, len)) = lens.next() else {
                    return Ok(false);
                };
                piece.resize(len + TAG_LEN, 0);
                input.read_exact(piece)?;
                key.open(number, piece)?;
                Ok(true)
            })
        } else {
            Box::new(move |piece| {
                piece.resize(PIECE, 0);
                let n = fill(&mut input, piece)?;
                piece.truncate(n);
                Ok(n > 0)
            })
        };
        let mut sealer = start(suite, sequence, &viewing, &camera, &mut rng, &mut out)?;
        let mut file = File::create(&sealed)?;
        while next_piece(&mut piece)? {
            sealer.update(&piece, &mut out);
            file.write_all(&out)?;
            out.clear();
        }
        let _summary = sealer.finish(&mut out);
        file.write_all(&out)?;
        out.clear();
        file.sync_all()?;
    }
    Ok(())
}

fn start<'k>(
    suite: Suite,
    sequence: u64,
    viewing: &keyhole_core::HpkePublicKey,
    camera: &'k CameraKey,
    rng: &mut ChaCha20Rng,
    out: &mut Vec<u8>,
) -> Result<Sealer<'k>, keyhole_core::codec::DecodeError> {
    let params = SealParams {
        kind: ObjectKind::Clip,
        suite,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id: CameraId([1; 16]),
        object_id: ObjectId::random(rng),
        epoch: 1,
        sequence,
        previous: ObjectDigest([0; 32]),
        captured_at: Timestamp(1_790_000_000_000),
    };
    Sealer::new(params, viewing, camera, rng, out)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match input.read(&mut buf[at..])? {
            0 => break,
            n => at += n,
        }
    }
    Ok(at)
}
