//! Following the server's announcement channel (`GET /v1/announcements`,
//! `keyhole_wire::announce`): which cameras have new objects. An announcement is only a hint
//! to sync that camera; what the sync lists is verified as every listing is, so a server that
//! lies on the channel can make a device sync for nothing, or keep quiet (as it can withhold an
//! upload), but never show it anything the camera did not seal.

use std::collections::VecDeque;
use std::time::Duration;

use keyhole_wire::announce::{Message, Reader};

use crate::{ClientError, Owner};

/// The server writes a comment every 15 s; a channel silent this long is taken for dead.
pub const SILENCE: Duration = Duration::from_secs(40);

/// An open announcement channel.
#[derive(Debug)]
pub struct Announcements {
    response: reqwest::Response,
    reader: Reader,
    ready: VecDeque<Message>,
}

impl Announcements {
    /// The next announcement, as it arrives.
    ///
    /// # Errors
    /// [`ClientError::Announcements`] when the channel ends, stays silent for [`SILENCE`] or
    /// sends what does not parse; [`ClientError::Http`] when the connection fails. Open it
    /// again, then sync: what was announced meanwhile is found that way.
    pub async fn next(&mut self) -> Result<Message, ClientError> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(m);
            }
            let chunk = tokio::time::timeout(SILENCE, self.response.chunk())
                .await
                .map_err(|_| {
                    ClientError::Announcements(format!("nothing heard for {} s", SILENCE.as_secs()))
                })??
                .ok_or_else(|| ClientError::Announcements("the server closed it".into()))?;
            let messages = self
                .reader
                .feed(&chunk)
                .map_err(|e| ClientError::Announcements(e.to_string()))?;
            self.ready.extend(messages);
        }
    }
}

impl Owner {
    /// Opens this device's announcement channel and waits for the server to say it is in
    /// place: what is stored after this returns is announced on it.
    ///
    /// # Errors
    /// [`ClientError`] if the server cannot be reached or refuses, or does not say `ready`.
    pub async fn announcements(&self) -> Result<Announcements, ClientError> {
        let response = self.api().get_stream("/v1/announcements").await?;
        let mut channel = Announcements {
            response,
            reader: Reader::new(),
            ready: VecDeque::new(),
        };
        match channel.next().await? {
            Message::Ready => Ok(channel),
            other => Err(ClientError::Announcements(format!(
                "it began with {:?}, not ready",
                other.name()
            ))),
        }
    }
}
