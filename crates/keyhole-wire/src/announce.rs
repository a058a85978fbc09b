//! The announcement channel (`GET /v1/announcements`, `docs/API.md`): a long-lived response of
//! Server-Sent Events (the WHATWG HTML "server-sent events" format) on which the server says
//! only that a camera has new objects, up to a sequence number. A device trusts none of it: an
//! announcement is a hint to sync that camera, and what the sync lists is verified as usual.
//!
//! Events, each a `event:` line, a `data:` line and a blank line:
//! - `ready`: the subscription is in place; what is stored from now on will be announced. A
//!   device syncs after it (what came before, including while it was away, is found that way).
//! - `objects` with data `<camera id, 32 hex digits> <sequence>`: the camera's newest object
//!   stored so far has that sequence number.
//! - `resync`: announcements were lost (this subscriber fell behind); sync every camera.
//!
//! Lines starting with `:` are comments (the server's keep-alive). Events of other names are
//! skipped, so a server may add some. [`Reader`] takes the bytes as they arrive, in pieces of
//! any size, and keeps at most [`MAX_LINE`] bytes of an unfinished line.

/// The events of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The subscription is in place.
    Ready,
    /// A camera's newest stored object.
    Objects {
        /// The camera.
        camera: [u8; 16],
        /// The newest object's sequence number.
        sequence: u64,
    },
    /// Announcements were lost: sync everything.
    Resync,
}

/// Longest line a reader keeps; a longer one is an error (no message of the channel is close).
pub const MAX_LINE: usize = 1024;

impl Message {
    /// The event's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Objects { .. } => "objects",
            Self::Resync => "resync",
        }
    }

    /// The event's data line (without `data: `); empty for `ready` and `resync`.
    #[must_use]
    pub fn data(&self) -> String {
        match self {
            Self::Objects { camera, sequence } => {
                format!("{} {sequence}", crate::id::encode(camera))
            }
            Self::Ready | Self::Resync => String::new(),
        }
    }

    /// The whole event as it is sent.
    #[must_use]
    pub fn encode(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.name(), self.data())
    }

    fn decode(name: &str, data: &str) -> Result<Option<Self>, AnnounceError> {
        Ok(Some(match name {
            "ready" => Self::Ready,
            "resync" => Self::Resync,
            "objects" => {
                let (camera, sequence) = data
                    .split_once(' ')
                    .ok_or(AnnounceError::Malformed("objects without a sequence"))?;
                Self::Objects {
                    camera: camera_id(camera)?,
                    sequence: number(sequence)
                        .ok_or(AnnounceError::Malformed("a sequence that is not a number"))?,
                }
            }
            _ => return Ok(None),
        }))
    }
}

/// An object stored, as one server tells the others sharing its database (NOTIFY on
/// `keyhole_objects`): `<account id> <camera id> <sequence>`, ids in 32 lowercase hex digits.
/// Each server announces it to its own subscribers of that account (and of the camera's
/// shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The camera's account.
    pub account: [u8; 16],
    /// The camera.
    pub camera: [u8; 16],
    /// The object's sequence number.
    pub sequence: u64,
}

impl Stored {
    /// The NOTIFY payload.
    #[must_use]
    pub fn encode(&self) -> String {
        let objects = Message::Objects {
            camera: self.camera,
            sequence: self.sequence,
        };
        format!("{} {}", crate::id::encode(&self.account), objects.data())
    }

    /// Parses a payload; `None` if it is not one.
    #[must_use]
    pub fn decode(payload: &str) -> Option<Self> {
        let (account, objects) = payload.split_once(' ')?;
        match Message::decode("objects", objects) {
            Ok(Some(Message::Objects { camera, sequence })) => Some(Self {
                account: camera_id(account).ok()?,
                camera,
                sequence,
            }),
            _ => None,
        }
    }
}

/// A decimal number as [`Message::data`] writes it: digits only, no leading zero.
fn number(text: &str) -> Option<u64> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    let canonical = !text.is_empty() && (text == "0" || !text.starts_with('0'));
    if digits && canonical {
        text.parse().ok()
    } else {
        None
    }
}

fn camera_id(text: &str) -> Result<[u8; 16], AnnounceError> {
    crate::id::decode(text).ok_or(AnnounceError::Malformed(
        "a camera id that is not 32 lowercase hex digits",
    ))
}

/// Why the channel's bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// A line longer than [`MAX_LINE`].
    #[error("the announcement channel sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// A line that is not UTF-8.
    #[error("the announcement channel sent a line that is not text")]
    NotText,
    /// A known event whose data does not parse.
    #[error("the announcement channel sent {0}")]
    Malformed(&'static str),
}

/// Reads the channel's events from its bytes as they arrive.
#[derive(Debug, Default)]
pub struct Reader {
    line: Vec<u8>,
    event: String,
    data: String,
    /// A `\r` ended the last line: a `\n` right after it ends nothing more.
    after_cr: bool,
}

impl Reader {
    /// A reader at the start of the channel.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes; returns the events they complete, in order.
    ///
    /// # Errors
    /// [`AnnounceError`] for a line too long, not text, or a known event that does not parse.
    /// The channel is then of no further use: reconnect.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Message>, AnnounceError> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    if let Some(message) = self.line_done(&line)? {
                        out.push(message);
                    }
                }
                _ if self.line.len() >= MAX_LINE => return Err(AnnounceError::LineTooLong),
                _ => self.line.push(b),
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<Message>, AnnounceError> {
        let line = std::str::from_utf8(line).map_err(|_| AnnounceError::NotText)?;
        if line.is_empty() {
            // The blank line dispatches the event.
            let (event, data) = (
                std::mem::take(&mut self.event),
                std::mem::take(&mut self.data),
            );
            return if event.is_empty() {
                Ok(None)
            } else {
                Message::decode(&event, &data)
            };
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() > MAX_LINE {
                    return Err(AnnounceError::LineTooLong);
                }
                self.data.push_str(value);
            }
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMERA: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];

    #[test]
    fn events_read_back_in_pieces_of_any_size() {
        let sent = [
            Message::Ready,
            Message::Objects {
                camera: CAMERA,
                sequence: 42,
            },
            Message::Resync,
            Message::Objects {
                camera: CAMERA,
                sequence: u64::MAX,
            },
        ];
        let mut bytes = String::from(": keep-alive\n\n");
        for m in &sent {
            bytes.push_str(&m.encode());
            bytes.push_str(": keep-alive\n\nevent: later-addition\ndata: x\n\n");
        }
        assert_eq!(
            Message::Objects {
                camera: CAMERA,
                sequence: 42
            }
            .encode(),
            "event: objects\ndata: 00112233445566778899aabbccddeeff 42\n\n"
        );
        for piece in [1, 2, 7, bytes.len()] {
            let mut reader = Reader::new();
            let mut got = Vec::new();
            for chunk in bytes.as_bytes().chunks(piece) {
                got.extend(reader.feed(chunk).expect("reads"));
            }
            assert_eq!(got, sent, "in pieces of {piece}");
        }
        // CRLF and CR line ends, no space after the colon.
        let mut reader = Reader::new();
        let got = reader
            .feed(b"event:resync\r\ndata:\r\n\r\nevent: ready\rdata:\r\r")
            .expect("reads");
        assert_eq!(got, [Message::Resync, Message::Ready]);
    }

    #[test]
    fn what_does_not_parse_is_refused() {
        for bad in [
            &b"event: objects\ndata: 0011 42\n\n"[..],
            b"event: objects\ndata: 00112233445566778899AABBCCDDEEFF 42\n\n",
            b"event: objects\ndata: 00112233445566778899aabbccddeeff\n\n",
            b"event: objects\ndata: 00112233445566778899aabbccddeeff -1\n\n",
            b"event: objects\ndata: 00112233445566778899aabbccddeeff +1\n\n",
            b"event: objects\ndata: 00112233445566778899aabbccddeeff 01\n\n",
            b"event: objects\ndata: 00112233445566778899aabbccddeeff 18446744073709551616\n\n",
            b"event: objects\ndata: 00112233445566778899aabbccddeeg0 1\n\n",
            b"event: \xff\n",
        ] {
            assert!(
                Reader::new().feed(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = vec![b'a'; MAX_LINE + 1];
        assert_eq!(Reader::new().feed(&long), Err(AnnounceError::LineTooLong));
        let mut many = Vec::new();
        for _ in 0..=MAX_LINE / 8 {
            many.extend_from_slice(b"data: 1234567\n");
        }
        assert_eq!(Reader::new().feed(&many), Err(AnnounceError::LineTooLong));
    }

    #[test]
    fn what_servers_tell_each_other_reads_back() {
        let stored = Stored {
            account: [7; 16],
            camera: CAMERA,
            sequence: 9,
        };
        let payload = stored.encode();
        assert_eq!(
            payload,
            "07070707070707070707070707070707 00112233445566778899aabbccddeeff 9"
        );
        assert_eq!(Stored::decode(&payload), Some(stored));
        for bad in [
            "",
            "07070707070707070707070707070707",
            "07070707070707070707070707070707 00112233445566778899aabbccddeeff",
            "0707 00112233445566778899aabbccddeeff 9",
            "07070707070707070707070707070707 00112233445566778899aabbccddeeff 9 x",
        ] {
            assert_eq!(Stored::decode(bad), None, "{bad:?}");
        }
    }
}
