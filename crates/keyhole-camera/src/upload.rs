//! Uploading the spool in steps that do not hold the agent while bytes travel. The agent picks
//! each step and signs its head ([`crate::Agent::next_upload`]), the step is sent over a
//! [`Link`] on its own ([`Upload::send`]), and the agent settles the outcome
//! ([`crate::Agent::settle_upload`]). A camera's uploader holds the agent only for the first and
//! the last, so a long upload after an outage never keeps clips from being sealed.

use tokio::io::AsyncReadExt as _;

use crate::agent::{AgentError, HEAD_HEADER, Link, UPLOAD_READ, ok, open_spooled};
use crate::spool::Entry;

/// One step of uploading the spool, ready to send.
#[derive(Debug)]
pub struct Upload {
    pub(crate) link: Link,
    pub(crate) work: Work,
}

/// What an [`Upload`] sends.
#[derive(Debug)]
pub(crate) enum Work {
    /// Small objects, oldest first, in one batch request (`keyhole_wire::batch`).
    Batch {
        entries: Vec<Entry>,
        /// The camera's head, vouching for everything up to the last of them.
        head: Vec<u8>,
    },
    /// One object; `resume` after an earlier attempt was cut, at the server's offset.
    Single {
        entry: Entry,
        resume: bool,
        head: Vec<u8>,
    },
}

impl Upload {
    /// The spooled objects this step carries.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        match &self.work {
            Work::Batch { entries, .. } => entries,
            Work::Single { entry, .. } => std::slice::from_ref(entry),
        }
    }

    /// Sends the step, streamed from the spool files.
    ///
    /// # Errors
    /// An unreachable or refusing server, or a spool file that cannot be read.
    pub async fn send(&self) -> Result<(), AgentError> {
        match &self.work {
            Work::Batch { entries, head } => self.send_batch(entries, head).await,
            Work::Single {
                entry,
                resume,
                head,
            } => self.send_single(entry, *resume, head).await,
        }
    }

    async fn send_batch(&self, entries: &[Entry], head: &[u8]) -> Result<(), AgentError> {
        let mut body: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>> =
            Box::pin(tokio::io::empty());
        let mut total = 0u64;
        for entry in entries {
            let len = u32::try_from(entry.len)
                .map_err(|_| AgentError::Seal("a spooled object is too large".into()))?;
            let file = open_spooled(entry).await?;
            body = Box::pin(
                body.chain(std::io::Cursor::new(len.to_be_bytes()))
                    .chain(file.take(entry.len)),
            );
            total += 4 + entry.len;
        }
        let resp = self
            .link
            .http
            .post(format!("{}/v1/objects", self.link.server))
            .bearer_auth(self.link.token.as_str())
            .header(reqwest::header::CONTENT_LENGTH, total)
            .header(HEAD_HEADER, hex::encode(head))
            .body(reqwest::Body::wrap_stream(
                tokio_util::io::ReaderStream::with_capacity(body, UPLOAD_READ),
            ))
            .send()
            .await?;
        ok(resp).await?;
        Ok(())
    }

    async fn send_single(
        &self,
        entry: &Entry,
        resume: bool,
        head: &[u8],
    ) -> Result<(), AgentError> {
        let mut offset = 0;
        if resume {
            let resp = self
                .link
                .http
                .get(format!(
                    "{}/v1/objects/{}/upload",
                    self.link.server, entry.object_id
                ))
                .bearer_auth(self.link.token.as_str())
                .send()
                .await?;
            let state: serde_json::Value = ok(resp).await?.json().await?;
            if state["stored"].as_bool() == Some(true) {
                return Ok(());
            }
            if state["in_progress"].as_bool() == Some(true) {
                // The server has not yet seen the earlier attempt end; its partial upload may
                // still grow. Resume once it has (the upload loop retries).
                return Err(AgentError::Refused(
                    409,
                    "the server is still receiving an earlier attempt at this upload".into(),
                ));
            }
            offset = state["offset"].as_u64().unwrap_or(0).min(entry.len);
        }
        let mut file = open_spooled(entry).await?;
        tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset))
            .await
            .map_err(|source| crate::store::StoreError::Io {
                path: entry.path.clone(),
                source,
            })?;
        let resp = self
            .link
            .put_object(&entry.object_id, file, entry.len, offset, Some(head))
            .await?;
        ok(resp).await?;
        Ok(())
    }
}
