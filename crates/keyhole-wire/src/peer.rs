//! Messages between servers sharing one database (`docs/DEPLOY.md`, several servers), sent over
//! PostgreSQL's LISTEN/NOTIFY: one line of text, `<verb> <camera id in hex> <server URL>`.
//!
//! - `wanted`: a viewer on the server at the URL waits for the camera.
//! - `live`: the camera is live on the server at the URL.
//! - `ended`: its session there ended.
//!
//! Whatever else arrives (another version's message) decodes to `None` and is ignored.

/// What a message says about a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// A viewer waits for it.
    Wanted,
    /// It is live.
    Live,
    /// Its session ended.
    Ended,
}

/// One message between servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMessage {
    /// What happened.
    pub verb: Verb,
    /// The camera.
    pub camera: [u8; 16],
    /// The server it happened on, as the others reach it.
    pub url: String,
}

/// Longest URL a message carries; NOTIFY payloads end at 8000 bytes.
pub const MAX_URL_LEN: usize = 2048;

impl PeerMessage {
    /// The message as a NOTIFY payload; `None` if the URL is empty, too long, or holds a space
    /// or a control character (it could not be decoded again).
    #[must_use]
    pub fn encode(&self) -> Option<String> {
        if !valid_url(&self.url) {
            return None;
        }
        let verb = match self.verb {
            Verb::Wanted => "wanted",
            Verb::Live => "live",
            Verb::Ended => "ended",
        };
        Some(format!(
            "{verb} {} {}",
            crate::id::encode(&self.camera),
            self.url
        ))
    }

    /// Parses a payload.
    #[must_use]
    pub fn decode(payload: &str) -> Option<Self> {
        let mut words = payload.split(' ');
        let verb = match words.next()? {
            "wanted" => Verb::Wanted,
            "live" => Verb::Live,
            "ended" => Verb::Ended,
            _ => return None,
        };
        let camera = crate::id::decode(words.next()?)?;
        let url = words.next()?;
        if words.next().is_some() || !valid_url(url) {
            return None;
        }
        Some(Self {
            verb,
            camera,
            url: url.to_owned(),
        })
    }
}

fn valid_url(url: &str) -> bool {
    !url.is_empty() && url.len() <= MAX_URL_LEN && !url.chars().any(|c| c == ' ' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::{PeerMessage, Verb};

    #[test]
    fn messages_round_trip() {
        for (verb, text) in [
            (Verb::Wanted, "wanted"),
            (Verb::Live, "live"),
            (Verb::Ended, "ended"),
        ] {
            let m = PeerMessage {
                verb,
                camera: [0xa5; 16],
                url: "http://10.0.0.5:8443".into(),
            };
            let encoded = m.encode().unwrap();
            assert_eq!(
                encoded,
                format!("{text} a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5 http://10.0.0.5:8443")
            );
            assert_eq!(PeerMessage::decode(&encoded), Some(m));
        }
    }

    #[test]
    fn anything_else_is_ignored() {
        let camera = "0101010101010101010101010101010a";
        for bad in [
            String::new(),
            "live".into(),
            format!("live {camera}"),
            format!("live {camera} "),
            format!("live {camera} http://a extra"),
            format!("live  {camera} http://a"),
            format!("gone {camera} http://a"),
            format!("LIVE {camera} http://a"),
            "live 0101 http://a".into(),
            "live 0101010101010101010101010101010A http://a".into(),
            "live zz010101010101010101010101010101 http://a".into(),
            format!("live {camera} http://a\nb"),
            format!("live {camera} {}", "a".repeat(super::MAX_URL_LEN + 1)),
        ] {
            assert_eq!(PeerMessage::decode(&bad), None, "{bad:?}");
        }
        let unencodable = PeerMessage {
            verb: Verb::Live,
            camera: [1; 16],
            url: "http://a b".into(),
        };
        assert_eq!(unencodable.encode(), None);
    }
}
