//! Identifiers and time. Ids are random 128-bit values chosen by whoever creates the object;
//! they name things and carry no authority.

use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRngCore;

use crate::codec::DecodeError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh random id.
            pub fn random(rng: &mut impl CryptoRngCore) -> Self {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                Self(b)
            }

            /// The raw bytes.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = DecodeError;
            /// Parses the 32 lowercase or uppercase hex digits that `Display` prints.
            fn from_str(s: &str) -> Result<Self, DecodeError> {
                let mut b = [0u8; 16];
                hex::decode_to_slice(s, &mut b).map_err(|_| DecodeError::Invalid($label))?;
                Ok(Self(b))
            }
        }
    };
}

id_type!(
    /// Names one camera within its account for as long as it is paired. Re-pairing (for example
    /// after a transfer) creates a new id.
    CameraId,
    "camera id"
);
id_type!(
    /// Names one enrolled device (phone, computer).
    DeviceId,
    "device id"
);
id_type!(
    /// Names one sealed object: a clip, an event or a live session. Uploads are idempotent by it.
    ObjectId,
    "object id"
);

/// Milliseconds since the Unix epoch (UTC). Passed in by callers; this crate never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub fn millis(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601 in UTC to the second, e.g. `2026-11-26T23:20:05Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
        // Algorithms"), in unsigned arithmetic since timestamps are never before 1970.
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_display() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Timestamp(1_795_735_205_999).to_string(),
            "2026-11-26T23:20:05Z"
        );
    }

    #[test]
    fn id_text_round_trip() {
        let id = CameraId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(id.to_string().parse::<CameraId>().unwrap(), id);
        assert_eq!(
            "zz".parse::<CameraId>(),
            Err(DecodeError::Invalid("camera id"))
        );
    }
}
