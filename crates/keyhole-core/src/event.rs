//! Event metadata: what happened, when, for how long, which clip shows it, and a thumbnail.
//! Sealed in the same envelope as clips (kind [`ObjectKind::Event`]) and in the same
//! per-camera sequence, so a hidden or swapped event is caught like a hidden or swapped clip.

use rand_core::CryptoRngCore;
use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::envelope::{
    ObjectKind, OpenError, OpenedObject, SealParams, SealSummary, open_object, seal_object,
};
use crate::ids::{ObjectId, Timestamp};
use crate::keys::{CameraKey, CameraPublicKey, HpkePublicKey, HpkeSecretKey};

const MAGIC: &[u8; 4] = b"KHEV";
const FORMAT: u8 = 1;
/// Largest thumbnail, in bytes.
pub const MAX_THUMBNAIL: usize = 1 << 20;
/// Longest note, in UTF-8 bytes.
pub const MAX_NOTE: usize = 255;

/// What triggered an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Motion detected in the picture.
    Motion,
    /// The doorbell button was pressed.
    Doorbell,
    /// An external trigger (an alarm panel, a script).
    External,
    /// The camera refused something it was asked to do (for example, to seal to a key the
    /// account never signed) and tells the owner.
    Alert,
}

impl EventKind {
    fn id(self) -> u8 {
        match self {
            Self::Motion => 1,
            Self::Doorbell => 2,
            Self::External => 3,
            Self::Alert => 4,
        }
    }
}

/// An event's sealed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDetails {
    /// The trigger.
    pub kind: EventKind,
    /// When it began.
    pub started_at: Timestamp,
    /// How long it lasted.
    pub duration_ms: u32,
    /// The clip that records it, if any.
    pub clip: Option<ObjectId>,
    /// A short human note (zone name, alert text), at most [`MAX_NOTE`] bytes.
    pub note: String,
    /// A JPEG thumbnail, at most [`MAX_THUMBNAIL`] bytes; empty if none.
    pub thumbnail_jpeg: Vec<u8>,
}

/// Why an event could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The envelope did not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The envelope opened but does not hold event details.
    #[error("sealed object is not an event: {0}")]
    Malformed(DecodeError),
}

crate::codec::malformed_from!(EventError);

impl EventDetails {
    /// The canonical encoding.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] if the note or thumbnail is over its limit.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        if self.note.len() > MAX_NOTE {
            return Err(DecodeError::TooLong {
                field: "note",
                len: self.note.len(),
                max: MAX_NOTE,
            });
        }
        if self.thumbnail_jpeg.len() > MAX_THUMBNAIL {
            return Err(DecodeError::TooLong {
                field: "thumbnail",
                len: self.thumbnail_jpeg.len(),
                max: MAX_THUMBNAIL,
            });
        }
        let mut w = Writer::with_capacity(64 + self.thumbnail_jpeg.len());
        w.bytes(MAGIC)
            .u8(FORMAT)
            .u8(self.kind.id())
            .u64(self.started_at.0)
            .u32(self.duration_ms);
        match self.clip {
            Some(id) => w.u8(1).bytes(&id.0),
            None => w.u8(0),
        };
        w.var8(self.note.as_bytes()).var32(&self.thumbnail_jpeg);
        Ok(w.into_vec())
    }

    /// Parses event details.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed event.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "event")?;
        let kind = match r.u8("event kind")? {
            1 => EventKind::Motion,
            2 => EventKind::Doorbell,
            3 => EventKind::External,
            4 => EventKind::Alert,
            _ => return Err(DecodeError::Invalid("event kind")),
        };
        let started_at = Timestamp(r.u64("event start")?);
        let duration_ms = r.u32("event duration")?;
        let clip = match r.u8("clip flag")? {
            0 => None,
            1 => Some(ObjectId(r.array("clip id")?)),
            _ => return Err(DecodeError::Invalid("clip flag")),
        };
        let note = r.string8("note", MAX_NOTE)?;
        let thumbnail_jpeg = r.var32("thumbnail", MAX_THUMBNAIL)?.to_vec();
        r.finish()?;
        Ok(Self {
            kind,
            started_at,
            duration_ms,
            clip,
            note,
            thumbnail_jpeg,
        })
    }
}

/// Seals `details` as an event object; `params.kind` is set to [`ObjectKind::Event`].
///
/// # Errors
/// [`DecodeError`] if the details exceed a limit or the parameters are invalid.
pub fn seal_event(
    mut params: SealParams,
    details: &EventDetails,
    viewing_key: &HpkePublicKey,
    camera_key: &CameraKey,
    rng: &mut impl CryptoRngCore,
) -> Result<(Vec<u8>, SealSummary), DecodeError> {
    params.kind = ObjectKind::Event;
    seal_object(params, &details.encode()?, viewing_key, camera_key, rng)
}

/// Opens and verifies an event object.
///
/// # Errors
/// [`EventError::Open`] if verification fails; [`EventError::Malformed`] if the object is not
/// an event.
pub fn open_event(
    sealed: &[u8],
    camera_key: &CameraPublicKey,
    viewing_key: &HpkeSecretKey,
) -> Result<(EventDetails, OpenedObject), EventError> {
    let (plain, opened) = open_object(sealed, camera_key, viewing_key)?;
    if opened.header.kind != ObjectKind::Event {
        return Err(DecodeError::WrongFormat("event").into());
    }
    Ok((EventDetails::decode(&plain)?, opened))
}
