//! Playing a clip: range reads a player can seek with, bound to what the camera sealed.
//!
//! Each chunk a read opens is authentic under the camera-signed clip key, but anyone holding
//! the clip key (every device of the epoch, members, a revoked device) can make such chunks
//! (PROTOCOL.md §7.7). So while the player reads, the whole clip is streamed once in the
//! background and checked against the camera's trailer signature, recording each chunk's
//! digest; every chunk read before that ends is compared with those digests when it ends, and
//! every chunk read after it, before it is opened. Only then is the clip [`Playback::Verified`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use keyhole_core::envelope::{
    ChunkDigester, ChunkDigests, DEFAULT_CHUNK_LOG2, Header, Layout, ObjectKind, ObjectVerifier,
    Opener, PREFIX_LEN, SignedHeader, TAG_LEN, digest_chunk,
};
use keyhole_core::{CameraPublicKey, HpkeSecretKey, ObjectId};

use crate::ClientError;
use crate::api::Api;
use crate::owner::untrusted;

/// Sealed bytes fetched after the header when a clip is opened: one chunk and its tag at the
/// default chunk size.
const HEAD_FETCH: u64 = (1 << DEFAULT_CHUNK_LOG2) + TAG_LEN as u64;

/// Most plaintext one [`ClipReader::read`] returns.
pub const MAX_CLIP_READ: u64 = 4 << 20;

/// Where the check of a clip being played stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playback {
    /// The whole clip is still being checked; what was read so far opened under the
    /// camera-signed clip key.
    Checking,
    /// The whole clip verified under the camera's signature, and every chunk read is one of
    /// its chunks.
    Verified,
    /// The clip, or a chunk served for playback, is not what the camera sealed.
    Tampered(String),
    /// The whole clip could not be fetched to check it (the network or the server failed).
    Unchecked(String),
}

#[derive(Debug)]
struct Binding {
    playback: Playback,
    /// The chunk digests, once the whole clip verified.
    digests: Option<ChunkDigests>,
    /// Digests of the chunks read before then.
    read: BTreeMap<u64, [u8; 32]>,
}

impl Binding {
    fn lock(binding: &Mutex<Self>) -> std::sync::MutexGuard<'_, Self> {
        binding.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes chunk `index` as read: refused if the clip is known tampered or the chunk is not
    /// the one verified; otherwise remembered until the check ends.
    fn take(&mut self, index: u64, sealed_chunk: &[u8]) -> Result<(), ClientError> {
        if let Playback::Tampered(why) = &self.playback {
            return Err(untrusted(why));
        }
        match &self.digests {
            Some(digests) if !digests.matches(index, sealed_chunk) => {
                let why = not_sealed(index);
                self.playback = Playback::Tampered(why.clone());
                Err(untrusted(why))
            }
            Some(_) => Ok(()),
            None => {
                self.read.insert(index, digest_chunk(sealed_chunk));
                Ok(())
            }
        }
    }

    /// The background check's outcome, against the chunks read meanwhile.
    fn settle(&mut self, checked: Result<ChunkDigests, Playback>) {
        match checked {
            Ok(digests) => {
                let swapped = self
                    .read
                    .iter()
                    .find(|(i, d)| digests.get(**i) != Some(*d))
                    .map(|(i, _)| *i);
                self.playback = match swapped {
                    Some(index) => Playback::Tampered(not_sealed(index)),
                    None => Playback::Verified,
                };
                self.digests = Some(digests);
                self.read.clear();
            }
            Err(outcome) => {
                if !matches!(self.playback, Playback::Tampered(_)) {
                    self.playback = outcome;
                }
            }
        }
    }
}

fn not_sealed(index: u64) -> String {
    format!(
        "tampered: chunk {index} served for playback is not the chunk the camera sealed (made \
         by a holder of the clip key)"
    )
}

/// A clip opened for reading at any offset (a player seeking): its header verified once, then
/// only the chunks a read needs are fetched by range and opened, each bound to the clip the
/// camera sealed (see the module's documentation).
#[derive(Debug)]
pub struct ClipReader {
    api: Api,
    path: String,
    opener: Opener,
    layout: Layout,
    /// The sealed bytes fetched with the header (from offset `PREFIX_LEN` on): the first chunk
    /// at the usual chunk size, so a player's first read needs no second request.
    head: Vec<u8>,
    binding: Arc<Mutex<Binding>>,
    /// Told when the background check ends.
    settled: Arc<tokio::sync::Notify>,
    check: tokio::task::AbortHandle,
}

impl Drop for ClipReader {
    fn drop(&mut self) {
        self.check.abort();
    }
}

impl ClipReader {
    /// Opens `object` with the camera's key and this device's viewing keys, and starts the
    /// background check of the whole clip.
    pub(crate) async fn open(
        api: &Api,
        object: &ObjectId,
        camera_key: &CameraPublicKey,
        viewing: &BTreeMap<u32, HpkeSecretKey>,
    ) -> Result<Self, ClientError> {
        let path = format!("/v1/objects/{object}");
        // The header and, in the same request, the first chunk a player will ask for.
        let (mut fetched, sealed_len) = api
            .get_range(&path, 0..PREFIX_LEN as u64 + HEAD_FETCH)
            .await?;
        if fetched.len() < PREFIX_LEN {
            return Err(untrusted(format!(
                "object {object} is shorter than a header"
            )));
        }
        let head = fetched.split_off(PREFIX_LEN);
        let signed = SignedHeader::verify(&fetched, camera_key).map_err(untrusted)?;
        let header = signed.header().clone();
        if header.object_id != *object || header.kind != ObjectKind::Clip {
            return Err(untrusted(format!(
                "object {object} is not that camera's clip"
            )));
        }
        let viewing = viewing
            .get(&header.epoch)
            .ok_or_else(|| untrusted(format!("no viewing key for epoch {}", header.epoch)))?;
        let layout = Layout::new(&header, sealed_len).map_err(untrusted)?;
        let opener = Opener::from_signed(signed, viewing).map_err(untrusted)?;
        let binding = Arc::new(Mutex::new(Binding {
            playback: Playback::Checking,
            digests: None,
            read: BTreeMap::new(),
        }));
        let settled = Arc::new(tokio::sync::Notify::new());
        let check = tokio::spawn(check_whole(
            api.clone(),
            path.clone(),
            *camera_key,
            header,
            (binding.clone(), settled.clone()),
        ))
        .abort_handle();
        Ok(Self {
            api: api.clone(),
            path,
            opener,
            layout,
            head,
            binding,
            settled,
            check,
        })
    }

    /// The clip's plaintext length (the MP4's size).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.layout.plaintext_len()
    }

    /// Whether the clip is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The authenticated header.
    #[must_use]
    pub fn header(&self) -> &Header {
        self.opener.header()
    }

    /// Where the check of the whole clip, and of every chunk read, stands.
    #[must_use]
    pub fn playback(&self) -> Playback {
        Binding::lock(&self.binding).playback.clone()
    }

    /// Waits for the background check to end and returns its outcome.
    pub async fn checked(&self) -> Playback {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.playback();
            if now != Playback::Checking {
                return now;
            }
            notified.await;
        }
    }

    /// Plaintext bytes `range` (clamped to the clip and to [`MAX_CLIP_READ`]: fewer bytes
    /// than asked for may come back, never other bytes).
    ///
    /// # Errors
    /// Server or network failures, or [`ClientError::Untrusted`] if a chunk does not open, is
    /// not the chunk the camera sealed, or the clip was found tampered.
    pub async fn read(&self, range: std::ops::Range<u64>) -> Result<Vec<u8>, ClientError> {
        let end = range
            .end
            .min(self.len())
            .min(range.start.saturating_add(MAX_CLIP_READ));
        if range.start >= end {
            return Ok(Vec::new());
        }
        let (Some(first), Some(last)) = (
            self.layout.chunk_at(range.start),
            self.layout.chunk_at(end - 1),
        ) else {
            return Ok(Vec::new());
        };
        let (Some(from), Some(to)) = (
            self.layout.chunk_range(first),
            self.layout.chunk_range(last),
        ) else {
            return Ok(Vec::new());
        };
        let in_head = |at: u64| {
            at.checked_sub(PREFIX_LEN as u64)
                .and_then(|i| usize::try_from(i).ok())
        };
        let cached = in_head(from.start)
            .zip(in_head(to.end))
            .and_then(|(a, b)| self.head.get(a..b));
        let sealed = match cached {
            Some(bytes) => bytes.to_vec(),
            None => self.api.get_range(&self.path, from.start..to.end).await?.0,
        };
        let mut plain = Vec::with_capacity(usize::try_from(end - range.start).unwrap_or(0));
        let mut at = 0usize;
        for index in first..=last {
            let span = self
                .layout
                .chunk_range(index)
                .ok_or_else(|| untrusted("chunk"))?;
            let len = usize::try_from(span.end - span.start).map_err(untrusted)?;
            let mut chunk = sealed
                .get(at..at + len)
                .ok_or_else(|| untrusted("short range answer"))?
                .to_vec();
            at += len;
            Binding::lock(&self.binding).take(index, &chunk)?;
            self.opener
                .open_chunk(&self.layout, index, &mut chunk)
                .map_err(|e| untrusted(format!("clip chunk {index}: {e}")))?;
            plain.extend_from_slice(&chunk);
        }
        let chunk_size = self.header().chunk_size() as u64;
        let skip = usize::try_from(range.start - first * chunk_size).map_err(untrusted)?;
        let want = usize::try_from(end - range.start).map_err(untrusted)?;
        Ok(plain
            .get(skip..skip + want)
            .ok_or_else(|| untrusted("chunks shorter than their layout"))?
            .to_vec())
    }
}

/// Streams the whole clip once, checks it under the camera's key (the same header, the
/// trailer signature over every chunk) and settles the binding with its chunk digests.
async fn check_whole(
    api: Api,
    path: String,
    camera_key: CameraPublicKey,
    header: Header,
    (binding, settled): (Arc<Mutex<Binding>>, Arc<tokio::sync::Notify>),
) {
    let checked = fetch_and_check(&api, &path, &camera_key, &header).await;
    Binding::lock(&binding).settle(checked);
    settled.notify_waiters();
}

async fn fetch_and_check(
    api: &Api,
    path: &str,
    camera_key: &CameraPublicKey,
    header: &Header,
) -> Result<ChunkDigests, Playback> {
    let unchecked = |e: ClientError| Playback::Unchecked(e.to_string());
    let tampered = |why: String| Playback::Tampered(format!("tampered: {why}"));
    let mut body = api
        .get_stream(path)
        .await
        .map_err(unchecked)?
        .bytes_stream();
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    let mut checker: Option<(ObjectVerifier, ChunkDigester)> = None;
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| unchecked(e.into()))?;
        let mut rest = &piece[..];
        if checker.is_none() {
            let take = (PREFIX_LEN - prefix.len()).min(rest.len());
            prefix.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if prefix.len() < PREFIX_LEN {
                continue;
            }
            let verifier =
                ObjectVerifier::new(&prefix, camera_key).map_err(|e| tampered(e.to_string()))?;
            if verifier.header() != header {
                return Err(tampered(
                    "the server served another object in full than the one being played".into(),
                ));
            }
            checker = Some((verifier, ChunkDigester::new(header)));
        }
        if let Some((verifier, digester)) = checker.as_mut() {
            verifier.update(rest);
            digester.update(rest);
        }
    }
    let (verifier, digester) =
        checker.ok_or_else(|| tampered("the clip ends inside its header".into()))?;
    verifier.finish().map_err(|e| tampered(e.to_string()))?;
    Ok(digester.finish())
}

#[cfg(test)]
mod tests {
    use keyhole_core::envelope::{ChunkDigester, Header, PREFIX_LEN, SealParams, seal_object};
    use keyhole_core::{CameraId, CameraKey, HpkeSecretKey, ObjectId, Timestamp};
    use rand_core::SeedableRng;

    use super::*;

    /// A sealed clip of three full 1 KiB chunks, its header and its chunk digests.
    fn clip(byte: u8) -> (Vec<u8>, Header, ChunkDigests) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let params = SealParams {
            kind: keyhole_core::envelope::ObjectKind::Clip,
            suite: keyhole_core::envelope::Suite::ChaCha20Poly1305,
            chunk_log2: 10,
            camera_id: CameraId([1; 16]),
            object_id: ObjectId([2; 16]),
            epoch: 1,
            sequence: 1,
            previous: keyhole_core::envelope::ObjectDigest::default(),
            captured_at: Timestamp(0),
        };
        let viewing = HpkeSecretKey::from_bytes(&[3; 32]).public();
        let camera = CameraKey::from_seed(&[4; 32]);
        let (sealed, _) =
            seal_object(params, &[byte; 3072], &viewing, &camera, &mut rng).expect("sealed");
        let header = Header::decode(&sealed).expect("header");
        let mut digester = ChunkDigester::new(&header);
        digester.update(&sealed[PREFIX_LEN..]);
        (sealed, header, digester.finish())
    }

    fn chunk(sealed: &[u8], index: usize) -> &[u8] {
        let at = PREFIX_LEN + index * 1040;
        &sealed[at..at + 1040]
    }

    fn binding() -> Binding {
        Binding {
            playback: Playback::Checking,
            digests: None,
            read: BTreeMap::new(),
        }
    }

    #[test]
    fn a_chunk_read_before_the_check_ends_is_named_when_it_ends() {
        let (sealed, _, digests) = clip(1);
        let (other, ..) = clip(2);
        let mut b = binding();
        b.take(0, chunk(&sealed, 0)).expect("taken while checking");
        b.take(1, chunk(&other, 1)).expect("taken while checking");
        assert_eq!(b.playback, Playback::Checking);
        b.settle(Ok(digests));
        assert_eq!(b.playback, Playback::Tampered(not_sealed(1)));
        assert!(
            b.take(0, chunk(&sealed, 0)).is_err(),
            "a tampered clip reads no more"
        );
    }

    #[test]
    fn a_chunk_read_after_the_check_is_refused_before_it_is_opened() {
        let (sealed, _, digests) = clip(1);
        let (other, ..) = clip(2);
        let mut b = binding();
        b.take(0, chunk(&sealed, 0)).expect("taken while checking");
        b.settle(Ok(digests));
        assert_eq!(b.playback, Playback::Verified);
        b.take(2, chunk(&sealed, 2)).expect("the camera's chunk");
        assert!(b.take(1, chunk(&other, 1)).is_err());
        assert_eq!(b.playback, Playback::Tampered(not_sealed(1)));
    }

    #[test]
    fn a_check_that_could_not_run_leaves_the_clip_unchecked_not_verified() {
        let (sealed, ..) = clip(1);
        let mut b = binding();
        b.take(0, chunk(&sealed, 0)).expect("taken while checking");
        b.settle(Err(Playback::Unchecked("no answer".into())));
        assert_eq!(b.playback, Playback::Unchecked("no answer".into()));
    }
}
